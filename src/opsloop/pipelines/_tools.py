"""Tools a pipeline can call: a ``Tool`` interface, web search, an offline corpus search, KB QA.

A tool has a ``name``, a ``description``, ``parameters`` (a JSON schema of its
arguments, shown to the model in a tool loop) and is called with keyword
arguments. ``WebSearch`` is the interface of a search backend
(``search(query, k) -> [{title, url, snippet}]``); ``LocalCorpusSearch`` is an
offline one, BM25 over a folder of text/Markdown files or a document
collection, so pipelines and tests that use web search run without a network.
Every call through a pipeline is a ``tool`` span.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from opsloop.core import Context, HasContext, context_of
from opsloop.datasets import ChunkingConfig, chunk_text
from opsloop.errors import InvalidArgument, PipelineInvalid
from opsloop.pipelines._bm25 import BM25
from opsloop.pipelines._context import RunContext, Tool

__all__ = [
    "FunctionTool",
    "LocalCorpusSearch",
    "Tool",
    "WebSearch",
    "WebSearchTool",
    "as_tools",
    "function_ref",
    "import_ref",
]

TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".mdx", ".rst")


@runtime_checkable
class WebSearch(Protocol):
    """A search backend: the ``k`` best results for ``query``."""

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """``[{"title", "url", "snippet"}, ...]``, best first (extra keys allowed)."""
        ...


def function_ref(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of an importable function; ``PipelineInvalid`` for lambdas and locals."""
    mod = getattr(fn, "__module__", None)
    qual = getattr(fn, "__qualname__", None)
    if not mod or not qual or mod == "__main__" or "<" in qual:
        raise PipelineInvalid(
            f"{fn!r} is not importable (a lambda, a local function or __main__); "
            "saved pipelines name functions by 'package.module:function'"
        )
    return f"{mod}:{qual}"


