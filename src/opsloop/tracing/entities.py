"""Types that cross the tracing API: trace summaries, span trees, statistics, prices."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class SpanKind(StrEnum):
    LLM = "llm"
    CHAIN = "chain"
    RETRIEVER = "retriever"
    TOOL = "tool"
    EMBEDDING = "embedding"
    AGENT = "agent"
    OTHER = "other"


class SpanStatus(StrEnum):
    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"


class TraceSummary(BaseModel):
    """One row of a trace list: what filters and the list view need, no span data."""

    id: str
    name: str
    root_span_id: str | None = None
    start_us: int = Field(description="Epoch microseconds of the earliest span start.")
    end_us: int
    duration_ms: float
    status: str = Field(description="ERROR when any span failed, else OK.")
    span_count: int
    error_count: int
    user_id: str | None = None
    session_id: str | None = None
    input_tokens: int
    output_tokens: int
    total_cost: float = Field(description="US dollars, summed over the trace's spans.")
    models: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    service_name: str | None = None
    experiment_id: str | None = None
    deployment_id: str | None = None


class TracePage(BaseModel):
    traces: list[TraceSummary]
    next_page_token: str | None = None


class SpanNode(BaseModel):
    """A span with timings relative to its trace's start, for a waterfall view."""

    span_id: str
    parent_span_id: str | None = None
    name: str
    kind: str
    start_us: int
    end_us: int
    offset_ms: float = Field(description="Start, in milliseconds after the trace's start.")
    duration_ms: float
    depth: int
    status: str
    status_message: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    inputs: Any = None
    outputs: Any = None
    events: list[dict[str, Any]] = Field(default_factory=list)
    children: list[SpanNode] = Field(default_factory=list)


class TraceDetail(TraceSummary):
    """A trace with its spans: a tree of root spans (``flat`` lists them depth-first instead)."""

    spans: list[SpanNode]


class IngestResult(BaseModel):
    accepted: int = Field(description="Spans stored by this request.")
    duplicates: int = Field(0, description="Spans already stored (a retried export); skipped.")
    rejected: int = Field(0, description="Spans refused (OTLP only); see errors.")
    errors: list[str] = Field(default_factory=list)


class ModelPrice(BaseModel):
    model: str
    input_per_mtok: float = Field(description="US dollars per million input tokens.")
    output_per_mtok: float = Field(description="US dollars per million output tokens.")
    source: str = Field(description="default, file (the home's price file) or custom (set by API).")


class DayStats(BaseModel):
    day: str = Field(description="UTC date, YYYY-MM-DD.")
    traces: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    input_tokens: int
    output_tokens: int
    cost: float


class ModelStats(BaseModel):
    model: str
    calls: int
    p50_ms: float | None
    p95_ms: float | None
    input_tokens: int
    output_tokens: int
    cost: float


class TraceStats(BaseModel):
    traces: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    input_tokens: int
    output_tokens: int
    cost: float
    by_day: list[DayStats]
    by_model: list[ModelStats]
