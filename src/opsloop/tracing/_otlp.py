"""OTLP/HTTP trace requests: decoding (protobuf or JSON) and mapping spans to opsloop's form.

Follows the OTLP specification: ``application/x-protobuf`` bodies are
``ExportTraceServiceRequest`` messages; ``application/json`` bodies are their
JSON mapping, with trace and span ids as hex strings (not base64) and enums
as integers. A span that cannot be stored (a malformed id, say) is rejected
on its own and counted in the response's ``partial_success``; a body that
cannot be decoded at all is answered with 400 and a ``google.rpc.Status``.

Needs ``opentelemetry-proto`` (the ``tracing`` extra); imported on first use.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import orjson

from opsloop.errors import InvalidArgument, PayloadTooLarge, Unavailable

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
# Resource attributes worth keeping on every span of that resource.
_RESOURCE_KEEP = (
    "service.name",
    "service.version",
    "deployment.environment",
    "deployment.environment.name",
    "user.id",
    "session.id",
)


def _pb() -> Any:
    try:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise Unavailable(
            "this server cannot read OTLP: install opentelemetry-proto "
            "(pip install 'opsloop[tracing]')"
        ) from exc
    return trace_service_pb2


def media_type(content_type: str | None) -> str:
    """``PROTOBUF`` or ``JSON`` for a Content-Type header; ``InvalidArgument`` otherwise."""
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct in (PROTOBUF, "application/protobuf", "application/x-protobuf+otlp"):
        return PROTOBUF
    if ct == JSON:
        return JSON
    raise InvalidArgument(
        f"OTLP traces are {PROTOBUF} or {JSON}, not {ct or 'an unlabelled body'}",
        details={"content_type": ct},
    )


def _hex_to_b64(v: Any) -> Any:
    if isinstance(v, str) and v and len(v) % 2 == 0:
        try:
            return base64.b64encode(bytes.fromhex(v)).decode()
        except ValueError:
            return v  # not hex: let the protobuf JSON parser read it as base64
    return v


def _fix_json_ids(data: Any) -> None:
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping expects base64."""
    if not isinstance(data, dict):
        return
    for rs in data.get("resourceSpans") or data.get("resource_spans") or []:
        if not isinstance(rs, dict):
            continue
        for ss in rs.get("scopeSpans") or rs.get("scope_spans") or []:
            if not isinstance(ss, dict):
                continue
            for sp in ss.get("spans") or []:
                if not isinstance(sp, dict):
                    continue
                for k in (
                    "traceId",
                    "spanId",
                    "parentSpanId",
                    "trace_id",
                    "span_id",
                    "parent_span_id",
                ):
                    if k in sp:
                        sp[k] = _hex_to_b64(sp[k])
                for link in sp.get("links") or []:
                    if isinstance(link, dict):
                        for k in ("traceId", "spanId", "trace_id", "span_id"):
                            if k in link:
                                link[k] = _hex_to_b64(link[k])


