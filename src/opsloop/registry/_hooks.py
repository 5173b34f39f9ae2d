"""The registry's hook points: what other rooms may check when the registry changes.

``registry.alias_move``: every callable declared for it (``Room.hooks``, e.g.
the evaluation room's promotion gate) is called with an ``AliasMove`` inside
the alias move's write transaction, so a refusal changes nothing. The
registry never imports the rooms implementing a hook (``opsloop.core.hooks``
finds them by name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.registry._tables import model_aliases, model_versions

__all__ = ["ALIAS_MOVE", "AliasMove", "AliasMoveCheck", "VersionRef"]

ALIAS_MOVE = "registry.alias_move"


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
    see the state the move will commit against.
    """

    connection: Connection
    model: str
    model_id: str
    alias: str
    from_version: VersionRef | None
    to_version: VersionRef
    actor: str
    force: bool

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


def alias_holder(conn: Connection, model_id: str, alias: str) -> VersionRef | None:
    row = conn.execute(
        sa.select(model_versions.c.version, model_versions.c.id, model_versions.c.source_run_id)
        .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
        .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
    ).first()
    if row is None:
        return None
    return VersionRef(version=int(row.version), version_id=row.id, source_run_id=row.source_run_id)
