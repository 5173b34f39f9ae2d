"""Versions: created from run artifacts, local paths or uploaded blobs; read, described, tagged, deleted."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from opsloop.registry import _names as N
from opsloop.registry import _rows
from opsloop.registry._card import generate_card
from opsloop.registry._events import MAX_FILES, new_id, record_event
from opsloop.registry._tables import (
    model_aliases,
    model_version_tags,
    model_versions,
)
from opsloop.registry._versions import VersionBuilder, version_entities
from opsloop.registry.entities import (
    FileEntry,
    ModelVersion,
)
from opsloop.store import check_digest, now_ms, upsert
from opsloop.tracking import validation as V
from opsloop.tracking.tables import artifacts, runs


class VersionMixin:
    """Version methods of ``RegistryService`` (kept apart for size)."""

    db: Any
    store: Any
    max_file_bytes: int | None
    _actor: Any
    _model_row: Any
    _version_row: Any
    _alias_version_row: Any
    _insert_model: Any

    # ------------------------------------------------------------------ versions

    def create_version(
        self,
        name: str,
        files: Mapping[str, FileEntry | Mapping[str, Any]],
        *,
        source: str = "",
        source_run_id: str | None = None,
        flavor: str | None = None,
        options: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        kind: str = "model",
        actor: str | None = None,
    ) -> ModelVersion:
        """A new version (number = previous + 1) from blobs already in the store.

        ``files`` maps relative paths to ``{digest, size}``. When the files hold
        no ``opsloop-model.json``, ``flavor`` (and its ``options``) describe
        them. The model is created (``kind``) if it does not exist yet.
        """
        entries = self._check_files(files)
        return self._create_version(
            name,
            lambda conn: (entries, source_run_id),
            source=source,
            flavor=flavor,
            options=options,
            signature=signature,
            description=description,
            tags=tags,
            kind=kind,
            actor=actor,
        )

    def create_version_from_run(
        self,
        name: str,
        run_uri: str,
        *,
        flavor: str | None = None,
        options: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        kind: str = "model",
        actor: str | None = None,
    ) -> ModelVersion:
        """A new version from a run's artifacts: ``runs:/<run_id>/<path>`` (a file or a folder)."""
        run_id, path = N.parse_run_uri(run_uri)

        def gather(conn: Connection) -> tuple[dict[str, FileEntry], str | None]:
            run = conn.execute(sa.select(runs.c.lifecycle_stage).where(runs.c.id == run_id)).first()
            if run is None or run.lifecycle_stage != "active":
                raise NotFound(f"run {run_id!r} does not exist", details={"run_id": run_id})
            q = sa.select(artifacts.c.path, artifacts.c.digest, artifacts.c.size).where(
                artifacts.c.run_id == run_id
            )
            exact = None
            if path:
                exact = conn.execute(q.where(artifacts.c.path == path)).first()
                q = q.where(artifacts.c.path.startswith(path + "/", autoescape=True))
            if exact is not None:
                rows = [exact]
                base = posix_dirname(path)
            else:
                rows = list(conn.execute(q.limit(MAX_FILES + 1)))
                base = path
            if not rows:
                raise NotFound(
                    f"run {run_id!r} has no artifacts under {path or '/'!r}",
                    details={"run_id": run_id, "path": path},
                )
            if len(rows) > MAX_FILES:
                raise InvalidArgument(f"a model version holds at most {MAX_FILES} files")
            cut = len(base) + 1 if base else 0
            return {r.path[cut:]: FileEntry(digest=r.digest, size=r.size) for r in rows}, run_id

        source = f"runs:/{run_id}/{path}" if path else f"runs:/{run_id}"
        return self._create_version(
            name,
            gather,
            source=source,
            flavor=flavor,
            options=options,
            signature=signature,
            description=description,
            tags=tags,
            kind=kind,
            actor=actor,
        )

    def create_version_from_path(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        source_run_id: str | None = None,
        flavor: str | None = None,
        options: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        kind: str = "model",
        actor: str | None = None,
    ) -> ModelVersion:
        """A new version from a local file or folder: its files are copied into the blob store."""
        entries: dict[str, FileEntry] = {}
        for rel, f in local_files(path):
            blob = self.store.put_file(f) if self.max_file_bytes is None else self._put_limited(f)
            entries[rel] = FileEntry(digest=blob.digest, size=blob.size)
        return self._create_version(
            name,
            lambda conn: (entries, source_run_id),
            source=str(Path(path).resolve()),
            flavor=flavor,
            options=options,
            signature=signature,
            description=description,
            tags=tags,
            kind=kind,
            actor=actor,
        )

    def _put_limited(self, f: Path) -> Any:
        with open(f, "rb") as fh:
            return self.store.put_stream(fh, max_bytes=self.max_file_bytes)

    def _check_files(self, files: Mapping[str, Any]) -> dict[str, FileEntry]:
        if not isinstance(files, Mapping) or not files:
            raise InvalidArgument("a model version needs at least one file")
        if len(files) > MAX_FILES:
            raise InvalidArgument(f"a model version holds at most {MAX_FILES} files")
        out: dict[str, FileEntry] = {}
        for p, e in files.items():
            rel = V.artifact_path(p)
            try:
                entry = e if isinstance(e, FileEntry) else FileEntry.model_validate(dict(e))
            except (ValidationError, TypeError, ValueError) as exc:
                raise InvalidArgument(f"file {rel!r} must be {{digest, size}}") from exc
            check_digest(entry.digest)
            if entry.size < 0:
                raise InvalidArgument(f"file {rel!r} has a negative size")
            if not self.store.exists(entry.digest):
                raise InvalidArgument(
                    f"file {rel!r}: blob {entry.digest} is not in the artifact store; upload it first",
                    details={"path": rel, "digest": entry.digest},
                )
            out[rel] = entry
        return out

    def _create_version(
        self,
        name: str,
        gather: Any,
        *,
        source: str,
        flavor: str | None,
        options: Mapping[str, Any] | None,
        signature: Mapping[str, Any] | None,
        description: str,
        tags: Mapping[str, Any] | None,
        kind: str,
        actor: str | None,
    ) -> ModelVersion:
        N.check_model_name(name)
        N.check_kind(kind)
        if flavor == "pipeline" and kind == "model":
            kind = "pipeline"  # a new name registered with a pipeline is a pipeline
        N.check_description(description)
        tag_rows = {V.check_key("tag", k): V.tag_value(v) for k, v in (tags or {}).items()}
        if len(source) > 4096:
            raise InvalidArgument("source is longer than 4096 characters")
        who = self._actor(actor)
        builder = VersionBuilder(self.store, flavor=flavor, options=options, signature=signature)
        for attempt in range(3):
            try:
                with self.db.write() as conn:
                    files, run_id = gather(conn)
                    try:
                        model = self._model_row(conn, name, lock=True)
                    except NotFound:
                        # A concurrent first version may have committed the model: use it.
                        with contextlib.suppress(AlreadyExists):
                            self._insert_model(conn, name, kind, "", {}, who)
                        model = self._model_row(conn, name, lock=True)
                    if model.kind == "prompt":
                        # A prompt's versions hold templates, written by the prompt service only.
                        raise Conflict(
                            f"{name!r} is a prompt: create its versions with client.prompts.create",
                            details={"name": name, "kind": model.kind},
                        )
                    if run_id is not None:
                        self._check_run(conn, run_id)
                    built = builder.build(conn, files, self)
                    number = _rows.next_version(conn, model.id)
                    vid = new_id()
                    ts = now_ms()
                    card = generate_card(conn, name, number, built, run_id, source, description)
                    conn.execute(
                        model_versions.insert().values(
                            id=vid,
                            model_id=model.id,
                            version=number,
                            flavor=built.descriptor.flavor,
                            source_run_id=run_id,
                            source=source,
                            manifest_json={
                                p: e.model_dump() for p, e in sorted(built.files.items())
                            },
                            signature_json=built.signature_dict,
                            card_json={
                                "generated": card,
                                "fields": {},
                                "markdown": None,
                                "updated_at": ts,
                                "updated_by": who,
                            },
                            metadata_json=built.descriptor.metadata,
                            description=description,
                            status="READY",
                            base_version_id=built.base_version_id,
                            created_at=ts,
                            created_by=who,
                        )
                    )
                    if tag_rows:
                        conn.execute(
                            model_version_tags.insert(),
                            [
                                {"version_id": vid, "key": k, "value": v}
                                for k, v in tag_rows.items()
                            ],
                        )
                    _rows.touch_model(conn, model.id, ts)
                    record_event(
                        conn,
                        model.id,
                        name,
                        "version_created",
                        who,
                        {
                            "source": source,
                            "flavor": built.descriptor.flavor,
                            "run_id": run_id,
                            "files": len(built.files),
                            "size": sum(e.size for e in built.files.values()),
                        },
                        version_id=vid,
                        version=number,
                    )
                break
            except sa.exc.IntegrityError:
                # Two first versions of a new model raced (the model row or number 1): retry.
                if attempt == 2:
                    raise
        return self.get_version(name, number)

    @staticmethod
    def _check_run(conn: Connection, run_id: str) -> None:
        V.check_id("run id", run_id)
        if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
            raise NotFound(f"run {run_id!r} does not exist", details={"run_id": run_id})

    def get_version(self, name: str, version: int | str) -> ModelVersion:
        """A version by number, or the newest for ``"latest"``."""
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            return version_entities(conn, m.name, [self._version_row(conn, m, version)])[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, newest first."""
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            return version_entities(conn, m.name, _rows.version_rows(conn, m.id))

    def update_version(
        self,
        name: str,
        version: int | str,
        *,
        description: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            if description is not None and description != v.description:
                N.check_description(description)
                conn.execute(
                    model_versions.update()
                    .where(model_versions.c.id == v.id)
                    .values(description=description)
                )
                record_event(
                    conn,
                    m.id,
                    m.name,
                    "version_description_set",
                    who,
                    {"old": v.description, "new": description},
                    version_id=v.id,
                    version=v.version,
                )
        return self.get_version(name, v.version)

    def delete_version(self, name: str, version: int | str, *, actor: str | None = None) -> None:
        """Delete one version; aliases pointing at it are deleted too (and recorded)."""
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name, lock=True)
            v = self._version_row(conn, m, version)
            users = conn.execute(
                sa.select(model_versions.c.id)
                .where(model_versions.c.base_version_id == v.id)
                .limit(1)
            ).first()
            if users is not None:
                raise Conflict(
                    f"version {v.version} of {name!r} is the base of adapter versions; delete those first",
                    details={"name": name, "version": v.version},
                )
            gone = [
                r.alias
                for r in conn.execute(
                    sa.select(model_aliases.c.alias).where(model_aliases.c.version_id == v.id)
                )
            ]
            conn.execute(model_aliases.delete().where(model_aliases.c.version_id == v.id))
            conn.execute(model_version_tags.delete().where(model_version_tags.c.version_id == v.id))
            conn.execute(model_versions.delete().where(model_versions.c.id == v.id))
            for a in gone:
                record_event(
                    conn,
                    m.id,
                    m.name,
                    "alias_deleted",
                    who,
                    {"alias": a, "reason": "version deleted"},
                    version_id=v.id,
                    version=v.version,
                )
            record_event(
                conn, m.id, m.name, "version_deleted", who, {}, version_id=v.id, version=v.version
            )

    def set_version_tag(
        self, name: str, version: int | str, key: str, value: Any, *, actor: str | None = None
    ) -> None:
        V.check_key("tag", key)
        val = V.tag_value(value)
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            upsert(
                conn,
                model_version_tags,
                [{"version_id": v.id, "key": key, "value": val}],
                ["version_id", "key"],
                ["value"],
            )
            record_event(
                conn,
                m.id,
                m.name,
                "version_tag_set",
                who,
                {"key": key, "value": val},
                version_id=v.id,
                version=v.version,
            )

    def delete_version_tag(
        self, name: str, version: int | str, key: str, *, actor: str | None = None
    ) -> None:
        V.check_key("tag", key)
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            res = conn.execute(
                model_version_tags.delete().where(
                    model_version_tags.c.version_id == v.id, model_version_tags.c.key == key
                )
            )
            if res.rowcount == 0:
                raise NotFound(f"version {v.version} of {name!r} has no tag {key!r}")
            record_event(
                conn,
                m.id,
                m.name,
                "version_tag_deleted",
                who,
                {"key": key},
                version_id=v.id,
                version=v.version,
            )


def posix_dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def local_files(path: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """``(relative posix path, file)`` for a file or every file under a folder."""
    p = Path(path)
    if p.is_file():
        return [(p.name, p)]
    if not p.is_dir():
        raise InvalidArgument(f"{p} is neither a file nor a folder", details={"path": str(p)})
    out = []
    for f in sorted(p.rglob("*")):
        if f.is_file():
            out.append((f.relative_to(p).as_posix(), f))
            if len(out) > MAX_FILES:
                raise InvalidArgument(f"{p} holds more than {MAX_FILES} files")
    if not out:
        raise InvalidArgument(f"{p} holds no files", details={"path": str(p)})
    return out
