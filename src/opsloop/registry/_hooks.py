"""The registry's hook points: what other rooms may check when the registry changes.

``registry.alias_move``: every callable declared for it (``Room.hooks``, e.g.
the evaluation room's promotion gate, the governance room's protected
aliases) is called with an ``AliasMove`` inside the alias move's write
transaction, so a refusal changes nothing. ``check_alias_move`` calls them
too, as a dry run (``AliasMove.dry_run``) that moves nothing.

``registry.alias_delete``: called with an ``AliasDelete`` inside an alias
deletion's write transaction; raising refuses the deletion.

The registry never imports the rooms implementing a hook (``opsloop.core.hooks``
finds them by name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.registry._tables import model_aliases, model_versions

__all__ = [
    "ALIAS_DELETE",
    "ALIAS_MOVE",
    "AliasDelete",
    "AliasDeleteCheck",
    "AliasMove",
    "AliasMoveCheck",
    "MoveCheck",
    "VersionRef",
]

ALIAS_MOVE = "registry.alias_move"
ALIAS_DELETE = "registry.alias_delete"


@dataclass(frozen=True)
class VersionRef:
    """One model version as a hook sees it."""

    version: int
    version_id: str
    source_run_id: str | None


@dataclass(frozen=True)
class AliasMove:
    """An alias about to move from ``from_version`` (None: new alias) to ``to_version``.

    ``connection`` is the move's open write transaction: read through it to
    see the state the move will commit against. ``approval`` is the id of
    the approval the move carries out (the governance room's protected
    aliases check it); ``dry_run`` is set by ``check_alias_move``, which
    rolls everything back: a hook may answer as for a real move, and a hook
    that holds a move back for another reason (an approval) lets it pass.
    """

    connection: Connection
    model: str
    model_id: str
    alias: str
    from_version: VersionRef | None
    to_version: VersionRef
    actor: str
    force: bool
    approval: str | None = None
    dry_run: bool = False

    def holder(self, alias: str) -> VersionRef | None:
        """The version ``alias`` of this model points at now (in the same transaction)."""
        return alias_holder(self.connection, self.model_id, alias)


class AliasMoveCheck(Protocol):
    """A ``registry.alias_move`` hook.

    Returns None when it has nothing to check for this move, else the list of
    failed checks (empty: all passed). To refuse the move it raises (e.g.
    ``PromotionRefused``); with ``force`` it returns the failures instead,
    and the registry records them as a ``promotion_forced`` event.
    """

    def __call__(self, move: AliasMove) -> Sequence[Mapping[str, Any]] | None: ...


@dataclass(frozen=True)
class MoveCheck:
    """What the ``registry.alias_move`` hooks said of a move, without making it.

    ``gated``: some hook had something to check (a promotion gate applies);
    ``failures``: the checks that failed (only with ``force``: otherwise the
    first failing hook raised).
    """

    model: str
    alias: str
    version: int
    from_version: int | None
    gated: bool
    failures: list[dict[str, Any]]

    @property
    def gate(self) -> str:
        """``none`` (no gate applies), ``passed`` or ``failed`` (forced)."""
        if not self.gated:
            return "none"
        return "failed" if self.failures else "passed"


@dataclass(frozen=True)
class AliasDelete:
    """An alias about to be deleted; ``connection`` is the deletion's write transaction."""

    connection: Connection
    model: str
    model_id: str
    alias: str
    version: VersionRef
    actor: str


class AliasDeleteCheck(Protocol):
    """A ``registry.alias_delete`` hook: raises to refuse the deletion (nothing changes)."""

    def __call__(self, delete: AliasDelete) -> None: ...


def alias_holder(conn: Connection, model_id: str, alias: str) -> VersionRef | None:
    row = conn.execute(
        sa.select(model_versions.c.version, model_versions.c.id, model_versions.c.source_run_id)
        .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
        .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
    ).first()
    if row is None:
        return None
    return VersionRef(version=int(row.version), version_id=row.id, source_run_id=row.source_run_id)
