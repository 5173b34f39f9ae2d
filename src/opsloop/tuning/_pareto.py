"""Pareto fronts and the study charts logged on a study's run (plain SVG, no plotting library).

``non_dominated`` is the one definition of the front used by the SDK, the
service and the tests: a point is on the front when no other point is at
least as good in every objective and strictly better in one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

W, H = 640, 420
ML, MR, MT, MB = 72, 24, 40, 56  # margins: left, right, top, bottom


def _oriented(values: Sequence[float], directions: Sequence[str]) -> list[float]:
    # Everything becomes "bigger is better" so one comparison serves both directions.
    return [v if d == "maximize" else -v for v, d in zip(values, directions, strict=True)]


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    oa, ob = _oriented(a, directions), _oriented(b, directions)
    return all(x >= y for x, y in zip(oa, ob, strict=True)) and any(
        x > y for x, y in zip(oa, ob, strict=True)
    )


def non_dominated(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates (ties are all kept), in input order."""
    oriented = [_oriented(p, directions) for p in points]
    # Sorting by the first objective (best first) means a point can only be
    # dominated by one before it, which halves the comparisons on average.
    order = sorted(range(len(points)), key=lambda i: oriented[i], reverse=True)
    front: list[int] = []
    for i in order:
        oi = oriented[i]
        if not any(
            all(x >= y for x, y in zip(oriented[j], oi, strict=True)) and oriented[j] != oi
            for j in front
        ):
            front.append(i)
    return sorted(front)


# ---------------------------------------------------------------------- SVG


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    out = []
    t = start
    while t <= hi + step * 1e-9:
        out.append(round(t, 12))
        t += step
    return out


def _range(vals: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(vals), max(vals)
    if lo == hi:
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


class SvgCanvas:
    """A plain-SVG scatter canvas: data coordinates to pixels, axes with ticks, ``parts``."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        self.x0, self.x1 = _range(xs)
        self.y0, self.y1 = _range(ys)
        self.parts: list[str] = []

    def px(self, x: float) -> float:
        return ML + (x - self.x0) / (self.x1 - self.x0) * (W - ML - MR)

    def py(self, y: float) -> float:
        return H - MB - (y - self.y0) / (self.y1 - self.y0) * (H - MT - MB)

    def axes(self, title: str, xlabel: str, ylabel: str) -> None:
        p = self.parts
        p.append(
            f'<rect x="{ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}" '
            'fill="none" stroke="#999"/>'
        )
        for t in _ticks(self.x0, self.x1):
            x = self.px(t)
            p.append(
                f'<line x1="{x:.1f}" y1="{H - MB}" x2="{x:.1f}" y2="{H - MB + 5}" stroke="#999"/>'
            )
            p.append(f'<text x="{x:.1f}" y="{H - MB + 18}" text-anchor="middle">{t:.4g}</text>')
        for t in _ticks(self.y0, self.y1):
            y = self.py(t)
            p.append(f'<line x1="{ML - 5}" y1="{y:.1f}" x2="{ML}" y2="{y:.1f}" stroke="#999"/>')
            p.append(f'<text x="{ML - 8}" y="{y + 4:.1f}" text-anchor="end">{t:.4g}</text>')
        p.append(
            f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>'
        )
        p.append(
            f'<text x="{(ML + W - MR) / 2}" y="{H - 14}" text-anchor="middle">{escape(xlabel)}</text>'
        )
        p.append(
            f'<text transform="translate(18 {(MT + H - MB) / 2}) rotate(-90)" '
            f'text-anchor="middle">{escape(ylabel)}</text>'
        )

    def svg(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">'
            '<rect width="100%" height="100%" fill="white"/>' + "".join(self.parts) + "</svg>\n"
        )


def pareto_svg(
    points: Sequence[tuple[int, Sequence[float]]],
    directions: Sequence[str],
    objectives: Sequence[str],
    *,
    title: str = "Pareto front",
) -> str:
    """A scatter of every complete trial on the first two objectives, the front highlighted.

    ``points`` are ``(trial number, values)``. With more than two objectives
    the front is still computed on all of them; the chart shows the first two.
    """
    if len(directions) < 2:
        raise ValueError("a Pareto chart needs at least two objectives")
    if not points:
        c = SvgCanvas([0.0, 1.0], [0.0, 1.0])
        c.axes(f"{title} (no complete trials)", objectives[0], objectives[1])
        return c.svg()
    front = set(non_dominated([v for _, v in points], directions))
    xs = [float(v[0]) for _, v in points]
    ys = [float(v[1]) for _, v in points]
    c = SvgCanvas(xs, ys)
    arrows = ["↑" if d == "maximize" else "↓" for d in directions]
    c.axes(
        f"{title}: {len(front)} of {len(points)} trials",
        f"{objectives[0]} {arrows[0]}",
        f"{objectives[1]} {arrows[1]}",
    )
    for i, (num, _) in enumerate(points):
        if i not in front:
            c.parts.append(
                f'<circle cx="{c.px(xs[i]):.1f}" cy="{c.py(ys[i]):.1f}" r="3.5" fill="#bbb">'
                f"<title>trial {num}: {xs[i]:.4g}, {ys[i]:.4g}</title></circle>"
            )
    fx = sorted(front, key=lambda i: (xs[i], ys[i]))
    if len(directions) == 2 and len(fx) > 1:
        path = " ".join(f"{c.px(xs[i]):.1f},{c.py(ys[i]):.1f}" for i in fx)
        c.parts.append(
            f'<polyline points="{path}" fill="none" stroke="#d62728" stroke-width="1.5"/>'
        )
    for i in fx:
        num = points[i][0]
        c.parts.append(
            f'<circle cx="{c.px(xs[i]):.1f}" cy="{c.py(ys[i]):.1f}" r="5" fill="#d62728" '
            f'class="pareto"><title>trial {num}: {xs[i]:.4g}, {ys[i]:.4g}</title></circle>'
        )
    return c.svg()


def history_svg(
    points: Sequence[tuple[int, float]], direction: str, objective: str, *, title: str = ""
) -> str:
    """Each complete trial's value by trial number, with the best-so-far line."""
    if not points:
        c = SvgCanvas([0.0, 1.0], [0.0, 1.0])
        c.axes(f"{title or objective} (no complete trials)", "trial", objective)
        return c.svg()
    pts = sorted(points)
    xs = [float(n) for n, _ in pts]
    ys = [float(v) for _, v in pts]
    c = SvgCanvas(xs, ys)
    c.axes(title or f"{objective} by trial ({direction})", "trial", objective)
    best: list[str] = []
    cur: float | None = None
    for x, y in zip(xs, ys, strict=True):
        if cur is None or (y > cur if direction == "maximize" else y < cur):
            cur = y
        best.append(f"{c.px(x):.1f},{c.py(cur):.1f}")
        c.parts.append(f'<circle cx="{c.px(x):.1f}" cy="{c.py(y):.1f}" r="3" fill="#1f77b4"/>')
    c.parts.append(
        f'<polyline points="{" ".join(best)}" fill="none" stroke="#d62728" stroke-width="1.5"/>'
    )
    return c.svg()
