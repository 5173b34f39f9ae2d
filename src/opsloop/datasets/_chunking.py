"""Chunking documents for retrieval: Markdown-aware, by characters or tokens, with overlap.

Markdown is split on its ATX headings first (``#`` to ``######``, ignoring
lines inside fenced code blocks), so a chunk never spans two sections and
carries its heading path (``["Install", "From source"]``). A section longer
than ``size`` is cut into windows of at most ``size`` units that overlap by
``overlap`` units; a character window ends at the last paragraph break, line
break, sentence end or space in its second half when there is one, so words
are not cut. Token windows count ``\\S+`` runs (words and punctuation glued to
them) unless a ``tokenizer`` giving ``(start, end)`` offsets is passed.
Offsets are character offsets into the document text: ``text[start:end]``
is the chunk.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opsloop.errors import InvalidArgument

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TOKEN = re.compile(r"\S+")
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")

Tokenizer = Callable[[str], list[tuple[int, int]]]


@dataclass(frozen=True)
class ChunkingConfig:
    """How to cut documents: ``unit`` ``chars`` or ``tokens``, window ``size`` and ``overlap``."""

    unit: str = "chars"
    size: int = 1000
    overlap: int = 200
    markdown: bool | None = None  # None: by file extension
    tokenizer: Tokenizer | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.unit not in ("chars", "tokens"):
            raise InvalidArgument(f"chunk unit must be 'chars' or 'tokens', got {self.unit!r}")
        if not isinstance(self.size, int) or self.size < 1:
            raise InvalidArgument(f"chunk size must be a positive integer, got {self.size!r}")
        if not isinstance(self.overlap, int) or not 0 <= self.overlap < self.size:
            raise InvalidArgument(
                f"chunk overlap must be between 0 and size-1 ({self.size - 1}), got {self.overlap!r}"
            )

    def describe(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "size": self.size,
            "overlap": self.overlap,
            "markdown": self.markdown,
            "tokenizer": None
            if self.tokenizer is None
            else getattr(self.tokenizer, "__qualname__", "custom"),
        }


@dataclass(frozen=True)
class Section:
    start: int
    end: int
    heading_path: tuple[str, ...]


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    text: str
    heading_path: tuple[str, ...]
    n_tokens: int


def markdown_sections(text: str) -> list[Section]:
    """The text cut at each heading; each section starts with its heading line."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    sec_start = 0
    path: tuple[str, ...] = ()
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        m_fence = _FENCE.match(stripped)
        if fence is not None:
            if m_fence and m_fence.group(1)[0] == fence[0] and len(m_fence.group(1)) >= len(fence):
                fence = None
        elif m_fence:
            fence = m_fence.group(1)
        else:
            m = _HEADING.match(stripped)
            if m:
                if pos > sec_start:
                    sections.append(Section(sec_start, pos, path))
                level = len(m.group(1))
                title = (m.group(2) or "").strip()
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, title))
                path = tuple(t for _, t in stack)
                sec_start = pos
        pos += len(line)
    if pos > sec_start or not sections:
        sections.append(Section(sec_start, pos, path))
    return sections


def _nice_end(text: str, start: int, end: int) -> int:
    """Move ``end`` back to a paragraph, line, sentence or word boundary in the window's
    second half, if there is one."""
    half = start + (end - start) // 2
    window = text[half:end]
    for sep in ("\n\n", "\n", ". ", "? ", "! ", " ", "\t"):
        i = window.rfind(sep)
        if i >= 0:
            return half + i + len(sep)
    return end


def _char_windows(text: str, start: int, end: int, cfg: ChunkingConfig) -> list[tuple[int, int]]:
    out = []
    s = start
    while s < end:
        e = min(end, s + cfg.size)
        if e < end:
            e = _nice_end(text, s, e)
        out.append((s, e))
        if e >= end:
            break
        nxt = max(e - cfg.overlap, s + 1)
        # Start the overlap at a word: after the first space in it, if it has one.
        m = re.search(r"\s+", text[nxt:e])
        if m is not None and nxt + m.end() < e:
            nxt += m.end()
        s = nxt
    return out


def _token_windows(spans: list[tuple[int, int]], cfg: ChunkingConfig) -> list[tuple[int, int, int]]:
    out = []
    i = 0
    step = cfg.size - cfg.overlap
    while i < len(spans):
        j = min(len(spans), i + cfg.size)
        out.append((spans[i][0], spans[j - 1][1], j - i))
        if j >= len(spans):
            break
        i += step
    return out


def chunk_text(text: str, cfg: ChunkingConfig, *, markdown: bool = False) -> list[Chunk]:
    """Cut one document into chunks (see the module docstring)."""
    sections = markdown_sections(text) if markdown else [Section(0, len(text), ())]
    chunks: list[Chunk] = []
    for sec in sections:
        body = text[sec.start : sec.end]
        if not body.strip():
            continue
        # Leading and trailing blank space is not worth a chunk's room.
        lead = len(body) - len(body.lstrip())
        s0, e0 = sec.start + lead, sec.start + len(body.rstrip())
        if cfg.unit == "chars":
            for s, e in _char_windows(text, s0, e0, cfg):
                piece = text[s:e]
                chunks.append(Chunk(s, e, piece, sec.heading_path, len(_TOKEN.findall(piece))))
        else:
            spans = _token_spans(text[s0:e0], cfg)
            for s, e, n in _token_windows(spans, cfg):
                chunks.append(Chunk(s0 + s, s0 + e, text[s0 + s : s0 + e], sec.heading_path, n))
    return chunks


def _token_spans(text: str, cfg: ChunkingConfig) -> list[tuple[int, int]]:
    if cfg.tokenizer is None:
        return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    try:
        spans = [(int(s), int(e)) for s, e in cfg.tokenizer(text)]
    except Exception as exc:
        raise InvalidArgument(f"the tokenizer failed: {type(exc).__name__}: {exc}") from exc
    return [(s, e) for s, e in spans if 0 <= s < e <= len(text)]


def chunk_id(path: str, start: int, end: int, text: str) -> str:
    """A stable id from where the chunk is and what it says."""
    h = hashlib.sha256(f"{path}\0{start}\0{end}\0".encode() + text.encode("utf-8"))
    return h.hexdigest()[:24]
