"""Prompt registry logic over the registry's tables.

A prompt is a registered model of kind ``prompt``; each version is a
``model_versions`` row of flavor ``prompt`` whose ``metadata_json["prompt"]``
holds the template, its kind and variables, and whose description is the
commit message. Labels are registry aliases (one row per prompt and label, so
a label points at exactly one version and moving it is one upsert); ``latest``
is never stored: it is the newest version. Every change appends a
``registry_events`` row in its own transaction, so the registry's history
covers prompts too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.core import resolve_user
from opsloop.errors import Conflict, InvalidArgument, NotFound
from opsloop.prompts import _ref as R
from opsloop.prompts._diff import diff_versions
from opsloop.prompts._template import check_declared, compile_template
from opsloop.prompts.entities import Prompt, PromptDiff, PromptLabel, PromptVersion
from opsloop.registry import storage as _rows
from opsloop.registry.storage import model_versions, new_id, record_event
from opsloop.settings import Settings
from opsloop.store import Database, now_ms

FLAVOR = "prompt"
KIND = "prompt"
MAX_MESSAGE = 100_000
MAX_METADATA_BYTES = 256 * 1024
MAX_LABELS = 100


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise InvalidArgument("metadata must be an object with string keys")
    try:
        size = len(json.dumps(dict(metadata), allow_nan=False))
        orjson.dumps(dict(metadata))  # as the API answers it: integers within 64 bits
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"metadata must be plain JSON: {exc}") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidArgument(f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON")
    return dict(metadata)


class PromptService:
    """Prompts and their versions and labels in one ``Database`` (one transaction per call)."""

    def __init__(self, db: Database, *, default_actor: str | None = None) -> None:
        self.db = db
        self.default_actor = (
            default_actor if default_actor is not None else resolve_user(Settings())
        )

    def _actor(self, actor: str | None) -> str:
        return (actor or self.default_actor or "")[:256]

    # ------------------------------------------------------------------ rows (inside a txn)

    @staticmethod
    def _prompt_row(conn: Connection, name: str, *, lock: bool = False) -> Any:
        row = _rows.model_row(conn, R.check_name(name), lock=lock, noun=KIND)
        if row.kind != KIND:
            raise NotFound(
                f"{name!r} is a registered {row.kind}, not a prompt",
                details={"name": name, "kind": row.kind},
            )
        return row

    @staticmethod
    def _version_row(conn: Connection, p: Any, version: int | None) -> Any:
        return _rows.version_row(conn, p, version, noun=KIND)

    @staticmethod
    def _label_row(conn: Connection, p: Any, label: str) -> Any:
        return _rows.alias_version_row(conn, p, label, noun=KIND, alias_noun="label")

    def _ref_row(self, conn: Connection, p: Any, ref: R.PromptRef) -> Any:
        if ref.version is not None:
            return self._version_row(conn, p, ref.version)
        if ref.label in (None, R.LATEST):
            return self._version_row(conn, p, None)
        return self._label_row(conn, p, str(ref.label))

    @staticmethod
    def _entities(conn: Connection, p: Any, rows: Sequence[Any]) -> list[PromptVersion]:
        labels = _rows.version_aliases(conn, [r.id for r in rows])
        newest = _rows.newest_version(conn, p.id)
        out = []
        for r in rows:
            if r.flavor != FLAVOR:
                raise Conflict(
                    f"version {r.version} of {p.name!r} is a {r.flavor!r} model version, not a prompt",
                    details={"name": p.name, "version": r.version},
                )
            body = (r.metadata_json or {}).get("prompt") or {}
            out.append(
                PromptVersion(
                    name=p.name,
                    version=r.version,
                    kind=body.get("kind", "text"),
                    template=body.get("template", ""),
                    variables=list(body.get("variables", [])),
                    labels=labels[r.id] + ([R.LATEST] if r.version == newest else []),
                    message=r.description or "",
                    metadata=dict(body.get("metadata") or {}),
                    created_at=r.created_at,
                    created_by=r.created_by or "",
                )
            )
        return out

    # ------------------------------------------------------------------ writes

    def create(
        self,
        name: str,
        template: str | Sequence[Mapping[str, str]],
        *,
        message: str | None = None,
        variables: Sequence[str] | None = None,
        labels: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> PromptVersion:
        """A new version of ``name`` (the prompt is created with its first version).

        ``variables`` default to the placeholders in order of first use; given,
        they must name exactly the placeholders. ``labels`` move to the new
        version in the same transaction.
        """
        R.check_name(name)
        tpl = compile_template(template)
        names = check_declared(tpl, variables)
        msg = message or ""
        if not isinstance(msg, str) or len(msg) > MAX_MESSAGE:
            raise InvalidArgument(f"message must be a string of at most {MAX_MESSAGE} characters")
        if isinstance(labels, str):
            labels = [labels]
        if len(labels) > MAX_LABELS:
            raise InvalidArgument(f"at most {MAX_LABELS} labels per call")
        label_list = list(dict.fromkeys(R.check_label(x) for x in labels))
        meta = check_metadata(metadata)
        who = self._actor(actor)
        body = {"kind": tpl.kind, "template": tpl.source, "variables": names, "metadata": meta}
        for attempt in range(3):
            try:
                with self.db.write() as conn:
                    number = self._insert_version(conn, name, body, msg, label_list, who)
                break
            except sa.exc.IntegrityError:
                # Two first versions of a new prompt raced (the name or number 1): retry.
                if attempt == 2:
                    raise
        return self.get(name, version=number)

    def _insert_version(
        self,
        conn: Connection,
        name: str,
        body: dict[str, Any],
        msg: str,
        labels: list[str],
        who: str,
    ) -> int:
        ts = now_ms()
        try:
            p = _rows.model_row(conn, name, lock=True, noun=KIND)
        except NotFound:
            _rows.insert_model(conn, name, KIND, "", who, {"kind": KIND})
            p = _rows.model_row(conn, name, lock=True, noun=KIND)
        if p.kind != KIND:
            raise Conflict(
                f"the name {name!r} is taken by a registered {p.kind}",
                details={"name": name, "kind": p.kind},
            )
        number = _rows.next_version(conn, p.id)
        vid = new_id()
        conn.execute(
            model_versions.insert().values(
                id=vid,
                model_id=p.id,
                version=number,
                flavor=FLAVOR,
                source_run_id=None,
                source="",
                manifest_json={},
                signature_json=None,
                card_json=None,
                metadata_json={"prompt": body},
                description=msg,
                status="READY",
                base_version_id=None,
                created_at=ts,
                created_by=who,
            )
        )
        _rows.touch_model(conn, p.id, ts)
        record_event(
            conn,
            p.id,
            name,
            "version_created",
            who,
            {
                "flavor": FLAVOR,
                "kind": body["kind"],
                "message": msg,
                "variables": body["variables"],
            },
            version_id=vid,
            version=number,
        )
        row = conn.execute(sa.select(model_versions).where(model_versions.c.id == vid)).one()
        for label in labels:
            _rows.move_alias(conn, p, label, row, who, ts)
        return number

    def set_label(
        self, name: str, label: str, version: int | str, *, actor: str | None = None
    ) -> PromptLabel:
        """Point ``label`` at ``version``: one upsert in one transaction, so a reader sees
        the old or the new version, and a label is never on two versions."""
        R.check_label(label)
        n = R.version_number(version)
        who = self._actor(actor)
        ts = now_ms()
        with self.db.write() as conn:
            p = self._prompt_row(conn, name)
            v = self._version_row(conn, p, n)
            old = _rows.move_alias(conn, p, label, v, who, ts)
        return PromptLabel(
            name=p.name,
            label=label,
            version=v.version,
            previous_version=old,
            updated_at=ts,
            updated_by=who,
        )

    def delete_label(self, name: str, label: str, *, actor: str | None = None) -> None:
        R.check_label(label)
        who = self._actor(actor)
        with self.db.write() as conn:
            p = self._prompt_row(conn, name)
            _rows.delete_alias(conn, p, label, who, noun=KIND, alias_noun="label")

    # ------------------------------------------------------------------ reads

    def get(
        self, name: str, *, version: int | str | None = None, label: str | None = None
    ) -> PromptVersion:
        """A version by number, by label, or (neither) the newest; ``name`` may be a URI."""
        ref = R.make_ref(name, version, label)
        with self.db.read() as conn:
            p = self._prompt_row(conn, ref.name)
            return self._entities(conn, p, [self._ref_row(conn, p, ref)])[0]

    def resolve(self, ref: int | str, name: str) -> PromptVersion:
        """A version number, ``latest`` or a label (how the CLI and diff name versions)."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return self.get(name, version=ref)
        return self.get(name, label=ref)

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version, newest first."""
        with self.db.read() as conn:
            p = self._prompt_row(conn, name)
            return self._entities(conn, p, _rows.version_rows(conn, p.id))

    def labels(self, name: str) -> list[PromptLabel]:
        with self.db.read() as conn:
            p = self._prompt_row(conn, name)
            return [
                PromptLabel(
                    name=p.name,
                    label=r.alias,
                    version=r.version,
                    updated_at=r.updated_at,
                    updated_by=r.updated_by,
                )
                for r in _rows.alias_rows(conn, p.id)
            ]

    def get_prompt(self, name: str) -> Prompt:
        with self.db.read() as conn:
            return self._prompts(conn, [self._prompt_row(conn, name)])[0]

    def list_prompts(
        self, *, name_contains: str | None = None, max_results: int = 1000
    ) -> list[Prompt]:
        """Prompts by name; ``name_contains`` matches case-insensitively."""
        q = _rows.models_query(KIND, name_contains, max_results)
        with self.db.read() as conn:
            return self._prompts(conn, list(conn.execute(q)))

    @staticmethod
    def _prompts(conn: Connection, rows: list[Any]) -> list[Prompt]:
        labels, stats = _rows.model_summaries(conn, [r.id for r in rows])
        return [
            Prompt(
                name=r.name,
                description=r.description,
                latest_version=stats[r.id][0],
                version_count=stats[r.id][1],
                labels=labels[r.id],
                created_at=r.created_at,
                updated_at=r.updated_at,
                created_by=r.created_by or "",
            )
            for r in rows
        ]

    def diff(self, name: str, a: int | str, b: int | str) -> PromptDiff:
        """What changed from ``a`` to ``b`` (version numbers, labels or ``latest``)."""
        return diff_versions(self.resolve(a, name), self.resolve(b, name))

    def render(
        self,
        name: str,
        variables: Mapping[str, Any],
        *,
        version: int | str | None = None,
        label: str | None = None,
    ) -> tuple[PromptVersion, str | list[dict[str, str]]]:
        pv = self.get(name, version=version, label=label)
        return pv, pv.render_from(variables)
