"""``Indexes(context)``: vector indexes, the same embedded (in the home) or on a server.

``client.indexes.open(name)`` gives a ``VectorIndex`` on an embedded client
and a ``RemoteIndex`` (the same methods, over REST) on a remote one, so code
written against one runs against the other.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, HasContext, context_of
from opsloop.retrieval._index import VectorIndex
from opsloop.retrieval._remote import RemoteIndex, RemoteIndexes
from opsloop.retrieval._store import check_name

if TYPE_CHECKING:
    from opsloop.retrieval._index import AnyIndex

__all__ = ["Indexes"]


class EmbeddedIndexes:
    """The indexes backend over the context's home."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def open(
        self,
        name: str,
        *,
        dim: int | None,
        metric: str | None,
        ann_threshold: int | None,
        create: bool,
    ) -> AnyIndex:
        return VectorIndex.open(
            name,
            dim=dim,
            home=self._ctx.settings.home,
            metric=metric,
            ann_threshold=ann_threshold,
            create=create,
        )

    def list(self) -> builtins.list[str]:
        return VectorIndex.list(self._ctx.settings.home)

    def info(self, name: str) -> dict[str, Any]:
        with self.open(name, dim=None, metric=None, ann_threshold=None, create=False) as idx:
            return idx.info()

    def drop(self, name: str) -> None:
        VectorIndex.drop(check_name(name), home=self._ctx.settings.home)


def _embedded(ctx: Context) -> EmbeddedIndexes | RemoteIndexes:
    return EmbeddedIndexes(ctx)


def _remote(ctx: Context) -> EmbeddedIndexes | RemoteIndexes:
    return RemoteIndexes(ctx)


class Indexes:
    """Vector indexes: in the client's home (embedded) or the server's (remote)."""

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self._backend = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        return self._context

    def open(
        self,
        name: str,
        *,
        dim: int | None = None,
        metric: str | None = None,
        ann_threshold: int | None = None,
        create: bool = True,
    ) -> AnyIndex | RemoteIndex:
        """Open (by default creating) index ``name``; see ``VectorIndex.open``."""
        return self._backend.open(
            name, dim=dim, metric=metric, ann_threshold=ann_threshold, create=create
        )

    def list(self) -> builtins.list[str]:
        """Names of the indexes."""
        return self._backend.list()

    def info(self, name: str) -> dict[str, Any]:
        """What index ``name`` holds and how it searches (``NotFound`` if there is none)."""
        return self._backend.info(name)

    def drop(self, name: str) -> None:
        """Delete index ``name`` and its files (``NotFound`` if there is none)."""
        self._backend.drop(name)