def import_ref(ref: str, what: str = "function") -> Any:
    """The object a ``module:qualname`` reference names, imported (never evaluated)."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise PipelineInvalid(f"{what} {ref!r} must look like 'package.module:name'")
    module_name, qual = ref.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineInvalid(f"cannot import {module_name!r} for {what} {ref!r}: {exc}") from None
    for part in qual.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise PipelineInvalid(f"{module_name!r} has no {qual!r} ({what} {ref!r})")
    if not callable(obj):
        raise PipelineInvalid(f"{what} {ref!r} is not callable")
    return obj


class FunctionTool(Tool):
    """A Python function as a tool (saved by its import path)."""

    def __init__(
        self,
        fn: Callable[..., Any] | str,
        *,
        name: str | None = None,
        description: str = "",
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self.fn = import_ref(fn, "tool function") if isinstance(fn, str) else fn
        self.ref = fn if isinstance(fn, str) else None
        self.name = name or str(getattr(self.fn, "__name__", "tool"))
        self.description = description or (getattr(self.fn, "__doc__", None) or "").strip()
        self.parameters = dict(parameters or {"type": "object"})

    def __call__(self, **kwargs: Any) -> Any:
        return self.fn(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": "python",
            "function": self.ref or function_ref(self.fn),
            "description": self.description,
            "parameters": self.parameters,
        }


_SEARCH_PARAMS = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "what to search for"},
        "k": {"type": "integer", "minimum": 1, "maximum": 20},
    },
    "required": ["query"],
}


class WebSearchTool(Tool):
    """A ``WebSearch`` backend as a tool: ``query`` (and ``k``) in, result list out."""

    def __init__(self, backend: WebSearch, *, name: str = "web_search", k: int = 3) -> None:
        if not callable(getattr(backend, "search", None)):
            raise InvalidArgument("a web search backend needs a search(query, k) method")
        self.backend = backend
        self.name = name
        self.k = k
        self.description = "Search for documents about a query; returns titles, urls and snippets."
        self.parameters = _SEARCH_PARAMS

    def __call__(self, **kwargs: Any) -> list[dict[str, Any]]:
        return self.backend.search(str(kwargs["query"]), int(kwargs.get("k") or self.k))

    def to_dict(self) -> dict[str, Any]:
        to_dict = getattr(self.backend, "to_dict", None)
        if not callable(to_dict):
            return super().to_dict()
        return {"name": self.name, "k": self.k, **to_dict()}


class LocalCorpusSearch(Tool):
    """Offline search, BM25 over passages of local text/Markdown files or a document collection.

    ``path``: a folder (searched recursively) or a file. ``collection``: a
    documents dataset version (``"name@version"``) read through ``client``;
    its stored chunks are the passages. Files are cut into passages of about
    ``passage_chars`` characters (Markdown by section), each result is the
    best passage of a file: ``{title, url, snippet, score, path}``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        collection: str | None = None,
        client: Context | HasContext | None = None,
        name: str = "search",
        k: int = 3,
        passage_chars: int = 800,
    ) -> None:
        if (path is None) == (collection is None):
            raise InvalidArgument("LocalCorpusSearch needs exactly one of path= or collection=")
        self.name = name
        self.k = k
        self.description = "Search local documents for a query; returns titles, urls and snippets."
        self.parameters = _SEARCH_PARAMS
        self.path = None if path is None else Path(path)
        self.collection = collection
        self.passage_chars = passage_chars
        self._client = client
        self._passages: list[dict[str, Any]] | None = None
        self._bm25: Any = None

    # -- loading ------------------------------------------------------------------

    def _load_files(self) -> list[dict[str, Any]]:
        assert self.path is not None
        root = self.path
        if not root.exists():
            raise InvalidArgument(
                f"corpus folder {root} does not exist", details={"path": str(root)}
            )
        files = (
            [root]
            if root.is_file()
            else sorted(
                p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
            )
        )
        cfg = ChunkingConfig(size=self.passage_chars, overlap=min(100, self.passage_chars // 4))
        out = []
        for f in files:
            text = f.read_text(encoding="utf-8", errors="replace")
            rel = f.name if root.is_file() else f.relative_to(root).as_posix()
            md = f.suffix.lower() in (".md", ".markdown", ".mdx")
            title = _title(rel, text)
            for c in chunk_text(text, cfg, markdown=md):
                out.append(
                    {
                        "title": title,
                        "url": f.resolve().as_uri(),
                        "path": rel,
                        "text": text[c.start : c.end],
                    }
                )
        return out

    def _load_collection(self) -> list[dict[str, Any]]:
        from opsloop.datasets import Datasets  # lazy: loads sqlalchemy

        assert self.collection is not None
        owned = self._client is None
        ctx = Context() if self._client is None else context_of(self._client)
        try:
            datasets = ctx.room(Datasets)
            chunks = datasets.chunks(self.collection).to_pylist()
            titles = {
                d["path"]: d["title"]
                for d in datasets.to_arrow(self.collection, columns=["path", "title"]).to_pylist()
            }
        finally:
            if owned:
                ctx.close()
        return [
            {
                "title": titles.get(c["source"]) or c["source"],
                "url": f"collection://{self.collection}/{c['source']}#{c['chunk_id']}",
                "path": c["source"],
                "chunk_id": c["chunk_id"],
                "text": c["text"],
            }
            for c in chunks
        ]

    def _index(self) -> tuple[list[dict[str, Any]], Any]:
        if self._passages is None:
            passages = self._load_files() if self.path is not None else self._load_collection()
            self._bm25 = BM25([f"{p['title']}\n{p['text']}" for p in passages])
            self._passages = passages
        return self._passages, self._bm25

    # -- searching ------------------------------------------------------------------

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` best documents for ``query`` (one result per document, its best passage)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgument("a search needs a non-empty query string")
        if not isinstance(k, int) or not 1 <= k <= 100:
            raise InvalidArgument(f"k must be an integer in 1..100, got {k!r}")
        passages, bm25 = self._index()
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for i, score in bm25.top(query, len(passages)):
            p = passages[i]
            if p["path"] in seen:
                continue
            seen.add(p["path"])
            out.append(
                {
                    "title": p["title"],
                    "url": p["url"],
                    "snippet": " ".join(p["text"].split())[:400],
                    "score": round(score, 4),
                    "path": p["path"],
                }
            )
            if len(out) >= k:
                break
        return out

    def __call__(self, **kwargs: Any) -> list[dict[str, Any]]:
        return self.search(str(kwargs["query"]), int(kwargs.get("k") or self.k))

    def __len__(self) -> int:
        return len(self._index()[0])

    def bind(self, ctx: RunContext) -> Tool:
        if self.collection is not None and self._client is None:
            self._client = ctx.context
        return self

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": "local_search", "k": self.k}
        if self.path is not None:
            d["path"] = str(self.path)
        else:
            d["collection"] = self.collection
        return d


def _title(rel: str, text: str) -> str:
    for line in text.splitlines()[:40]:
        s = line.strip()
        if s.startswith("#"):
            t = s.lstrip("#").strip()
            if t:
                return t
    return Path(rel).stem


def as_tools(tools: Sequence[Any] | Mapping[str, Any] | None) -> dict[str, Tool]:
    """Tools by name from Tool objects, WebSearch backends or plain functions."""
    out: dict[str, Tool] = {}
    items = list(tools.values()) if isinstance(tools, Mapping) else list(tools or [])
    for t in items:
        if isinstance(t, Tool):
            tool = t
        elif isinstance(t, WebSearch):
            tool = WebSearchTool(t)
        elif callable(t):
            tool = FunctionTool(t)
        else:
            raise PipelineInvalid(
                f"{t!r} is not a tool (a Tool, a WebSearch backend or a function)"
            )
        if tool.name in out:
            raise PipelineInvalid(f"two tools are named {tool.name!r}", details={"tool": tool.name})
        out[tool.name] = tool
    return out
