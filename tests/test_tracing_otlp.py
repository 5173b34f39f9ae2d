"""The OTLP/HTTP receiver, driven by the real OpenTelemetry SDK over a real socket.

Protobuf goes through the SDK's own ``OTLPSpanExporter`` (also gzip-compressed);
JSON goes through a small exporter that uses the SDK's own OTLP encoder and
writes the OTLP/JSON mapping (hex ids), as collectors and JS SDKs send it.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from opsloop.settings import Settings
from tests.conftest import LiveServer, live_server

SECRETS = ["alice@example.com", "sk-proj-AbCdEfGhIjKlMnOpQrStUv0123", "4111 1111 1111 1111"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("otlp") / "home"
    settings = Settings(home=home, trace_mask_patterns=["email", "api_key", "credit_card"])
    with live_server(settings) as srv:
        yield srv


class OTLPJsonExporter(SpanExporter):
    """The SDK's OTLP encoding, sent as OTLP/JSON (ids in hex, per the OTLP spec)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.responses: list[httpx.Response] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from google.protobuf.json_format import MessageToDict

        body = MessageToDict(encode_spans(spans))
        for rs in body["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    for k in ("traceId", "spanId", "parentSpanId"):
                        if k in sp:
                            sp[k] = base64.b64decode(sp[k]).hex()
        r = httpx.post(self.endpoint, json=body)
        self.responses.append(r)
        return SpanExportResult.SUCCESS if r.status_code == 200 else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


def _provider(exporter: SpanExporter, *, batch: bool, service: str) -> TracerProvider:
    p = TracerProvider(resource=Resource.create({"service.name": service}))
    p.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return p


def _emit_agent(provider: TracerProvider, user: str) -> str:
    """An agent trace with a chat call, a tool call that fails, and GenAI attributes."""
    tracer = provider.get_tracer("my.agent", "1.0")
    with tracer.start_as_current_span(
        "invoke_agent helper", attributes={"user.id": user, "session.id": f"{user}-s"}
    ) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.request.temperature": 0.3,
                "gen_ai.request.max_tokens": 256,
                "gen_ai.usage.input_tokens": 2_000_000,
                "gen_ai.usage.output_tokens": 100_000,
                "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
                "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", "content": "yo"}]}]',
            },
        ):
            pass
        try:
            with tracer.start_as_current_span(
                "execute_tool search", attributes={"gen_ai.operation.name": "execute_tool"}
            ):
                raise TimeoutError("search timed out")
        except TimeoutError:
            pass
        return format(root.get_span_context().trace_id, "032x")


