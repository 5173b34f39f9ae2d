"""The UI shell built from the rooms' declarations: sidebar links, styles, page routes.

``index.html`` holds three markers (styles, module preloads, sidebar links)
that are filled here once per app; ``/ui/routes.js`` is an ES module that
imports each declared page and lists its hash pattern, which ``main.js``
routes by. A room adds pages by declaring them; neither file names a room.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from pathlib import Path

from opsloop.core import Room

__all__ = ["ui_index", "ui_routes_module"]

_STATIC = "/ui/static"


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _check_module(path: str) -> str:
    # Declarations are code, but a typo here would end up inside a <script>: keep them plain.
    if not path or ".." in path or path.startswith("/") or any(c in path for c in "\"'<>\\ "):
        raise ValueError(f"bad UI module path in a room declaration: {path!r}")
    return path


def ui_index(template: Path, rooms: Sequence[Room]) -> str:
    """``index.html`` with the rooms' styles, module preloads and sidebar links filled in."""
    html = template.read_text(encoding="utf-8")
    styles = _unique([_check_module(s) for r in rooms for s in r.ui_styles])
    modules = _unique(
        [_check_module(m) for r in rooms for m in (*(u.module for u in r.ui_routes), *r.ui_modules)]
    )
    navs = sorted((n for r in rooms for n in r.nav), key=lambda n: n.order)
    style_html = "\n".join(
        f'  <link rel="stylesheet" href="{_STATIC}/{escape(s)}">' for s in styles
    )
    preload_html = "\n".join(
        f'  <link rel="modulepreload" href="{_STATIC}/js/{escape(m)}">' for m in modules
    )
    nav_html = "\n".join(
        f'        <a class="nav-link" data-section="{escape(n.section)}" '
        f'href="#/{escape(n.section)}">{escape(n.label)}</a>'
        for n in navs
    )
    for marker, value in (
        ("<!-- rooms: styles -->", style_html),
        ("<!-- rooms: preloads -->", preload_html),
        ("<!-- rooms: nav -->", nav_html),
    ):
        if marker not in html:
            raise ValueError(f"index.html lacks the marker {marker}")
        html = html.replace(marker, value)
    return html


def _order(pattern: str) -> tuple[int, int]:
    parts = pattern.split("/")
    return (len(parts), -sum(not p.startswith(":") for p in parts))


def ui_routes_module(rooms: Sequence[Room]) -> str:
    """The ES module ``/ui/routes.js``: every declared page, literal segments first."""
    routes = sorted((u for r in rooms for u in r.ui_routes), key=lambda u: _order(u.pattern))
    modules = _unique([_check_module(u.module) for u in routes])
    alias = {m: f"m{i}" for i, m in enumerate(modules)}
    lines = ["// Generated from the rooms' declarations (opsloop/rooms.py); do not edit."]
    lines += [f'import * as {alias[m]} from "{_STATIC}/js/{m}";' for m in modules]
    lines.append("export const routes = [")
    for u in routes:
        if not u.render.isidentifier():
            raise ValueError(f"bad UI render name in a room declaration: {u.render!r}")
        lines.append(
            f"  {{ pattern: {json.dumps(u.pattern.split('/'))}, "
            f"render: {alias[u.module]}.{u.render} }},"
        )
    lines.append("];")
    return "\n".join(lines) + "\n"
