"""Steps that reach outside the model: ``retrieve`` (a vector index), ``tool``, ``python``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opsloop.errors import InvalidArgument, PipelineInvalid
from opsloop.pipelines import _template as T
from opsloop.pipelines._context import Run
from opsloop.pipelines._steps import Step, _check_template, _invalid
from opsloop.pipelines._tools import function_ref, import_ref

__all__ = ["PythonStep", "RetrieveStep", "ToolStep", "search_index"]

RETRIEVE_MODES = ("dense", "keyword", "hybrid")

# ------------------------------------------------------------------------------ retrieve


class RetrieveStep(Step):
    """Top-``k`` chunks of vector ``index`` for ``query`` (a template; default the first input),
    embedded with ``embedder`` (default: the bundled MiniLM); ``filter`` on chunk metadata.
    ``mode``: ``dense`` (the default), ``keyword`` (BM25 over the chunks' texts) or
    ``hybrid`` (both, fused by reciprocal rank)."""

    type = "retrieve"
    span_kind = "retriever"
    fields = ("index", "query", "k", "filter", "embedder", "mode")

    def __init__(
        self,
        name: str,
        index: str,
        *,
        query: str | None = None,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        embedder: str | None = None,
        mode: str | None = None,
        output_key: str | None = None,
    ) -> None:
        super().__init__(name, output_key=output_key)
        if mode is not None and mode not in RETRIEVE_MODES:
            raise _invalid(
                name, "mode", f"must be one of {', '.join(RETRIEVE_MODES)}, got {mode!r}"
            )
        if not isinstance(index, str) or not index:
            raise _invalid(name, "index", "must name a vector index")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
            raise _invalid(name, "k", f"must be an integer in 1..100, got {k!r}")
        if query is not None:
            _check_template(name, "query", query)
        if filter is not None and not isinstance(filter, Mapping):
            raise _invalid(name, "filter", "must be an object (a metadata filter)")
        if embedder is not None and not isinstance(embedder, str):
            raise _invalid(name, "embedder", "must be a provider spec or models:/ URI")
        self.index = index
        self.query = query
        self.k = k
        self.filter = None if filter is None else dict(filter)
        self.embedder = embedder
        self.mode = None if mode == "dense" else mode

    def reads(self) -> list[str]:
        return (T.template_roots(self.query) if self.query else []) + T.value_roots(
            self.filter or {}
        )

    def _fields(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "query": self.query,
            "k": self.k,
            "filter": self.filter,
            "embedder": self.embedder,
            "mode": self.mode,
        }

    def run(self, run: Run) -> Any:
        if self.query is not None:
            query = T.render(self.query, run.state)
        elif run.first_input is not None:
            query = str(T.get_path(run.state, run.first_input))
        else:
            raise InvalidArgument(f"step {self.name!r} needs a 'query'")
        flt = T.resolve_value(self.filter, run.state) if self.filter else None
        if run.span is not None:
            run.span.set_input(
                {
                    "query": query,
                    "k": self.k,
                    "filter": flt,
                    "index": self.index,
                    "mode": self.mode or "dense",
                }
            )
        return search_index(run.ctx, self.index, query, self.k, flt, self.embedder, self.mode)


def search_index(
    ctx: Any,
    index: str,
    query: str,
    k: int,
    flt: Any,
    embedder: str | None,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    """Hits as plain dicts: ``{id, score, text, title, source, metadata}``."""
    idx = ctx.index(index)
    if mode == "keyword":
        hits = idx.keyword_search(query, k=k, filter=flt)
    elif mode == "hybrid":
        vec = ctx.embedder(embedder).embed([query])[0]
        hits = idx.hybrid_search(vec, query, k=k, filter=flt)
    else:
        vec = ctx.embedder(embedder).embed([query])[0]
        hits = idx.search(vec, k=k, filter=flt)
    out = []
    for h in hits:
        meta = dict(h.metadata or {})
        out.append(
            {
                "id": h.id,
                "score": round(float(h.score), 6),
                "text": h.text or "",
                "title": meta.get("title"),
                "source": meta.get("source") or meta.get("path"),
                "metadata": meta,
            }
        )
    return out


# ------------------------------------------------------------------------------ tool


class ToolStep(Step):
    """Call the pipeline's tool ``tool`` with ``args`` (values are templates or ``{{ path }}``)."""

    type = "tool"
    span_kind = "tool"
    fields = ("tool", "args")

    def __init__(
        self,
        name: str,
        tool: str,
        *,
        args: Mapping[str, Any] | None = None,
        output_key: str | None = None,
    ) -> None:
        super().__init__(name, output_key=output_key)
        if not isinstance(tool, str) or not tool:
            raise _invalid(name, "tool", "must name one of the pipeline's tools")
        if args is not None and not isinstance(args, Mapping):
            raise _invalid(name, "args", "must be an object of tool arguments")
        self.tool = tool
        self.args = dict(args or {})

    def reads(self) -> list[str]:
        return T.value_roots(self.args)

    def tools_used(self) -> list[str]:
        return [self.tool]

    def _fields(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": self.args}

    def run(self, run: Run) -> Any:
        tool = run.ctx.tool(self.tool)
        args = tool.check_args(T.resolve_value(self.args, run.state))
        if run.span is not None:
            run.span.set_input(args)
            run.span.set_attribute("opsloop.tool.name", tool.name)
        return tool(**args)


# ------------------------------------------------------------------------------ python


class PythonStep(Step):
    """Call a Python function: ``fn(**args)`` when ``args`` are given, else ``fn(state)``.

    ``function`` is a callable or a ``'package.module:function'`` reference; a
    saved pipeline keeps the reference and imports it when loaded (the code is
    the code installed where it runs, as with pyfunc models); nothing is evaluated.
    """

    type = "python"
    fields = ("function", "args")

    def __init__(
        self,
        name: str,
        function: Callable[..., Any] | str,
        *,
        args: Mapping[str, Any] | None = None,
        output_key: str | None = None,
    ) -> None:
        super().__init__(name, output_key=output_key)

        if isinstance(function, str):
            try:
                self.fn = import_ref(function)
            except PipelineInvalid as exc:
                raise _invalid(name, "function", exc.message) from None
            self.ref: str | None = function
        elif callable(function):
            self.fn, self.ref = function, None
        else:
            raise _invalid(name, "function", "must be a function or 'package.module:function'")
        if args is not None and not isinstance(args, Mapping):
            raise _invalid(name, "args", "must be an object of keyword arguments")
        self.args = None if args is None else dict(args)

    def reads(self) -> list[str]:
        return T.value_roots(self.args or {})

    def _fields(self) -> dict[str, Any]:
        try:
            ref = self.ref or function_ref(self.fn)
        except PipelineInvalid as exc:
            raise _invalid(self.name, "function", exc.message) from None
        return {"function": ref, "args": self.args}

    def run(self, run: Run) -> Any:
        if self.args is not None:
            return self.fn(**T.resolve_value(self.args, run.state))
        return self.fn({k: v for k, v in run.state.items()})
