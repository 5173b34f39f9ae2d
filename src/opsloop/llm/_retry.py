"""When to retry a call to an HTTP model endpoint, and how long to wait first.

Retried: connection failures, timeouts while connecting or waiting for the
answer, and the statuses that mean "try again" (408, 409, 429, 500, 502, 503,
504). Never retried: any other 4xx (400, 401, 403, 404, 422, ...): the same
request would fail the same way. Waits grow exponentially with jitter (half
fixed, half random, so clients that failed together do not retry together);
a ``Retry-After`` (or OpenAI's ``retry-after-ms``) header is honoured, up to
``max_retry_after_s``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from opsloop.errors import InvalidArgument

__all__ = ["RETRYABLE_STATUS", "RetryPolicy", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` is either seconds or an HTTP date; anything unparsable is ignored.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            v = float(ms) / 1000.0
        except ValueError:
            v = -1.0
        if v >= 0:
            return v
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        v = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        v = when.timestamp() - (time.time() if now is None else now)
        return max(0.0, v)
    return v if v >= 0 else None


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt; waits ``backoff_s * 2**n`` (jittered)."""

    max_retries: int = 2
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise InvalidArgument("max_retries must be an integer")
        if not 0 <= self.max_retries <= 20:
            raise InvalidArgument("max_retries must be in 0..20")
        for name in ("backoff_s", "max_backoff_s", "max_retry_after_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise InvalidArgument(f"{name} must be a non-negative number")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if retry_after is not None:
            return float(min(retry_after, self.max_retry_after_s))
        cap = float(min(self.max_backoff_s, self.backoff_s * (2**retry)))
        return cap / 2 + random.uniform(0, cap / 2)
