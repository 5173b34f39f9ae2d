"""The LLM gateway: one OpenAI-compatible endpoint in front of routes (opsloop deployments and
outside OpenAI-compatible providers), with virtual keys stored hashed, exact limits and budgets
per key and team (shared across replicas through Redis or the database), retries, fallbacks,
circuit breakers, an exact cache and guardrails (see docs/gateway.md).

``import opsloop.gateway`` is cheap: the store, FastAPI and httpx load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.gateway._app import (
        CACHE_HEADER,
        DECISIONS_HEADER,
        OVERHEAD_HEADER,
        ROUTE_HEADER,
        SIMILARITY_HEADER,
        create_gateway_app,
    )
    from opsloop.gateway._client import Gateway
    from opsloop.gateway._contrast import meaning_differs
    from opsloop.gateway._errors import (
        BudgetDailyCost,
        BudgetDailyTokens,
        BudgetMonthlyCost,
        BudgetMonthlyTokens,
        GuardrailBlocked,
        InputTooLarge,
        LimitExceeded,
        NoUpstream,
        OutputCapExceeded,
        RateLimitInputTokens,
        RateLimitOutputTokens,
        RateLimitRequests,
    )
    from opsloop.gateway._guards import (
        StreamGuard,
        detect_injection,
        find_pii,
        find_secrets,
        iban_valid,
        luhn_valid,
        redact,
    )
    from opsloop.gateway._run import run_gateway
    from opsloop.gateway._semantic import SemanticCache
    from opsloop.gateway._service import GatewayService
    from opsloop.gateway._upstream import Breaker
    from opsloop.gateway.entities import (
        BreakerSpec,
        CacheSpec,
        CreatedKey,
        GuardSpec,
        Limits,
        Prices,
        RetrySpec,
        Route,
        RouteSpec,
        Team,
        Upstream,
        UsageReport,
        UsageRow,
        VirtualKey,
    )

_LAZY: dict[str, str] = {
    "CACHE_HEADER": "opsloop.gateway._app",
    "DECISIONS_HEADER": "opsloop.gateway._app",
    "OVERHEAD_HEADER": "opsloop.gateway._app",
    "ROUTE_HEADER": "opsloop.gateway._app",
    "SIMILARITY_HEADER": "opsloop.gateway._app",
    "SemanticCache": "opsloop.gateway._semantic",
    "meaning_differs": "opsloop.gateway._contrast",
    "create_gateway_app": "opsloop.gateway._app",
    "Gateway": "opsloop.gateway._client",
    "run_gateway": "opsloop.gateway._run",
    "GatewayService": "opsloop.gateway._service",
    "Breaker": "opsloop.gateway._upstream",
}
for _n in (
    "BudgetDailyCost",
    "BudgetDailyTokens",
    "BudgetMonthlyCost",
    "BudgetMonthlyTokens",
    "GuardrailBlocked",
    "InputTooLarge",
    "LimitExceeded",
    "NoUpstream",
    "OutputCapExceeded",
    "RateLimitInputTokens",
    "RateLimitOutputTokens",
    "RateLimitRequests",
):
    _LAZY[_n] = "opsloop.gateway._errors"
for _n in (
    "StreamGuard",
    "detect_injection",
    "find_pii",
    "find_secrets",
    "iban_valid",
    "luhn_valid",
    "redact",
):
    _LAZY[_n] = "opsloop.gateway._guards"
for _n in (
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
):
    _LAZY[_n] = "opsloop.gateway.entities"

__all__ = [
    "CACHE_HEADER",
    "DECISIONS_HEADER",
    "OVERHEAD_HEADER",
    "ROUTE_HEADER",
    "SIMILARITY_HEADER",
    "Breaker",
    "BreakerSpec",
    "BudgetDailyCost",
    "BudgetDailyTokens",
    "BudgetMonthlyCost",
    "BudgetMonthlyTokens",
    "CacheSpec",
    "CreatedKey",
    "Gateway",
    "GatewayService",
    "GuardSpec",
    "GuardrailBlocked",
    "InputTooLarge",
    "LimitExceeded",
    "Limits",
    "NoUpstream",
    "OutputCapExceeded",
    "Prices",
    "RateLimitInputTokens",
    "RateLimitOutputTokens",
    "RateLimitRequests",
    "RetrySpec",
    "Route",
    "RouteSpec",
    "SemanticCache",
    "StreamGuard",
    "Team",
    "Upstream",
    "UsageReport",
    "UsageRow",
    "VirtualKey",
    "create_gateway_app",
    "detect_injection",
    "find_pii",
    "find_secrets",
    "iban_valid",
    "luhn_valid",
    "meaning_differs",
    "redact",
    "run_gateway",
]


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
