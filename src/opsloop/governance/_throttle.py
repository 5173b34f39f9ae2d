"""Sign-in guessing slowed down: an address that failed too often lately must wait.

One ``SignInThrottle`` per server process (``sign_in_throttle(context)``) counts
the failed sign-ins of each client address over the last minute: bad API
tokens, bad session cookies and refused ``POST /auth/session`` calls alike.
Past ``FAILED_SIGN_INS_PER_MINUTE`` the address is refused with
``SIGN_IN_RATE_LIMITED`` (429) until its oldest failure is a minute old, even
with a good token.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from opsloop.governance._errors import SignInThrottled

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["FAILED_SIGN_INS_PER_MINUTE", "SignInThrottle", "sign_in_throttle"]

FAILED_SIGN_INS_PER_MINUTE = 30  # bad sign-ins from one address before it must wait


class SignInThrottle:
    """Failed sign-ins per client address over the last minute."""

    def __init__(self, limit: int = FAILED_SIGN_INS_PER_MINUTE) -> None:
        self.limit = limit
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Raise ``SignInThrottled`` when ``address`` failed too often in the last minute."""
        self._note(address, failed=False)

    def failed(self, address: str) -> None:
        """Count one failed sign-in of ``address``."""
        self._note(address, failed=True)

    def _note(self, address: str, *, failed: bool) -> None:
        now = time.monotonic()
        with self._lock:
            recent = self._failures.get(address)
            if recent is not None:
                while recent and recent[0] < now - 60:
                    recent.popleft()
            if failed:
                if len(self._failures) > 10_000:  # forget the quiet addresses
                    self._failures = {a: q for a, q in self._failures.items() if q}
                self._failures.setdefault(address, deque()).append(now)
            elif recent and len(recent) >= self.limit:
                wait = int(recent[0] + 60 - now) + 1
                raise SignInThrottled(
                    f"too many failed sign-ins from {address or 'this address'}; "
                    f"try again in {wait} s",
                    details={"retry_after_s": wait},
                )


def sign_in_throttle(ctx: Context) -> SignInThrottle:
    """The server's one throttle (the guard and the sign-in routes share it)."""
    return SignInThrottle()
