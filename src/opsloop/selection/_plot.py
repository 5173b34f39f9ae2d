"""The selection chart: quality against p95 latency, Pareto members in red (plain SVG)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from opsloop.selection._types import LeaderboardRow
from opsloop.tuning import SvgCanvas


def selection_svg(rows: Sequence[LeaderboardRow], *, title: str = "Model selection") -> str:
    """Every candidate with a quality and a p95 latency; Pareto members red and joined."""
    pts = [r for r in rows if r.quality is not None and r.p95_latency_ms is not None]
    if not pts:
        c = SvgCanvas([0.0, 1.0], [0.0, 1.0])
        c.axes(f"{title} (no successful candidate)", "p95 latency (ms) ↓", "quality ↑")
        return c.svg()
    xs = [float(r.p95_latency_ms or 0.0) for r in pts]
    ys = [float(r.quality or 0.0) for r in pts]
    c = SvgCanvas(xs, ys)
    front = [i for i, r in enumerate(pts) if r.pareto]
    c.axes(
        f"{title}: {len(front)} of {len(pts)} on the Pareto front",
        "p95 latency (ms) ↓",
        "quality ↑",
    )
    ordered = sorted(front, key=lambda i: (xs[i], ys[i]))
    if len(ordered) > 1:
        path = " ".join(f"{c.px(xs[i]):.1f},{c.py(ys[i]):.1f}" for i in ordered)
        c.parts.append(
            f'<polyline points="{path}" fill="none" stroke="#d62728" stroke-width="1.2" '
            'stroke-dasharray="4 3"/>'
        )
    for i, r in enumerate(pts):
        on = r.pareto
        x, y = c.px(xs[i]), c.py(ys[i])
        label = escape(r.candidate)
        style = 'r="5" fill="#d62728" class="pareto"' if on else 'r="4" fill="#888"'
        c.parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" {style}>'
            f"<title>{label}: quality {ys[i]:.4g}, p95 {xs[i]:.4g} ms</title></circle>"
        )
        # Labels point inwards so the ones at the right edge stay inside the picture.
        right = x > (c.px(c.x0) + c.px(c.x1)) / 2
        lx, anchor = (x - 7, "end") if right else (x + 7, "start")
        c.parts.append(f'<text x="{lx:.1f}" y="{y - 6:.1f}" text-anchor="{anchor}">{label}</text>')
    return c.svg()
