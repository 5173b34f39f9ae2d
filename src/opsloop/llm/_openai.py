"""Any OpenAI-compatible HTTP endpoint as a provider (vLLM, Ollama, llama.cpp, hosted APIs, ``opsloop serve``).

Plain httpx, no ``openai`` package: ``POST {base_url}/chat/completions`` (also
streamed as Server-Sent Events, asking for usage in the last event with
``stream_options.include_usage``), ``/completions`` and ``/embeddings``, with
``Authorization: Bearer <key>``. Failures become ``ProviderError`` (the
upstream status and message in ``details``) or ``ProviderTimeout``; see
``_retry`` for what is retried.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from opsloop.errors import InvalidArgument, ProviderError, ProviderTimeout
from opsloop.llm._provider import Messages, Provider
from opsloop.llm._retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after
from opsloop.llm._types import ChatResponse, EmbeddingResponse, GenOptions, StreamChunk, Usage

if TYPE_CHECKING:
    import httpx

    from opsloop.settings import Settings

__all__ = ["OpenAIProvider"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_ERROR_TEXT = 2000


def _upstream_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:MAX_ERROR_TEXT].strip()
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:MAX_ERROR_TEXT]
        if isinstance(err, str):
            return err[:MAX_ERROR_TEXT]
        if body.get("detail"):
            return str(body["detail"])[:MAX_ERROR_TEXT]
        if body.get("message"):
            return str(body["message"])[:MAX_ERROR_TEXT]
    return resp.text[:MAX_ERROR_TEXT].strip()


def _usage(body: Any) -> Usage:
    u = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(u, dict):
        return Usage(0, 0)
    inp = u.get("prompt_tokens", u.get("input_tokens", 0))
    out = u.get("completion_tokens", u.get("output_tokens", 0))
    return Usage(int(inp or 0), int(out or 0))


class OpenAIProvider(Provider):
    """Chat, completions, streaming and embeddings over an OpenAI-compatible HTTP API.

    ``timeout_s`` bounds each attempt (connecting, and each wait for data);
    a call's ``timeout_s`` overrides it. ``count_tokens`` has no endpoint to ask:
    with ``tokenizer=`` (another provider, e.g. ``local:smollm2`` for a served
    SmolLM2) it counts exactly, otherwise it estimates four characters a token.
    """

    supports_tools = True  # ``tools``/``tool_choice`` go to the endpoint as they are

    def __init__(
        self,
        spec: str,
        model: str,
        *,
        base_url: str,
        api_key: str | None,
        settings: Settings,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_retry_after_s: float = 60.0,
        headers: dict[str, str] | None = None,
        stream_usage: bool = True,
        tokenizer: Provider | None = None,
        max_concurrency: int = 8,
        tracing: Any = None,
        trace: bool | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InvalidArgument(
                f"base_url must be an http(s):// URL, not {base_url!r}",
                details={"param": "base_url"},
            )
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0:
            raise InvalidArgument("timeout_s must be a positive number")
        super().__init__(
            spec=spec,
            model=model,
            provider="openai",
            settings=settings,
            tracing=tracing,
            trace=trace,
        )
        self.base_url = base_url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.retry = RetryPolicy(max_retries, backoff_s, max_backoff_s, max_retry_after_s)
        self.stream_usage = stream_usage
        self.tokenizer = tokenizer
        self.max_concurrency = max(1, int(max_concurrency))
        self._headers = {"Accept": "application/json", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._http: httpx.Client | None = None
        self.attempts = 0  # HTTP attempts made, retries included (for diagnostics)

    def __repr__(self) -> str:
        # Never show the key.
        return f"<OpenAIProvider spec={self.spec!r} base_url={self.base_url!r}>"

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # ------------------------------------------------------------------ HTTP

    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx

            self._http = httpx.Client(
                base_url=self.base_url, headers=self._headers, timeout=self.timeout_s
            )
        return self._http

    def _send(
        self, path: str, body: dict[str, Any], timeout_s: float | None, *, stream: bool = False
    ) -> httpx.Response:
        """The first successful response (a stream not yet read when ``stream``), after retries."""
        import httpx

        http = self._client()
        timeout = httpx.Timeout(timeout_s if timeout_s is not None else self.timeout_s)
        url = f"{self.base_url}{path}"
        retry = 0
        while True:
            self.attempts += 1
            try:
                req = http.build_request(
                    "POST",
                    path,
                    content=orjson.dumps(body),
                    headers={"Content-Type": "application/json"},
                    timeout=timeout,
                )
                resp = http.send(req, stream=stream)
            except (httpx.ConnectError, httpx.TimeoutException) as exc:
                if retry < self.retry.max_retries and not isinstance(exc, httpx.WriteTimeout):
                    time.sleep(self.retry.delay(retry))
                    retry += 1
                    continue
                details = {"url": url, "attempts": retry + 1, "error": type(exc).__name__}
                if isinstance(exc, httpx.TimeoutException):
                    secs = timeout.read or self.timeout_s
                    raise ProviderTimeout(
                        f"{self.spec}: no answer from {url} within {secs:g}s "
                        f"({retry + 1} attempt{'s' if retry else ''})",
                        details={**details, "timeout_s": secs},
                    ) from exc
                raise ProviderError(
                    f"{self.spec}: cannot reach {url}: {exc}", details=details
                ) from exc
            except httpx.HTTPError as exc:
                raise ProviderError(
                    f"{self.spec}: request to {url} failed: {exc}",
                    details={"url": url, "attempts": retry + 1, "error": type(exc).__name__},
                ) from exc
            if resp.status_code < 400:
                return resp
            if stream:
                resp.read()
            resp.close()
            if resp.status_code in RETRYABLE_STATUS and retry < self.retry.max_retries:
                time.sleep(self.retry.delay(retry, parse_retry_after(resp.headers)))
                retry += 1
                continue
            message = _upstream_message(resp)
            raise ProviderError(
                f"{self.spec}: {url} answered HTTP {resp.status_code}: {message}",
                details={
                    "status": resp.status_code,
                    "message": message,
                    "url": url,
                    "attempts": retry + 1,
                },
            )

    def _post(self, path: str, body: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
        resp = self._send(path, body, timeout_s)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ProviderError(
                f"{self.spec}: {self.base_url}{path} answered something that is not a JSON object",
                details={"url": f"{self.base_url}{path}", "body": resp.text[:500]},
            )
        return data

    def _body(self, opts: GenOptions, **fields: Any) -> dict[str, Any]:
        for param in ("repetition_penalty", "no_repeat_ngram_size"):
            if getattr(opts, param) is not None:
                raise InvalidArgument(
                    f"{param} is a local-model setting; an OpenAI-compatible endpoint has no "
                    "such parameter (use frequency_penalty on the server's side)",
                    details={"param": param},
                )
        body: dict[str, Any] = {
            "model": self.model,
            **fields,
            "max_tokens": opts.max_tokens,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
        }
        if opts.stop:
            body["stop"] = list(opts.stop)
        if opts.seed is not None:
            body["seed"] = opts.seed
        if opts.response_format is not None:
            body["response_format"] = opts.response_format
        return body

    def _bad_shape(self, path: str, data: Any) -> ProviderError:
        return ProviderError(
            f"{self.spec}: unexpected answer from {self.base_url}{path}",
            details={"url": f"{self.base_url}{path}", "body": str(data)[:500]},
        )

    # ------------------------------------------------------------------ operations

    def _chat(self, messages: Messages, opts: GenOptions) -> ChatResponse:
        body = self._body(opts, messages=messages)
        return self._choice("/chat/completions", body, opts, lambda c: c["message"].get("content"))

    def _chat_tools(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: Any,
        opts: GenOptions,
    ) -> ChatResponse:
        body = self._body(opts, messages=messages, tools=tools, tool_choice=tool_choice)
        return self._choice(
            "/chat/completions",
            body,
            opts,
            lambda c: c["message"].get("content"),
            calls_of=lambda c: c["message"].get("tool_calls"),
        )

    def _complete(self, prompt: str, opts: GenOptions) -> ChatResponse:
        body = self._body(opts, prompt=prompt)
        return self._choice("/completions", body, opts, lambda c: c.get("text"))

    def _choice(
        self,
        path: str,
        body: dict[str, Any],
        opts: GenOptions,
        text_of: Callable[[Any], Any],
        *,
        calls_of: Callable[[Any], Any] | None = None,
    ) -> ChatResponse:
        """The first choice of a (chat) completion, whose text ``text_of(choice)`` finds (and
        whose tool calls ``calls_of(choice)`` finds)."""
        data = self._post(path, body, opts.timeout_s)
        try:
            choice = data["choices"][0]
            text = text_of(choice) or ""
            calls = calls_of(choice) if calls_of is not None else None
            if calls is not None and not (
                isinstance(calls, list) and all(isinstance(c, dict) for c in calls)
            ):
                raise TypeError("tool_calls")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._bad_shape(path, data) from None
        return ChatResponse(
            str(text),
            _usage(data),
            str(choice.get("finish_reason") or "stop"),
            str(data.get("model") or self.model),
            0.0,
            response_id=data.get("id"),
            tool_calls=calls or None,
        )

    def _stream(self, messages: Messages, opts: GenOptions) -> Iterator[StreamChunk]:
        import httpx

        body = self._body(opts, messages=messages, stream=True)
        if self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        resp = self._send("/chat/completions", body, opts.timeout_s, stream=True)
        finish: str | None = None
        usage: Usage | None = None
        try:
            for line in resp.iter_lines():
                if not line.startswith("data:"):
                    continue  # comments, event names, blank separators
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    event = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    raise self._bad_shape("/chat/completions", payload) from None
                if not isinstance(event, dict):
                    raise self._bad_shape("/chat/completions", payload)
                if "error" in event:
                    err = event["error"]
                    msg = err.get("message") if isinstance(err, dict) else str(err)
                    raise ProviderError(
                        f"{self.spec}: the stream failed: {msg}",
                        details={"message": msg, "url": f"{self.base_url}/chat/completions"},
                    )
                if isinstance(event.get("usage"), dict):
                    usage = _usage(event)
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if text:
                        yield StreamChunk(str(text))
                    if choice.get("finish_reason"):
                        finish = str(choice["finish_reason"])
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(
                f"{self.spec}: the stream stalled for more than "
                f"{opts.timeout_s or self.timeout_s:g}s",
                details={"url": f"{self.base_url}/chat/completions"},
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{self.spec}: the stream broke: {exc}",
                details={"url": f"{self.base_url}/chat/completions", "error": type(exc).__name__},
            ) from exc
        finally:
            resp.close()
        yield StreamChunk("", finish or "stop", usage or Usage(0, 0))

    def _batch_chat(self, conversations: list[Messages], opts: GenOptions) -> list[ChatResponse]:
        # Concurrent requests: a batching server (vLLM, opsloop serve) runs them together.
        workers = min(self.max_concurrency, len(conversations))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda c: self._chat(c, opts), conversations))

    def _embed(self, texts: list[str]) -> EmbeddingResponse:
        data = self._post("/embeddings", {"model": self.model, "input": texts}, None)
        try:
            rows = sorted(data["data"], key=lambda d: int(d.get("index", 0)))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._bad_shape("/embeddings", data) from None
        if len(vectors) != len(texts):
            raise ProviderError(
                f"{self.spec}: asked for {len(texts)} embeddings, got {len(vectors)}",
                details={"url": f"{self.base_url}/embeddings"},
            )
        u = _usage(data)
        return EmbeddingResponse(
            vectors, Usage(u.input_tokens, 0), str(data.get("model") or self.model)
        )

    def _count_text(self, text: str) -> int:
        if self.tokenizer is not None:
            return self.tokenizer.count_tokens(text)
        return max(1, round(len(text) / 4)) if text else 0

    def _count_messages(self, messages: Messages) -> int:
        if self.tokenizer is not None:
            return self.tokenizer.count_tokens(messages)
        # Roughly what chat formats add per message (role markers, separators).
        return sum(self._count_text(m["content"]) + 4 for m in messages) + 2
