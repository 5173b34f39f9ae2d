"""A small learning-curve PNG drawn with numpy and zlib (no matplotlib needed).

Two stacked panels over the epochs: losses on top (train blue, validation
orange), validation accuracy (grey) and F1 (green) below. Each panel scales
to its own range, printed at its top and bottom left, and names its lines
in a legend drawn with a tiny built-in bitmap font.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any

BLUE = (31, 119, 180)
ORANGE = (255, 127, 14)
GREEN = (44, 160, 44)
GREY = (127, 127, 127)
_GRID = (232, 232, 232)
_AXIS = (90, 90, 90)
_TEXT = (60, 60, 60)

WIDTH = 480
PANEL_HEIGHT = 150
HEIGHT = 2 * PANEL_HEIGHT + 24
_LEFT = 52  # room for the range labels
_SCALE = 2  # font pixels per glyph pixel

# 3x5 glyphs for the characters the chart writes (legend words and numbers).
_FONT: dict[str, tuple[str, ...]] = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ".": ("000", "000", "000", "000", "010"),
    "-": ("000", "000", "111", "000", "000"),
    "+": ("000", "010", "111", "010", "000"),
    " ": ("000", "000", "000", "000", "000"),
    "a": ("000", "011", "101", "101", "011"),
    "c": ("000", "011", "100", "100", "011"),
    "e": ("010", "101", "111", "100", "011"),
    "f": ("011", "100", "110", "100", "100"),
    "i": ("010", "000", "010", "010", "010"),
    "l": ("110", "010", "010", "010", "111"),
    "n": ("000", "110", "101", "101", "101"),
    "o": ("000", "010", "101", "101", "010"),
    "r": ("000", "101", "110", "100", "100"),
    "s": ("000", "011", "110", "011", "110"),
    "t": ("010", "111", "010", "010", "011"),
    "v": ("000", "101", "101", "101", "010"),
}


def encode_png(pixels: Any) -> bytes:
    """PNG bytes for an ``(height, width, 3)`` uint8 array."""
    import numpy as np

    img = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w, _ = img.shape
    # Each scanline starts with filter type 0 (none).
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def text_width(text: str) -> int:
    return len(text) * 4 * _SCALE


def draw_text(img: Any, x: int, y: int, text: str, colour: tuple[int, int, int]) -> None:
    """Write ``text`` with its top-left corner at (x, y); unknown characters become blanks."""
    h, w, _ = img.shape
    for i, ch in enumerate(text.lower()):
        glyph = _FONT.get(ch, _FONT[" "])
        for gy, row in enumerate(glyph):
            for gx, bit in enumerate(row):
                if bit != "1":
                    continue
                px = x + (i * 4 + gx) * _SCALE
                py = y + gy * _SCALE
                if px >= 0 and py >= 0 and px + _SCALE <= w and py + _SCALE <= h:
                    img[py : py + _SCALE, px : px + _SCALE] = colour


def _panel(
    img: Any,
    top: int,
    series: Sequence[tuple[str, Sequence[float], tuple[int, int, int]]],
) -> None:
    import numpy as np

    _h, w, _ = img.shape
    height = PANEL_HEIGHT
    left, right = _LEFT, w - 8
    bottom = top + height - 1
    for frac in (0.25, 0.5, 0.75):
        img[top + int(frac * (height - 1)), left:right] = _GRID
    img[top : bottom + 1, left] = _AXIS
    img[bottom, left:right] = _AXIS
    values = [np.asarray(s, dtype=float) for _, s, _ in series if len(s)]
    if not values:
        return
    lo = min(float(np.nanmin(v)) for v in values)
    hi = max(float(np.nanmax(v)) for v in values)
    span = hi - lo if hi > lo else 1.0
    draw_text(img, 2, top, f"{hi:.3g}", _TEXT)
    draw_text(img, 2, bottom - 5 * _SCALE, f"{lo:.3g}", _TEXT)
    for _name, ys, colour in series:
        y = np.asarray(ys, dtype=float)
        if len(y) == 0:
            continue
        xs = np.linspace(left + 2, right - 2, num=max(len(y), 2))
        if len(y) == 1:
            y = np.repeat(y, 2)
        py = bottom - 2 - (y - lo) / span * (height - 6)
        # Dense sampling along each segment draws a connected 2-pixel line.
        for i in range(len(y) - 1):
            n = int(max(abs(xs[i + 1] - xs[i]), abs(py[i + 1] - py[i]))) * 2 + 2
            sx = np.linspace(xs[i], xs[i + 1], n).round().astype(int)
            sy = np.linspace(py[i], py[i + 1], n).round().astype(int)
            for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                img[np.clip(sy + dy, top, bottom), np.clip(sx + dx, left, right - 1)] = colour
    # Legend, right-aligned at the panel's middle so it rarely hides a curve's ends.
    legend_y = top + height // 2 - 14
    for row, (name, _, colour) in enumerate(series):
        draw_text(img, right - text_width(name) - 4, legend_y + row * 14, name, colour)


def learning_curves_png(history: dict[str, list[float]]) -> bytes:
    """The chart for a run's per-epoch ``history`` (metric name -> values per epoch)."""
    import numpy as np

    img = np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
    _panel(
        img,
        8,
        [
            ("train loss", history.get("train_loss", []), BLUE),
            ("val loss", history.get("val_loss", []), ORANGE),
        ],
    )
    _panel(
        img,
        PANEL_HEIGHT + 16,
        [
            ("val acc", history.get("val_accuracy", []), GREY),
            ("val f1", history.get("val_f1", []), GREEN),
        ],
    )
    return encode_png(img)
