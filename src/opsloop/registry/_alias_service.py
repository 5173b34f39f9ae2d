"""Aliases (moved atomically), URI resolution, the change history and version files."""

from __future__ import annotations

from typing import Any, BinaryIO

import sqlalchemy as sa

from opsloop.core import hooks
from opsloop.errors import InvalidArgument, NotFound, PromotionRefused
from opsloop.registry import _names as N
from opsloop.registry import _rows
from opsloop.registry._events import MAX_LIST, record_event
from opsloop.registry._hooks import (
    ALIAS_DELETE,
    ALIAS_MOVE,
    AliasDelete,
    AliasDeleteCheck,
    AliasMove,
    AliasMoveCheck,
    MoveCheck,
    VersionRef,
    alias_holder,
)
from opsloop.registry._tables import (
    registered_models,
    registry_events,
)
from opsloop.registry._versions import version_entities
from opsloop.registry.entities import (
    FileEntry,
    ModelAlias,
    ModelVersion,
    RegistryEvent,
)
from opsloop.store import now_ms
from opsloop.tracking import validation as V


class AliasMixin:
    """Alias, history and file methods of ``RegistryService`` (kept apart for size)."""

    db: Any
    store: Any
    max_file_bytes: int | None
    _actor: Any
    _model_row: Any
    _version_row: Any
    _alias_version_row: Any
    _insert_model: Any
    get_version: Any

    # ------------------------------------------------------------------ aliases

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int | str,
        *,
        actor: str | None = None,
        force: bool = False,
        approval: str | None = None,
    ) -> ModelAlias:
        """Point ``alias`` at ``version``: one upsert in one transaction, so a reader
        resolving the alias concurrently sees the old or the new version, never none.

        Every ``registry.alias_move`` hook (``AliasMove``; e.g. the evaluation
        room's promotion gate) is called first, in the same transaction: a
        hook refuses by raising (``PromotionRefused``; ``APPROVAL_REQUIRED``
        for a protected alias moved without ``approval``) and nothing changes;
        with ``force`` the failed checks are recorded as a
        ``promotion_forced`` event and the alias moves. ``approval``: the id
        of the approved request this move carries out (see docs/governance.md)."""
        N.check_alias(alias)
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            checked = self._move_hooks(conn, m, v, alias, who, force, approval, dry_run=False)
            if checked.failures:
                record_event(
                    conn,
                    m.id,
                    m.name,
                    "promotion_forced",
                    who,
                    {"alias": alias, "failures": checked.failures},
                    version_id=v.id,
                    version=v.version,
                )
            ts = now_ms()
            extra: dict[str, Any] = {}
            if checked.gated:
                extra["gate"] = "forced" if checked.failures else "passed"
            if approval is not None:
                extra["approval"] = approval
            _rows.move_alias(conn, m, alias, v, who, ts, extra or None)
        return ModelAlias(
            name=m.name,
            alias=alias,
            version=v.version,
            version_id=v.id,
            updated_at=ts,
            updated_by=who,
        )

    def check_alias_move(
        self,
        name: str,
        alias: str,
        version: int | str,
        *,
        actor: str | None = None,
        force: bool = False,
    ) -> MoveCheck:
        """Run the ``registry.alias_move`` hooks on a move without making it (a dry run:
        the transaction is rolled back). Raises as ``set_alias`` would (a failed gate
        without ``force``: ``PromotionRefused``), except that nothing holds it for an
        approval; with ``force`` the failures are returned."""
        N.check_alias(alias)
        who = self._actor(actor)
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            return self._move_hooks(conn, m, v, alias, who, force, None, dry_run=True)

    def _move_hooks(
        self,
        conn: Any,
        m: Any,
        v: Any,
        alias: str,
        who: str,
        force: bool,
        approval: str | None,
        *,
        dry_run: bool,
    ) -> MoveCheck:
        checks: list[AliasMoveCheck] = hooks(ALIAS_MOVE)
        holder = alias_holder(conn, m.id, alias)
        move = AliasMove(
            connection=conn,
            model=m.name,
            model_id=m.id,
            alias=alias,
            from_version=holder,
            to_version=VersionRef(int(v.version), v.id, v.source_run_id),
            actor=who,
            force=force,
            approval=approval,
            dry_run=dry_run,
        )
        results = [r for r in (check(move) for check in checks) if r is not None]
        failed = [dict(f) for r in results for f in r]
        if failed and not force:
            raise PromotionRefused(
                f"moving {alias!r} of {m.name!r} to v{v.version} was refused",
                details={"model": m.name, "alias": alias, "version": v.version,
                         "failures": failed},
            )  # fmt: skip
        return MoveCheck(
            model=m.name,
            alias=alias,
            version=int(v.version),
            from_version=holder.version if holder else None,
            gated=bool(results),
            failures=failed,
        )

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> None:
        """Delete ``alias``; every ``registry.alias_delete`` hook may refuse it first (a
        protected alias, for one), in the same transaction."""
        N.check_alias(alias)
        who = self._actor(actor)
        checks: list[AliasDeleteCheck] = hooks(ALIAS_DELETE)
        with self.db.write() as conn:
            m = self._model_row(conn, name)
            holder = alias_holder(conn, m.id, alias)
            if holder is not None:
                for check in checks:
                    check(AliasDelete(conn, m.name, m.id, alias, holder, who))
            _rows.delete_alias(conn, m, alias, who)

    def list_aliases(self, name: str) -> list[ModelAlias]:
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            rows = _rows.alias_rows(conn, m.id)
            return [
                ModelAlias(
                    name=m.name,
                    alias=r.alias,
                    version=r.version,
                    version_id=r.version_id,
                    updated_at=r.updated_at,
                    updated_by=r.updated_by,
                )
                for r in rows
            ]

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        N.check_alias(alias)
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            return version_entities(conn, m.name, [self._alias_version_row(conn, m, alias)])[0]

    def resolve(self, uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names right now (alias, number or latest).

        A name renamed away (``rename_model``) still resolves, to the renamed
        model, until a model takes the old name again.
        """
        ref = N.parse_model_uri(uri)
        try:
            return self._resolve_ref(ref.name, ref)
        except NotFound:
            with self.db.read() as conn:
                moved = _rows.renamed_model_row(conn, ref.name)
            if moved is None:
                raise
            return self._resolve_ref(moved.name, ref)

    def _resolve_ref(self, name: str, ref: N.ModelRef) -> ModelVersion:
        if ref.alias is not None:
            return self.get_version_by_alias(name, ref.alias)
        mv: ModelVersion = self.get_version(
            name, ref.version if ref.version is not None else "latest"
        )
        return mv

    # ------------------------------------------------------------------ history and files

    def history(
        self,
        name: str,
        *,
        version: int | None = None,
        limit: int = 1000,
        before_id: int | None = None,
    ) -> list[RegistryEvent]:
        """Recorded changes to a model (newest first), kept even after the model is deleted."""
        N.check_model_name(name)
        if not 1 <= int(limit) <= MAX_LIST:
            raise InvalidArgument(f"limit must be in 1..{MAX_LIST}")
        with self.db.read() as conn:
            # Under this name, and the current model's own events from before a rename.
            current = conn.execute(
                sa.select(registered_models.c.id).where(registered_models.c.name == name)
            ).scalar()
            which = registry_events.c.model_name == name
            if current is not None:
                which = sa.or_(which, registry_events.c.model_id == current)
            q = sa.select(registry_events).where(which)
            q = q.order_by(registry_events.c.id.desc()).limit(int(limit))
            if version is not None:
                q = q.where(registry_events.c.version == N.version_ref(version))
            if before_id is not None:
                q = q.where(registry_events.c.id < int(before_id))
            rows = list(conn.execute(q))
            if not rows and before_id is None:
                self._model_row(conn, name)  # NotFound for a name never registered
        return [
            RegistryEvent(
                id=r.id,
                model_id=r.model_id,
                model_name=r.model_name,
                version=r.version,
                action=r.action,
                detail=r.detail_json or {},
                actor=r.actor,
                at=r.at,
            )
            for r in rows
        ]

    def open_file(self, name: str, version: int | str, path: str) -> tuple[FileEntry, BinaryIO]:
        """One file of a version as a readable stream."""
        mv = self.get_version(name, version)
        rel = V.artifact_path(path)
        entry = mv.files.get(rel)
        if entry is None:
            raise NotFound(
                f"version {mv.version} of {name!r} has no file {rel!r}",
                details={"name": name, "version": mv.version, "path": rel},
            )
        return entry, self.store.open(entry.digest)