def _get(server: LiveServer, path: str, **params: Any) -> Any:
    r = httpx.get(f"{server.url}/api/v1{path}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _check_agent_trace(server: LiveServer, trace_id: str, user: str, service: str) -> None:
    t = _get(server, f"/traces/{trace_id}")
    assert t["name"] == "invoke_agent helper" and t["span_count"] == 3
    assert (t["user_id"], t["session_id"], t["service_name"]) == (user, f"{user}-s", service)
    assert t["status"] == "ERROR" and t["error_count"] == 1
    assert (t["input_tokens"], t["output_tokens"]) == (2_000_000, 100_000)
    assert t["total_cost"] == pytest.approx(2 * 2.5 + 0.1 * 10.0)  # gpt-4o default prices
    assert t["models"] == ["gpt-4o-2024-08-06"]
    root = t["spans"][0]
    kids = {c["name"]: c for c in root["children"]}
    chat = kids["chat gpt-4o"]
    assert chat["kind"] == "llm" and chat["model"] == "gpt-4o-2024-08-06"
    assert chat["attributes"]["gen_ai.request.temperature"] == 0.3
    assert chat["attributes"]["gen_ai.request.max_tokens"] == 256
    assert chat["attributes"]["gen_ai.provider.name"] == "openai"
    assert chat["attributes"]["otel.scope.name"] == "my.agent"
    assert chat["inputs"] == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert chat["outputs"][0]["role"] == "assistant"
    assert "gen_ai.input.messages" not in chat["attributes"]  # moved to inputs, not stored twice
    tool = kids["execute_tool search"]
    assert tool["kind"] == "tool" and tool["status"] == "ERROR"
    assert "search timed out" in tool["status_message"]
    assert tool["events"][0]["name"] == "exception"
    assert tool["events"][0]["attributes"]["exception.type"] == "TimeoutError"
    assert root["duration_ms"] >= chat["duration_ms"] and chat["offset_ms"] >= 0


def test_protobuf_from_the_real_sdk_exporter(server: LiveServer) -> None:
    provider = _provider(
        OTLPSpanExporter(endpoint=f"{server.url}/v1/traces"), batch=True, service="pb-svc"
    )
    tid = _emit_agent(provider, "pb-user")
    assert provider.force_flush(30_000)
    provider.shutdown()
    _check_agent_trace(server, tid, "pb-user", "pb-svc")
    assert [t["id"] for t in _get(server, "/traces", service_name="pb-svc")["traces"]] == [tid]


def test_gzip_compressed_protobuf(server: LiveServer) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", compression=Compression.Gzip)
    provider = _provider(exporter, batch=True, service="gz-svc")
    tid = _emit_agent(provider, "gz-user")
    assert provider.force_flush(30_000)
    provider.shutdown()
    _check_agent_trace(server, tid, "gz-user", "gz-svc")


def test_json_from_the_real_sdk_encoder(server: LiveServer) -> None:
    exporter = OTLPJsonExporter(f"{server.url}/v1/traces")
    provider = _provider(exporter, batch=False, service="json-svc")
    tid = _emit_agent(provider, "json-user")
    provider.shutdown()
    assert exporter.responses and all(r.status_code == 200 for r in exporter.responses)
    assert exporter.responses[0].headers["content-type"].startswith("application/json")
    assert exporter.responses[0].json() == {}  # full success: no partialSuccess
    _check_agent_trace(server, tid, "json-user", "json-svc")


def _request(
    trace_id: bytes, span_id: bytes, name: str, attrs: dict[str, str] | None = None
) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    sp = req.resource_spans.add().scope_spans.add().spans.add()
    sp.trace_id, sp.span_id, sp.name = trace_id, span_id, name
    sp.start_time_unix_nano, sp.end_time_unix_nano = (
        1_700_000_000_000_000_000,
        1_700_000_000_500_000_000,
    )
    for k, v in (attrs or {}).items():
        kv = sp.attributes.add()
        kv.key, kv.value.string_value = k, v
    return req


def _status(resp: httpx.Response) -> tuple[int, str]:
    """The google.rpc.Status an OTLP error answers with: (code, message)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    if resp.headers["content-type"].startswith("application/json"):
        body = resp.json()
        assert body["error"]["code"].isupper()  # the opsloop shape rides along
        return body["code"], body["message"]
    fd = descriptor_pb2.FileDescriptorProto(name="status_test.proto", package="t")
    m = fd.message_type.add(name="Status")
    m.field.add(name="code", number=1, type=5, label=1)
    m.field.add(name="message", number=2, type=9, label=1)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Status"))
    st = cls.FromString(resp.content)
    return st.code, st.message


def test_bad_payloads_get_4xx_not_500(server: LiveServer) -> None:
    url = f"{server.url}/v1/traces"
    before = _get(server, "/traces", limit=1000)["traces"]
    pb = {"content-type": "application/x-protobuf"}
    cases = [
        (b"\xff\xff\xff garbage", pb, 400),
        (b"{not json", {"content-type": "application/json"}, 400),
        (b'["a list"]', {"content-type": "application/json"}, 400),
        (b'{"resourceSpans": "nope"}', {"content-type": "application/json"}, 400),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            {"content-type": "application/json"},
            400,
        ),
        (b"not gzip", {**pb, "content-encoding": "gzip"}, 400),
        (b"\x00", {**pb, "content-encoding": "br"}, 400),
        (b"{}", {"content-type": "text/plain"}, 415),
        (b"{}", {}, 415),
    ]
    for body, headers, status in cases:
        r = httpx.post(url, content=body, headers=headers)
        assert r.status_code == status, (body, headers, r.status_code, r.text)
        code, message = _status(r)
        assert code == 3 and message
    # A gzip bomb is refused without inflating it.
    bomb = gzip.compress(b"\x00" * (server.settings.max_request_bytes + 10))
    r = httpx.post(url, content=bomb, headers={**pb, "content-encoding": "gzip"})
    assert r.status_code == 413
    assert _get(server, "/traces", limit=1000)["traces"] == before


def test_malformed_spans_are_rejected_one_by_one(server: LiveServer) -> None:
    req = _request(b"\x00" * 16, b"\x01" * 8, "zero trace id")
    good = _request(b"\x07" * 16, b"\x08" * 8, "fine one").resource_spans[0]
    req.resource_spans.append(good)
    short = req.resource_spans.add().scope_spans.add().spans.add()
    short.trace_id, short.span_id, short.name = b"\x09" * 16, b"\x01\x02", "short span id"
    r = httpx.post(
        f"{server.url}/v1/traces",
        content=req.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert r.status_code == 200
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 2
    assert "trace_id" in resp.partial_success.error_message
    got = _get(server, f"/traces/{'07' * 16}")
    assert got["name"] == "fine one"


def test_server_side_masking_before_storage(server: LiveServer, tmp_path: Path) -> None:
    secret_text = f"mail {SECRETS[0]} key {SECRETS[1]} card {SECRETS[2]}"
    tid = b"\x0a" * 16
    req = _request(
        tid,
        b"\x0b" * 8,
        "masked",
        {
            "gen_ai.input.messages": f'[{{"role": "user", "content": "{secret_text}"}}]',
            "note": secret_text,
        },
    )
    ev = req.resource_spans[0].scope_spans[0].spans[0].events.add()
    ev.name = "exception"
    kv = ev.attributes.add()
    kv.key, kv.value.string_value = "exception.message", secret_text
    req.resource_spans[0].scope_spans[0].spans[0].status.code = 2
    r = httpx.post(
        f"{server.url}/v1/traces",
        content=req.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert r.status_code == 200
    resp = httpx.get(f"{server.url}/api/v1/traces/{tid.hex()}")
    span = resp.json()["spans"][0]
    assert "[REDACTED:email]" in span["attributes"]["note"]
    assert "[REDACTED:api_key]" in span["inputs"][0]["content"]
    assert "[REDACTED:credit_card]" in span["status_message"]
    for secret in SECRETS:
        assert secret not in resp.text
    import sqlite3

    db_path = server.settings.home / "opsloop.db"
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA wal_checkpoint(FULL)")
    con.close()
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob("opsloop.db*") if p.is_file())
    for secret in SECRETS:
        assert secret.encode() not in raw
    assert b"[REDACTED:email]" in raw  # the check reads real, readable bytes
