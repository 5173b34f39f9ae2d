"""Gateway types that cross the SDK and the REST API: routes, keys, teams, limits, usage."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opsloop.gateway._answer_checks import schema_problem

__all__ = [
    "BreakerSpec",
    "CacheSpec",
    "CreatedKey",
    "GuardSpec",
    "Limits",
    "Prices",
    "RetrySpec",
    "Route",
    "RouteSpec",
    "Team",
    "Upstream",
    "UsageReport",
    "UsageRow",
    "VirtualKey",
]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,255}")


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError(
            f"{what} must be 1-256 characters of letters, digits and . _ : @ -, "
            f"starting with a letter or digit, got {value!r}"
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(_Model):
    """Limits of a key or a team; None: no limit of that kind. Every key is held to them."""

    requests_per_minute: int | None = Field(default=None, ge=0, le=10**9)
    input_tokens_per_minute: int | None = Field(default=None, ge=0, le=10**12)
    output_tokens_per_minute: int | None = Field(default=None, ge=0, le=10**12)
    daily_tokens: int | None = Field(default=None, ge=0, le=10**15)
    monthly_tokens: int | None = Field(default=None, ge=0, le=10**15)
    daily_cost_usd: float | None = Field(default=None, ge=0, le=10**9)
    monthly_cost_usd: float | None = Field(default=None, ge=0, le=10**9)
    max_input_tokens: int | None = Field(default=None, ge=1, le=10**9)  # per request
    max_output_tokens: int | None = Field(default=None, ge=1, le=10**9)  # per request
    timeout_s: float | None = Field(default=None, gt=0, le=3600)


class Upstream(_Model):
    """One upstream: an OpenAI-compatible base URL (``http://host:port/v1``), or the running
    ``opsloop serve`` deployments of a ``models:/NAME@ALIAS`` (balanced across them)."""

    url: str | None = Field(default=None, max_length=1024)
    deployment: str | None = Field(default=None, max_length=1024)
    model: str | None = Field(default=None, max_length=256)  # the model name sent upstream
    api_key_env: str | None = Field(default=None, max_length=256)  # env var holding its key
    weight: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_target(self) -> Upstream:
        if (self.url is None) == (self.deployment is None):
            raise ValueError("an upstream names exactly one of url or deployment")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("an upstream url starts with http:// or https://")
        if self.deployment is not None and not self.deployment.startswith("models:/"):
            raise ValueError("an upstream deployment is a models:/ URI")
        return self


class RetrySpec(_Model):
    """Retries on retryable upstream errors only (connection, timeout, 408/409/429/5xx)."""

    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.1, ge=0, le=60)
    max_backoff_s: float = Field(default=2.0, ge=0, le=600)


class BreakerSpec(_Model):
    """Per upstream: ``failures`` consecutive failures open it for ``cooldown_s``; then one
    probe (half-open) closes it again or reopens it."""

    failures: int = Field(default=5, ge=1, le=1000)
    cooldown_s: float = Field(default=30.0, gt=0, le=3600)


class Prices(_Model):
    """USD per million tokens, for cost budgets and the usage report."""

    input_per_mtok: float = Field(default=0.0, ge=0, le=10**6)
    output_per_mtok: float = Field(default=0.0, ge=0, le=10**6)


GuardAction = Literal["off", "flag", "redact", "block"]


class GuardSpec(_Model):
    """Guardrails of a route, on input and on output (streams included)."""

    injection: Literal["off", "flag", "block"] = "off"
    # patterns: regular expressions (no model); minilm: the patterns or a classifier on
    # MiniLM embeddings (docs/gateway.md has both measured on held-out attacks)
    injection_method: Literal["patterns", "minilm"] = "patterns"
    pii: GuardAction = "off"  # input: e-mails, phones, card numbers (Luhn), IBANs (mod 97), SSNs
    secrets: GuardAction = "off"  # input: API keys, tokens, private keys
    output_pii: GuardAction = "off"
    output_secrets: GuardAction = "off"
    canary: str | None = Field(default=None, min_length=8, max_length=256)  # leak -> blocked
    banned: list[str] = Field(default_factory=list, max_length=64)  # regexes, input and output
    banned_action: Literal["flag", "redact", "block"] = "block"
    # Whole-answer checks (on streams: when the stream ends; a block then ends it with an
    # error event after the text already sent).
    output_schema: dict[str, Any] | None = None  # the answer must be JSON valid against it
    schema_action: Literal["flag", "block"] = "block"
    grounded: Literal["off", "flag", "block"] = "off"  # RAG routes: answer vs the request's text
    min_grounded: float = Field(default=0.6, ge=0.0, le=1.0)

    @field_validator("output_schema")
    @classmethod
    def _schema_ok(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            problem = schema_problem(v)
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("banned")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        for p in v:
            if len(p) > 512:
                raise ValueError("a banned pattern has at most 512 characters")
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"banned pattern {p!r} does not compile: {exc}") from exc
        return v


class CacheSpec(_Model):
    """The answer cache of non-streamed chat and completion requests, scoped per team (else
    per key), route and request parameters, for ``ttl_s`` (0: off). Exact matches always;
    ``semantic_similarity`` (off when None) also answers a request whose MiniLM similarity
    to a cached one reaches it and whose numbers, names, negations, opposite words and
    content words are the same (docs/gateway.md has the measured false-hit rates and the
    chosen threshold, 0.75; it is off by default)."""

    ttl_s: int = Field(default=0, ge=0, le=30 * 86400)  # 0: off
    semantic_similarity: float | None = Field(default=None, ge=0.5, le=1.0)


class RouteSpec(_Model):
    """What a route does: its upstreams (balanced), fallbacks, retries, breaker, prices,
    guardrails, cache, timeout."""

    upstreams: list[Upstream] = Field(min_length=1, max_length=32)
    fallbacks: list[str] = Field(default_factory=list, max_length=8)  # other routes, in order
    retry: RetrySpec = Field(default_factory=RetrySpec)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    prices: Prices = Field(default_factory=Prices)
    guards: GuardSpec = Field(default_factory=GuardSpec)
    cache: CacheSpec = Field(default_factory=CacheSpec)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    default_max_tokens: int = Field(default=256, ge=1, le=10**6)
    # Added to a prompt's UTF-8 byte count for the worst-case token reservation (chat
    # templates add special tokens and sometimes a default system prompt).
    prompt_overhead_tokens: int = Field(default=64, ge=0, le=10**6)

    @field_validator("fallbacks")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return [check_name(n, "a fallback route") for n in v]


class Route(RouteSpec):
    name: str
    created_at: int
    updated_at: int


class Team(_Model):
    name: str
    limits: Limits
    created_at: int
    updated_at: int


class VirtualKey(_Model):
    """A virtual key as stored: its secret is never kept, only its SHA-256."""

    id: str
    name: str
    prefix: str
    team: str | None = None
    owner: str = ""
    routes: list[str]
    limits: Limits
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None


class CreatedKey(_Model):
    """A new key and its secret: shown once, never again."""

    key: VirtualKey
    secret: str


class UsageRow(_Model):
    group: str | None
    bucket: int | None = None  # start of the hour or day (ms), when bucketed
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cache_hits: int


class UsageReport(_Model):
    group_by: str
    bucket: str | None
    since: int | None
    until: int | None
    rows: list[UsageRow]
