"""Five-field cron expressions (minute hour day-of-month month day-of-week), UTC.

Each field is ``*``, a number, a range ``a-b``, a list ``a,b`` and any of these
with a step ``/n``; ``@hourly``, ``@daily``, ``@weekly`` and ``@monthly`` are
accepted. When both day fields are restricted a day matches either (as in cron).
"""

from __future__ import annotations

import datetime as dt

from opsloop.workflows._errors import WorkflowDefinitionError

__all__ = ["Cron", "parse_cron"]

_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _field(text: str, lo: int, hi: int) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a_s, b_s = rng.split("-", 1)
            a, b = int(a_s), int(b_s)
        else:
            a = int(rng)
            b = hi if step_s else a
        if not (lo <= a <= hi and lo <= b <= hi) or a > b or step < 1:
            raise ValueError(part)
        out.update(range(a, b + 1, step))
    return frozenset(out)


class Cron:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        text = _ALIASES.get(expr.strip(), expr.strip())
        parts = text.split()
        if len(parts) != 5:
            raise WorkflowDefinitionError(f"cron {expr!r}: five fields expected")
        try:
            fields = [_field(p, lo, hi) for p, (lo, hi) in zip(parts, _BOUNDS, strict=True)]
        except ValueError as e:
            raise WorkflowDefinitionError(f"cron {expr!r}: bad field {e}") from None
        self.minute, self.hour, self.dom, self.month, dow = fields
        self.dow = frozenset(d % 7 for d in dow)
        self.dom_any, self.dow_any = parts[2] == "*", parts[4] == "*"

    def _day_ok(self, d: dt.datetime) -> bool:
        dom_ok = d.day in self.dom
        dow_ok = (d.isoweekday() % 7) in self.dow
        if self.dom_any or self.dow_any:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def next_after(self, ms: int) -> int:
        """The first firing time strictly after ``ms`` (epoch milliseconds), in milliseconds."""
        t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(second=0, microsecond=0)
        t += dt.timedelta(minutes=1)
        for _ in range(366 * 24 * 60 * 5):
            if t.month not in self.month:
                t = (t.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_ok(t):
                t = t.replace(hour=0, minute=0) + dt.timedelta(days=1)
                continue
            if t.hour not in self.hour:
                t = t.replace(minute=0) + dt.timedelta(hours=1)
                continue
            if t.minute not in self.minute:
                t += dt.timedelta(minutes=1)
                continue
            return int(t.timestamp() * 1000)
        raise WorkflowDefinitionError(f"cron {self.expr!r} never fires")


def parse_cron(expr: str) -> Cron:
    return Cron(expr)
