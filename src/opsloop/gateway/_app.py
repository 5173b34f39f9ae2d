"""``create_gateway_app(settings)``: the OpenAI-compatible gateway in front of routes.

``POST /v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings`` (streams
passed through chunk by chunk) and ``GET /v1/models``, authenticated by a
virtual key (``Authorization: Bearer sk-ogw-...``). The request's ``model``
names a route. For each request, in order: the key (hashed lookup; expiry,
revocation, route scope), the per-request caps, the input guards, the exact
cache, the reservation on the key's and the team's limits, the upstream call
(balancing, retries, breaker, fallbacks), the output guards, the settlement
of the real usage, and one row in the usage log. Every answer carries
``X-Opsloop-Gateway-Overhead-Ms``: the time spent in the gateway itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from opsloop.core import VERSION
from opsloop.core.web import BodyLimitMiddleware, JSONBody
from opsloop.errors import (
    InvalidArgument,
    NotFound,
    OpsloopError,
    PermissionDenied,
)
from opsloop.gateway._answer_checks import context_of
from opsloop.gateway._cache import cache_key
from opsloop.gateway._errors import GuardrailBlocked, LimitExceeded, limit_error
from opsloop.gateway._guards import (
    StreamGuard,
    output_guarded,
)
from opsloop.gateway._limits import (
    Reservation,
    cost_micros,
    plan,
    refusal,
    settle_deltas,
)
from opsloop.gateway._request import (
    classify_injection,
    dearest,
    error_body,
    guard_answer,
    guard_inputs,
    input_tokens_bound,
    output_tokens,
    sse,
    usage_of,
)
from opsloop.gateway._semantic import bucket_key, request_text
from opsloop.gateway._state import Call, GatewayState, min_of
from opsloop.gateway._upstream import Attempt
from opsloop.gateway.entities import Limits, Route
from opsloop.settings import Settings
from opsloop.store import now_ms
from opsloop.tracing import record_llm_call

__all__ = [
    "CACHE_HEADER",
    "DECISIONS_HEADER",
    "OVERHEAD_HEADER",
    "ROUTE_HEADER",
    "SIMILARITY_HEADER",
    "GatewayState",
    "create_gateway_app",
]

log = logging.getLogger("opsloop.gateway")

OVERHEAD_HEADER = "X-Opsloop-Gateway-Overhead-Ms"
ROUTE_HEADER = "X-Opsloop-Gateway-Route"
CACHE_HEADER = "X-Opsloop-Cache"
SIMILARITY_HEADER = "X-Opsloop-Cache-Similarity"
DECISIONS_HEADER = "X-Opsloop-Gateway-Decisions"
ENDPOINTS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
}


# -- the app ---------------------------------------------------------------------------------


def create_gateway_app(
    settings: Settings | None = None,
    *,
    redis_url: str | None = None,
    config_ttl_s: float = 1.0,
    trace: bool = True,
) -> FastAPI:
    """The gateway app over the store of ``settings`` (routes, keys, usage) and, when
    ``redis_url`` (else ``settings.redis_url``) is set, Redis for the shared counters and
    the cache. Several such apps (replicas) may share one store and one Redis. ``trace``:
    each request is also a trace (a GenAI span with its usage, cost and decisions) in the
    store."""
    settings = settings or Settings()
    state = GatewayState(settings, redis_url=redis_url, config_ttl_s=config_ttl_s, trace=trace)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        lifespan=lifespan,
        title="opsloop gateway",
        version=VERSION,
        description="OpenAI-compatible gateway: virtual keys, limits, retries, fallbacks, "
        "breakers, cache, guardrails.",
        docs_url="/docs",
        redoc_url=None,
        default_response_class=JSONBody,
    )
    app.state.gateway = state
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        max_artifact_bytes=settings.max_request_bytes,
    )

    def trace_request(call: Call, status: int, kw: dict[str, Any]) -> None:
        key = call.key
        try:
            record_llm_call(
                model=kw.get("model") or call.route_name or "unknown",
                operation="embeddings" if call.endpoint == "embeddings" else "chat",
                name=f"gateway {call.route_name or call.endpoint}",
                input_tokens=kw.get("input_tokens", 0),
                output_tokens=kw.get("output_tokens", 0),
                cost=kw.get("cost", 0) / 1e6,
                provider="opsloop-gateway",
                start_time=call.wall0,
                end_time=time.time(),
                error=kw.get("code") if status >= 400 else None,
                attributes={
                    k: v
                    for k, v in (
                        ("gateway.route", call.route_name),
                        ("gateway.key_id", key.id if key else None),
                        ("gateway.team", key.team if key else None),
                        ("gateway.status", status),
                        ("gateway.cache", call.cache),
                        ("gateway.decisions", list(call.decisions[:100])),
                        ("gateway.overhead_ms", round(kw.get("overhead_ms", 0.0), 3)),
                    )
                    if v is not None
                },
                tracer=state.tracer,
            )
        except Exception:  # a trace never fails a request
            log.exception("could not trace a gateway request")

    def record(call: Call, status: int, **kw: Any) -> None:
        key = call.key
        if state.tracer is not None:
            trace_request(call, status, kw)
        state.usage.add(
            {
                "id": uuid.uuid4().hex,
                "ts": now_ms(),
                "key_id": key.id if key else None,
                "team": key.team if key else None,
                "route": call.route_name,
                "model": kw.get("model"),
                "endpoint": call.endpoint,
                "status": status,
                "code": kw.get("code"),
                "input_tokens": kw.get("input_tokens", 0),
                "output_tokens": kw.get("output_tokens", 0),
                "cost_micros": kw.get("cost", 0),
                "latency_ms": (time.perf_counter() - call.t0) * 1000,
                "overhead_ms": kw.get("overhead_ms", 0.0),
                "cache": call.cache,
                "decisions": call.decisions[:100],
            }
        )

    def headers(call: Call, overhead_s: float, route: str | None) -> dict[str, str]:
        h = {OVERHEAD_HEADER: f"{overhead_s * 1000:.3f}"}
        if route:
            h[ROUTE_HEADER] = route
        if call.cache:
            h[CACHE_HEADER] = call.cache
        if call.decisions:
            h[DECISIONS_HEADER] = ";".join(call.decisions)[:2000]
        return h

    def error_response(call: Call, exc: OpsloopError) -> Response:
        h = headers(call, time.perf_counter() - call.t0, call.route_name)
        if isinstance(exc, LimitExceeded) and exc.retry_after_s is not None:
            h["Retry-After"] = str(exc.retry_after_s)
        i, o, c = call.charged
        record(call, exc.http_status, code=exc.code, input_tokens=i, output_tokens=o, cost=c)
        return JSONBody(error_body(exc), status_code=exc.http_status, headers=h)

    async def settle(res: Reservation, in_t: int, out_t: int, cost: int) -> None:
        await state.counters.settle(settle_deltas(res, in_t, out_t, cost))

    async def handle(request: Request, endpoint: str) -> Response:
        call = Call(endpoint, time.perf_counter())
        try:
            return await _handle(request, call)
        except OpsloopError as exc:
            return error_response(call, exc)

    async def _handle(request: Request, call: Call) -> Response:
        endpoint = call.endpoint
        call.key, call.team_limits = await state.authenticate(request.headers.get("authorization"))
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise InvalidArgument("the body is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidArgument("the body is a JSON object")
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("model names a gateway route", details={"param": "model"})
        call.route_name = name[:256]
        key = call.key
        if "*" not in key.routes and name not in key.routes:
            raise PermissionDenied(
                f"this key may not call route {name!r}", details={"param": "model", "route": name}
            )
        route = await state.route(name)
        if route is None:
            raise NotFound(f"no gateway route {name!r}", details={"param": "model"})
        chain = [route]
        for fb in route.fallbacks:
            r = await state.route(fb)
            if r is None:
                call.decisions.append(f"missing_fallback:{fb}")
            else:
                chain.append(r)
        limits = [key.limits, call.team_limits]
        stream = bool(body.get("stream")) and endpoint != "embeddings"
        max_out = output_tokens(body, endpoint, route, limits)
        if route.guards.injection != "off" and route.guards.injection_method == "minilm":
            await classify_injection(body, endpoint, route, call)
        guard_inputs(body, endpoint, route, call)
        est_in = input_tokens_bound(body, endpoint, route)
        cap_in = min_of(*[lim.max_input_tokens for lim in limits if lim is not None])
        if cap_in is not None and est_in > cap_in:
            raise limit_error(
                "max_input_tokens",
                f"the input may be {est_in} tokens; this key allows {cap_in} per request",
                limit_value=cap_in,
                asked=est_in,
            )
        timeout = min_of(route.timeout_s, *[lim.timeout_s for lim in limits if lim is not None])
        scopes: list[tuple[str, Limits | None]] = [(f"key:{key.id}", key.limits)]
        if key.team is not None:
            scopes.append((f"team:{key.team}", call.team_limits))

        # The exact cache: a hit costs a request, no tokens.
        ckey = None
        sem: tuple[str, str, Any] | None = None  # bucket, text, vector of a semantic lookup
        if route.cache.ttl_s > 0 and not stream:
            scope = f"team:{key.team}" if key.team else f"key:{key.id}"
            ckey = cache_key(endpoint, name, scope, body)
            cached = await state.cache.get(ckey)
            similarity = None
            if cached is None and route.cache.semantic_similarity is not None:
                text = request_text(endpoint, body)
                if text is not None:
                    sc = state.semantic
                    vec = await asyncio.to_thread(sc.vector, text)
                    sem = (bucket_key(endpoint, name, scope, body), text, vec)
                    hit = sc.lookup(sem[0], text, vec, route.cache.semantic_similarity)
                    if hit is not None:
                        cached, similarity = hit.answer, hit.similarity
            if cached is not None:
                call.cache = "hit" if similarity is None else "semantic_hit"
                call.decisions.append(f"cache:{call.cache}")
                res = plan(scopes, input_tokens=0, output_tokens=0, cost=0)
                refused = await state.counters.reserve(res.checks)
                if refused is not None:
                    raise refusal(*refused)
                overhead = time.perf_counter() - call.t0
                record(call, 200, model=name, overhead_ms=overhead * 1000)
                h = headers(call, overhead, name)
                if similarity is not None:
                    h[SIMILARITY_HEADER] = f"{similarity:.4f}"
                return Response(cached, media_type="application/json", headers=h)
            call.cache = "miss"

        cost = cost_micros(est_in, max_out, dearest(chain))
        res = plan(scopes, input_tokens=est_in, output_tokens=max_out, cost=cost)
        refused = await state.counters.reserve(res.checks)
        if refused is not None:
            raise refusal(*refused)
        attempt = Attempt(decisions=call.decisions)
        wants_usage = False
        if stream:
            so = body.get("stream_options")
            wants_usage = isinstance(so, dict) and bool(so.get("include_usage"))
            body["stream_options"] = {**(so if isinstance(so, dict) else {}), "include_usage": True}
        try:
            resp = await state.forwarder.send(
                chain,
                ENDPOINTS[endpoint],
                body,
                stream=stream,
                deadline=time.monotonic() + timeout,
                attempt=attempt,
            )
        except BaseException:
            # Nothing answered: if an attempt may have reached an upstream that billed it (a
            # timeout or a broken connection after sending), the worst case is charged; else
            # only the request counts.
            if attempt.maybe_billed:
                call.charged = (est_in, max_out, cost)
                call.decisions.append("maybe_billed:charged_reservation")
                await asyncio.shield(state.spawn(settle(res, est_in, max_out, cost)))
            else:
                await asyncio.shield(state.spawn(settle(res, 0, 0, 0)))
            raise
        assert attempt.route is not None
        answered = attempt.route
        model = attempt.target.model if attempt.target else None
        if answered.name != name:
            call.decisions.append(f"answered_by:{answered.name}")

        if stream and resp.status_code < 400:
            return _stream(
                resp,
                call,
                res,
                answered,
                model,
                est_in,
                max_out,
                wants_usage,
                attempt,
                context_of(endpoint, body) if answered.guards.grounded != "off" else "",
            )

        raw = resp.content
        if resp.status_code >= 400:
            # The upstream refused it (not retryable): no tokens were used.
            await asyncio.shield(state.spawn(settle(res, 0, 0, 0)))
            overhead = time.perf_counter() - call.t0 - attempt.upstream_s
            record(
                call,
                resp.status_code,
                model=model,
                code="UPSTREAM_ERROR",
                overhead_ms=overhead * 1000,
            )
            return Response(
                raw,
                status_code=resp.status_code,
                media_type=resp.headers.get("content-type", "application/json"),
                headers=headers(call, overhead, answered.name),
            )
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        used = usage_of(data)
        if used is None:
            call.decisions.append("usage_missing:charged_reservation")
            in_t, out_t = est_in, max_out
        else:
            in_t, out_t = used
        real_cost = cost_micros(in_t, out_t, answered.prices)
        if in_t > est_in or out_t > max_out:
            call.decisions.append("usage_above_reservation")
        call.charged = (in_t, out_t, real_cost)  # spent, even if an output guard blocks it
        try:
            if (
                isinstance(data, dict)
                and output_guarded(answered.guards)
                and guard_answer(data, answered, call, context_of(endpoint, body))
            ):
                raw = orjson.dumps(data)
        finally:
            await asyncio.shield(state.spawn(settle(res, in_t, out_t, real_cost)))
        if ckey is not None:
            await state.cache.put(ckey, raw, route.cache.ttl_s)
        if sem is not None:
            state.semantic.put(*sem, raw, route.cache.ttl_s)
        overhead = time.perf_counter() - call.t0 - attempt.upstream_s
        record(
            call,
            200,
            model=model,
            input_tokens=in_t,
            output_tokens=out_t,
            cost=real_cost,
            overhead_ms=overhead * 1000,
        )
        return Response(
            raw, media_type="application/json", headers=headers(call, overhead, answered.name)
        )

    def _stream(
        resp: httpx.Response,
        call: Call,
        res: Reservation,
        route: Route,
        model: str | None,
        est_in: int,
        max_out: int,
        wants_usage: bool,
        attempt: Attempt,
        context: str,
    ) -> Response:
        guard = StreamGuard(route.guards, context) if output_guarded(route.guards) else None
        overhead = time.perf_counter() - call.t0 - attempt.upstream_s
        used: list[tuple[int, int]] = []
        status: dict[str, Any] = {"code": 200, "error": None}

        def rewrite(obj: dict[str, Any], final: bool) -> bool:
            """Guard the chunk's text in place; True if it changed."""
            assert guard is not None
            changed = False
            for ch in obj.get("choices") or []:
                if not isinstance(ch, dict):
                    continue
                delta = ch.get("delta")
                holder, k = (delta, "content") if isinstance(delta, dict) else (ch, "text")
                value = holder.get(k)
                text = value if isinstance(value, str) else ""
                done = final or ch.get("finish_reason") is not None
                new = guard.feed(text) + (guard.finish() if done else "")
                if new != text:
                    holder[k] = new
                    changed = True
            return changed

        def flush_chunk() -> bytes:
            assert guard is not None
            text = guard.finish()
            choice: dict[str, Any] = {"index": 0, "finish_reason": None}
            if call.endpoint == "chat":
                choice["delta"] = {"content": text}
            else:
                choice["text"] = text
            return sse({"object": "chat.completion.chunk", "choices": [choice]})

        def process(event: bytes) -> bytes | None:
            if not event.startswith(b"data:"):
                return event
            payload = event[5:].strip()
            if payload == b"[DONE]":
                if guard is not None and guard.buf:  # text held back, with no finish chunk
                    return flush_chunk() + event
                return event
            if guard is None and b'"usage"' not in payload:
                return event  # the fast path: passed through as it came
            try:
                obj = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return event
            if not isinstance(obj, dict):
                return event
            u = usage_of(obj)
            if u is not None:
                used.append(u)
            if "error" in obj:
                status.update(code=502, error="UPSTREAM_STREAM_ERROR")
                return event
            if not obj.get("choices"):
                return event if wants_usage else None
            if guard is not None and rewrite(obj, False):
                if u is not None and not wants_usage:
                    obj.pop("usage", None)
                return sse(obj)
            if u is not None and not wants_usage:
                obj.pop("usage", None)
                return sse(obj)
            return event

        async def events() -> AsyncIterator[bytes]:
            buf = b""
            try:
                async for piece in resp.aiter_bytes():
                    buf += piece.replace(b"\r\n", b"\n")
                    while True:
                        i = buf.find(b"\n\n")
                        if i < 0:
                            break
                        event, buf = buf[: i + 2], buf[i + 2 :]
                        out = process(event)
                        if out:
                            yield out
                if buf.strip():
                    out = process(buf)
                    if out:
                        yield out
                if guard is not None and guard.buf:
                    yield flush_chunk()
            except GuardrailBlocked as exc:
                status.update(code=exc.http_status, error=exc.code)
                yield sse(error_body(exc))
                yield b"data: [DONE]\n\n"
            except httpx.HTTPError as exc:
                status.update(code=502, error="UPSTREAM_STREAM_ERROR")
                err = {
                    "code": "UPSTREAM_STREAM_ERROR",
                    "message": f"the upstream stream broke: {type(exc).__name__}",
                    "type": "server_error",
                }
                yield sse({"error": err})
                yield b"data: [DONE]\n\n"
            finally:
                if guard is not None:
                    call.decisions += [f for f in guard.flags if f not in call.decisions]
                state.spawn(finish())

        async def finish() -> None:
            await resp.aclose()
            if used:
                in_t, out_t = used[-1]
            else:
                call.decisions.append("usage_missing:charged_reservation")
                in_t, out_t = est_in, max_out
            real = cost_micros(in_t, out_t, route.prices)
            await settle(res, in_t, out_t, real)
            record(
                call,
                int(status["code"]),
                model=model,
                code=status["error"],
                input_tokens=in_t,
                output_tokens=out_t,
                cost=real,
                overhead_ms=overhead * 1000,
            )

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                **headers(call, overhead, route.name),
            },
        )

    @app.post("/v1/chat/completions", summary="Chat completion through a route")
    async def chat(request: Request) -> Response:
        return await handle(request, "chat")

    @app.post("/v1/completions", summary="Text completion through a route")
    async def completions(request: Request) -> Response:
        return await handle(request, "completions")

    @app.post("/v1/embeddings", summary="Embeddings through a route")
    async def embeddings(request: Request) -> Response:
        return await handle(request, "embeddings")

    @app.get("/v1/models", summary="The routes this key may call")
    async def models(request: Request) -> Response:
        try:
            key, _ = await state.authenticate(request.headers.get("authorization"))
        except OpsloopError as exc:
            return JSONBody(error_body(exc), status_code=exc.http_status)
        routes = await asyncio.to_thread(state.service.list_routes)
        data = [
            {
                "id": r.name,
                "object": "model",
                "created": r.created_at // 1000,
                "owned_by": "opsloop-gateway",
            }
            for r in routes
            if "*" in key.routes or r.name in key.routes
        ]
        return JSONBody({"object": "list", "data": data})

    @app.get("/health", summary="Liveness")
    async def health() -> Response:
        return JSONBody({"status": "ok", "counters": "redis" if state.redis_url else "sql"})

    @app.exception_handler(OpsloopError)
    async def _opsloop_error(_: Request, exc: OpsloopError) -> Response:
        return JSONBody(error_body(exc), status_code=exc.http_status)

    return app
