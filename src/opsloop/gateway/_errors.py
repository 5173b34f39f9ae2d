"""The gateway's errors, each with its own stable code (listed in ``opsloop.errors``).

A limit refusal is a ``LimitExceeded`` subclass whose code names the limit;
window and budget refusals answer 429 with ``Retry-After`` (seconds until the
window that refused resets), per-request caps answer 400 (the same request
would never pass).
"""

from __future__ import annotations

from typing import Any, ClassVar

from opsloop.errors import InvalidArgument, OpsloopError, Unavailable

__all__ = [
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
    "limit_error",
]


class LimitExceeded(OpsloopError):
    """A key's or team's limit refused the request (``details``: limit, scope, limit value,
    used, asked, retry_after_s)."""

    code = "GATEWAY_LIMIT"
    http_status = 429
    limit: ClassVar[str] = ""

    @property
    def retry_after_s(self) -> int | None:
        v = self.details.get("retry_after_s")
        return int(v) if isinstance(v, int | float) else None


class RateLimitRequests(LimitExceeded):
    code = "RATE_LIMIT_REQUESTS"
    limit = "requests_per_minute"


class RateLimitInputTokens(LimitExceeded):
    code = "RATE_LIMIT_INPUT_TOKENS"
    limit = "input_tokens_per_minute"


class RateLimitOutputTokens(LimitExceeded):
    code = "RATE_LIMIT_OUTPUT_TOKENS"
    limit = "output_tokens_per_minute"


class BudgetDailyTokens(LimitExceeded):
    code = "BUDGET_DAILY_TOKENS"
    limit = "daily_tokens"


class BudgetMonthlyTokens(LimitExceeded):
    code = "BUDGET_MONTHLY_TOKENS"
    limit = "monthly_tokens"


class BudgetDailyCost(LimitExceeded):
    code = "BUDGET_DAILY_COST"
    limit = "daily_cost_usd"


class BudgetMonthlyCost(LimitExceeded):
    code = "BUDGET_MONTHLY_COST"
    limit = "monthly_cost_usd"


class InputTooLarge(LimitExceeded):
    """The request's input may exceed the key's or team's per-request cap."""

    code = "REQUEST_INPUT_CAP"
    http_status = 400
    limit = "max_input_tokens"


class OutputCapExceeded(LimitExceeded):
    """``max_tokens`` asks for more than the key's or team's per-request cap."""

    code = "REQUEST_OUTPUT_CAP"
    http_status = 400
    limit = "max_output_tokens"


_BY_LIMIT: dict[str, type[LimitExceeded]] = {
    c.limit: c
    for c in (
        RateLimitRequests,
        RateLimitInputTokens,
        RateLimitOutputTokens,
        BudgetDailyTokens,
        BudgetMonthlyTokens,
        BudgetDailyCost,
        BudgetMonthlyCost,
        InputTooLarge,
        OutputCapExceeded,
    )
}


def limit_error(limit: str, message: str, **details: Any) -> LimitExceeded:
    """The ``LimitExceeded`` subclass naming ``limit``."""
    return _BY_LIMIT[limit](message, details={"limit": limit, **details})


class GuardrailBlocked(InvalidArgument):
    """A route's guardrail blocked the request or the answer (``details``: guard, side)."""

    code = "GUARDRAIL_BLOCKED"
    http_status = 400


class NoUpstream(Unavailable):
    """Every upstream of the route and its fallbacks failed, or their breakers are open."""

    code = "GATEWAY_NO_UPSTREAM"
    http_status = 503