def decode_request(body: bytes, kind: str) -> Any:
    """The ``ExportTraceServiceRequest`` in ``body``; ``InvalidArgument`` if it does not decode."""
    pb = _pb()
    req = pb.ExportTraceServiceRequest()
    if kind == PROTOBUF:
        from google.protobuf.message import DecodeError

        try:
            req.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise InvalidArgument(
                f"the body is not an OTLP ExportTraceServiceRequest: {exc}"
            ) from exc
        return req
    from google.protobuf import json_format

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgument("an OTLP/JSON body must be an object with resourceSpans")
    _fix_json_ids(data)
    try:
        json_format.ParseDict(data, req, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidArgument(
            f"the body is not an OTLP/JSON ExportTraceServiceRequest: {exc}"
        ) from exc
    return req


def _value(v: Any, depth: int = 0) -> Any:
    w = v.WhichOneof("value")
    if w == "string_value":
        return v.string_value
    if w == "int_value":
        return v.int_value
    if w == "double_value":
        return v.double_value
    if w == "bool_value":
        return v.bool_value
    if depth > 16:
        return None
    if w == "array_value":
        return [_value(x, depth + 1) for x in v.array_value.values]
    if w == "kvlist_value":
        return {kv.key: _value(kv.value, depth + 1) for kv in v.kvlist_value.values}
    if w == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def request_spans(req: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Span dicts (``_normalize`` form) of a request, and one message per span rejected here."""
    out: list[dict[str, Any]] = []
    errors: list[str] = []
    for rs in req.resource_spans:
        res = _attrs(rs.resource.attributes)
        keep = {k: res[k] for k in _RESOURCE_KEEP if k in res}
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for sp in ss.spans:
                tid, sid, pid = sp.trace_id, sp.span_id, sp.parent_span_id
                if len(tid) != 16 or not any(tid) or len(sid) != 8 or not any(sid):
                    errors.append(
                        f"span {sp.name!r}: trace_id must be 16 bytes and span_id 8 bytes, not all zero"
                    )
                    continue
                if pid and len(pid) != 8:
                    errors.append(f"span {sp.name!r}: parent_span_id must be 8 bytes")
                    continue
                attrs = dict(keep)
                if scope:
                    attrs["otel.scope.name"] = scope
                attrs.update(_attrs(sp.attributes))
                start = sp.start_time_unix_nano // 1000
                end = max(start, sp.end_time_unix_nano // 1000)
                events = [
                    {
                        "name": ev.name or "event",
                        "time_us": ev.time_unix_nano // 1000 or start,
                        "attributes": _attrs(ev.attributes),
                    }
                    for ev in sp.events
                ]
                out.append(
                    {
                        "trace_id": tid.hex(),
                        "span_id": sid.hex(),
                        "parent_span_id": pid.hex() if pid and any(pid) else None,
                        "name": sp.name or "(unnamed)",
                        "start_us": start,
                        "end_us": end,
                        "status": _STATUS.get(sp.status.code, "UNSET"),
                        "status_message": sp.status.message or None,
                        "attributes": attrs,
                        "events": events,
                    }
                )
    return out, errors


def encode_response(rejected: int, message: str, kind: str) -> bytes:
    """An ``ExportTraceServiceResponse``, with ``partial_success`` when spans were rejected."""
    if kind == JSON:
        body: dict[str, Any] = {}
        if rejected or message:
            body["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
        return orjson.dumps(body)
    pb = _pb()
    resp = pb.ExportTraceServiceResponse()
    if rejected or message:
        resp.partial_success.rejected_spans = rejected
        resp.partial_success.error_message = message
    return bytes(resp.SerializeToString())


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# google.rpc.Code values for the HTTP statuses the endpoint answers with.
_RPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 413: 3, 415: 3, 500: 13, 503: 14}


def encode_status(http_status: int, code: str, message: str, kind: str) -> bytes:
    """The error body OTLP asks for: a ``google.rpc.Status`` (protobuf, or JSON).

    The JSON form also carries opsloop's ``{"error": {...}}`` so opsloop
    clients read it like any other API error.
    """
    rpc = _RPC_CODE.get(http_status, 2)
    if kind == JSON:
        return orjson.dumps(
            {"code": rpc, "message": message, "error": {"code": code, "message": message}}
        )
    msg = message.encode()
    # Status { int32 code = 1; string message = 2; } encoded by hand: it is not in opentelemetry-proto.
    return b"\x08" + _varint(rpc) + b"\x12" + _varint(len(msg)) + msg


def safe_gunzip(body: bytes, encoding: str, limit: int) -> bytes:
    """Decompress a gzip/deflate body, refusing to inflate past ``limit`` bytes."""
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return body
    if enc not in ("gzip", "deflate", "x-gzip"):
        raise InvalidArgument(
            f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or none)"
        )
    d = zlib.decompressobj(32 + zlib.MAX_WBITS)  # reads gzip and zlib headers alike
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidArgument(f"the body is not valid {enc}: {exc}") from exc
    if len(out) > limit or d.unconsumed_tail:
        raise PayloadTooLarge(f"the decompressed body is larger than the limit of {limit} bytes")
    return out
