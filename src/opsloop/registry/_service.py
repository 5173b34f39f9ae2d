"""Registry logic: registered models, versions, aliases, tags and the change history.

Pure functions over a ``Database`` and an ``ArtifactStore``; every public
method that writes is one transaction, and every change appends a
``registry_events`` row (who, what, when) in that same transaction. A version's
files are content-addressed blobs, written before the row that names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from opsloop.registry import _names as N
from opsloop.registry import _rows
from opsloop.registry._alias_service import AliasMixin
from opsloop.registry._card import CardMixin
from opsloop.registry._events import record_event
from opsloop.registry._tables import (
    model_aliases,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from opsloop.registry._version_service import VersionMixin, local_files
from opsloop.registry.entities import (
    RegisteredModel,
)
from opsloop.store import ArtifactStore, Database, now_ms, upsert
from opsloop.tracking import validation as V

__all__ = ["RegistryService", "local_files"]


class RegistryService(CardMixin, VersionMixin, AliasMixin):
    """Registered models and their versions in one ``Database`` + ``ArtifactStore``.

    ``actor`` on every mutating call says who acts (recorded in the history);
    without it, ``default_actor`` (the settings user or the OS user) is used.
    """

    def __init__(
        self,
        db: Database,
        store: ArtifactStore,
        *,
        default_actor: str | None = None,
        max_file_bytes: int | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.default_actor = default_actor if default_actor is not None else N.current_user()
        self.max_file_bytes = max_file_bytes

    def _actor(self, actor: str | None) -> str:
        return (actor or self.default_actor or "")[:256]

    # ------------------------------------------------------------------ lookups (inside a txn)

    @staticmethod
    def _model_row(conn: Connection, name: str, *, lock: bool = False) -> Any:
        return _rows.model_row(conn, N.check_model_name(name), lock=lock)

    @staticmethod
    def _version_row(conn: Connection, model: Any, version: Any) -> Any:
        return _rows.version_row(conn, model, N.version_ref(version))

    @staticmethod
    def _alias_version_row(conn: Connection, model: Any, alias: str) -> Any:
        return _rows.alias_version_row(conn, model, alias)

    def _model_entity(self, conn: Connection, row: Any) -> RegisteredModel:
        return self._model_entities(conn, [row])[0]

    @staticmethod
    def _model_entities(conn: Connection, rows: list[Any]) -> list[RegisteredModel]:
        ids = [r.id for r in rows]
        if not ids:
            return []
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        for i in range(0, len(ids), 500):
            for t in conn.execute(
                sa.select(registered_model_tags).where(
                    registered_model_tags.c.model_id.in_(ids[i : i + 500])
                )
            ):
                tags[t.model_id][t.key] = t.value
        aliases, stats = _rows.model_summaries(conn, ids)
        return [
            RegisteredModel(
                id=r.id,
                name=r.name,
                kind=r.kind,
                description=r.description,
                tags=tags[r.id],
                aliases=aliases[r.id],
                latest_version=stats[r.id][0],
                version_count=stats[r.id][1],
                created_at=r.created_at,
                updated_at=r.updated_at,
                created_by=r.created_by,
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ registered models

    def _insert_model(
        self,
        conn: Connection,
        name: str,
        kind: str,
        description: str,
        tags: Mapping[str, str],
        actor: str,
    ) -> str:
        if conn.execute(
            sa.select(registered_models.c.id).where(registered_models.c.name == name)
        ).first():
            raise AlreadyExists(f"registered model {name!r} already exists", details={"name": name})
        mid = _rows.insert_model(
            conn,
            name,
            kind,
            description,
            actor,
            {"kind": kind, "description": description, "tags": dict(tags)},
        )
        if tags:
            conn.execute(
                registered_model_tags.insert(),
                [{"model_id": mid, "key": k, "value": v} for k, v in tags.items()],
            )
        return mid

    def create_model(
        self,
        name: str,
        *,
        kind: str = "model",
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        """Register a new model name (``AlreadyExists`` if taken)."""
        N.check_model_name(name)
        N.check_kind(kind)
        N.check_description(description)
        tag_rows = {V.check_key("tag", k): V.tag_value(v) for k, v in (tags or {}).items()}
        who = self._actor(actor)
        try:
            with self.db.write() as conn:
                self._insert_model(conn, name, kind, description, tag_rows, who)
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(
                f"registered model {name!r} already exists", details={"name": name}
            ) from exc
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            return self._model_entity(conn, self._model_row(conn, name))

    def list_models(
        self,
        *,
        kind: str | None = None,
        name_contains: str | None = None,
        max_results: int = 1000,
    ) -> list[RegisteredModel]:
        """Models ordered by name; ``name_contains`` matches case-insensitively."""
        q = _rows.models_query(kind, name_contains, max_results)
        with self.db.read() as conn:
            return self._model_entities(conn, list(conn.execute(q)))

    def update_model(
        self, name: str, *, description: str | None = None, actor: str | None = None
    ) -> RegisteredModel:
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name)
            if description is not None and description != m.description:
                N.check_description(description)
                conn.execute(
                    registered_models.update()
                    .where(registered_models.c.id == m.id)
                    .values(description=description, updated_at=now_ms())
                )
                record_event(
                    conn,
                    m.id,
                    m.name,
                    "model_description_set",
                    who,
                    {"old": m.description, "new": description},
                )
        return self.get_model(name)

    def rename_model(
        self, name: str, new_name: str, *, actor: str | None = None
    ) -> RegisteredModel:
        """Rename a model: its versions, aliases, tags, cards and history go with it.

        One transaction: the row's name changes (versions, aliases and tags hang
        off its id) and a ``model_renamed`` event is recorded under the old name.
        ``NotFound`` if ``name`` is not registered, ``AlreadyExists`` if
        ``new_name`` is. ``models:/OLD...`` URIs stored elsewhere (deployments,
        gates, jobs) keep resolving to the renamed model through ``resolve``
        until the old name is registered again.
        """
        N.check_model_name(name)
        N.check_model_name(new_name)
        who = self._actor(actor)
        try:
            with self.db.write() as conn:
                m = self._model_row(conn, name, lock=True)
                if m.kind == "prompt":
                    raise InvalidArgument(
                        f"{name!r} is a prompt; pipelines name prompts, so register it "
                        "under the new name instead",
                        details={"name": name},
                    )
                if new_name == name:
                    return self._model_entity(conn, m)
                if conn.execute(
                    sa.select(registered_models.c.id).where(registered_models.c.name == new_name)
                ).first():
                    raise AlreadyExists(
                        f"registered model {new_name!r} already exists", details={"name": new_name}
                    )
                conn.execute(
                    registered_models.update()
                    .where(registered_models.c.id == m.id)
                    .values(name=new_name, updated_at=now_ms())
                )
                # Under the old name: history(old) ends with it, and resolve() follows it
                # for as long as it is the newest event under that name.
                record_event(
                    conn, m.id, m.name, _rows.RENAMED, who, {"from": m.name, "to": new_name}
                )
        except sa.exc.IntegrityError as exc:  # a concurrent create or rename took new_name
            raise AlreadyExists(
                f"registered model {new_name!r} already exists", details={"name": new_name}
            ) from exc
        return self.get_model(new_name)

    def delete_model(self, name: str, *, actor: str | None = None) -> None:
        """Delete a model with its versions, aliases and tags (the history stays)."""
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name, lock=True)
            used = conn.execute(
                sa.select(model_versions.c.model_id)
                .where(
                    model_versions.c.base_version_id.in_(
                        sa.select(model_versions.c.id).where(model_versions.c.model_id == m.id)
                    ),
                    model_versions.c.model_id != m.id,
                )
                .limit(1)
            ).first()
            if used is not None:
                raise Conflict(
                    f"registered model {name!r} has versions that other models' adapters use as base",
                    details={"name": name},
                )
            n = conn.execute(
                sa.select(sa.func.count())
                .select_from(model_versions)
                .where(model_versions.c.model_id == m.id)
            ).scalar_one()
            conn.execute(model_aliases.delete().where(model_aliases.c.model_id == m.id))
            ids = sa.select(model_versions.c.id).where(model_versions.c.model_id == m.id)
            conn.execute(
                model_version_tags.delete().where(model_version_tags.c.version_id.in_(ids))
            )
            conn.execute(model_versions.delete().where(model_versions.c.model_id == m.id))
            conn.execute(
                registered_model_tags.delete().where(registered_model_tags.c.model_id == m.id)
            )
            conn.execute(registered_models.delete().where(registered_models.c.id == m.id))
            record_event(conn, m.id, m.name, "model_deleted", who, {"versions": int(n)})

    def set_model_tag(self, name: str, key: str, value: Any, *, actor: str | None = None) -> None:
        V.check_key("tag", key)
        val = V.tag_value(value)
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name)
            upsert(
                conn,
                registered_model_tags,
                [{"model_id": m.id, "key": key, "value": val}],
                ["model_id", "key"],
                ["value"],
            )
            conn.execute(
                registered_models.update()
                .where(registered_models.c.id == m.id)
                .values(updated_at=now_ms())
            )
            record_event(conn, m.id, m.name, "model_tag_set", who, {"key": key, "value": val})

    def delete_model_tag(self, name: str, key: str, *, actor: str | None = None) -> None:
        V.check_key("tag", key)
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name)
            res = conn.execute(
                registered_model_tags.delete().where(
                    registered_model_tags.c.model_id == m.id, registered_model_tags.c.key == key
                )
            )
            if res.rowcount == 0:
                raise NotFound(f"registered model {name!r} has no tag {key!r}")
            record_event(conn, m.id, m.name, "model_tag_deleted", who, {"key": key})
