"""Row lookups and alias moves inside a transaction, shared by the registry and prompt services.

Prompts are registered models of kind ``prompt`` whose aliases are called
labels, so both services read and write the same rows; ``noun`` and
``alias_noun`` only change how errors name what was missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgument, NotFound
from opsloop.registry import _names as N
from opsloop.registry._events import MAX_LIST, new_id, record_event
from opsloop.registry._tables import (
    model_aliases,
    model_versions,
    registered_models,
    registry_events,
)
from opsloop.store import now_ms, upsert

MODEL = "registered model"
RENAMED = "model_renamed"
_CHUNK = 500


def model_row(conn: Connection, name: str, *, lock: bool = False, noun: str = MODEL) -> Any:
    """The ``registered_models`` row named ``name`` (already checked), locked on PostgreSQL."""
    q = sa.select(registered_models).where(registered_models.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"{noun} {name!r} does not exist", details={"name": name})
    return row


def renamed_model_row(conn: Connection, name: str) -> Any | None:
    """The model ``name`` was renamed to, while no model has taken ``name`` since.

    The redirect is the ``model_renamed`` event recorded under the old name: it
    holds while it is the newest event under that name and no model has the name
    (registering the name again, or renaming a model to it, ends it). Followed by
    id, so a model renamed twice is found under its current name.
    """
    if conn.execute(
        sa.select(registered_models.c.id).where(registered_models.c.name == name)
    ).first():
        return None
    last = conn.execute(
        sa.select(
            registry_events.c.model_id, registry_events.c.action, registry_events.c.detail_json
        )
        .where(registry_events.c.model_name == name)
        .order_by(registry_events.c.id.desc())
        .limit(1)
    ).first()
    if last is None or last.action != RENAMED or (last.detail_json or {}).get("from") != name:
        return None
    return conn.execute(
        sa.select(registered_models).where(registered_models.c.id == last.model_id)
    ).first()


def version_row(conn: Connection, model: Any, n: int | None, *, noun: str = MODEL) -> Any:
    """Version ``n`` of ``model``, or its newest for None."""
    q = sa.select(model_versions).where(model_versions.c.model_id == model.id)
    if n is None:
        q = q.order_by(model_versions.c.version.desc()).limit(1)
    else:
        q = q.where(model_versions.c.version == n)
    row = conn.execute(q).first()
    if row is None:
        what = "has no versions" if n is None else f"has no version {n}"
        raise NotFound(f"{noun} {model.name!r} {what}", details={"name": model.name, "version": n})
    return row


def alias_version_row(
    conn: Connection, model: Any, alias: str, *, noun: str = MODEL, alias_noun: str = "alias"
) -> Any:
    row = conn.execute(
        sa.select(model_versions)
        .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
        .where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
    ).first()
    if row is None:
        raise NotFound(
            f"{noun} {model.name!r} has no {alias_noun} {alias!r}",
            details={"name": model.name, alias_noun: alias},
        )
    return row


def move_alias(
    conn: Connection,
    model: Any,
    alias: str,
    version: Any,
    who: str,
    ts: int,
    extra: Mapping[str, Any] | None = None,
) -> int | None:
    """Point ``alias`` at ``version`` (one upsert) and record it; the version it left, if any."""
    old = conn.execute(
        sa.select(model_versions.c.version)
        .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
        .where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
    ).scalar()
    upsert(
        conn,
        model_aliases,
        [
            {
                "model_id": model.id,
                "alias": alias,
                "version_id": version.id,
                "updated_at": ts,
                "updated_by": who,
            }
        ],
        ["model_id", "alias"],
        ["version_id", "updated_at", "updated_by"],
    )
    record_event(
        conn,
        model.id,
        model.name,
        "alias_set",
        who,
        {"alias": alias, "version": version.version, "previous_version": old, **(extra or {})},
        version_id=version.id,
        version=version.version,
    )
    return int(old) if old is not None else None


def delete_alias(
    conn: Connection,
    model: Any,
    alias: str,
    who: str,
    *,
    noun: str = MODEL,
    alias_noun: str = "alias",
) -> None:
    v = alias_version_row(conn, model, alias, noun=noun, alias_noun=alias_noun)
    conn.execute(
        model_aliases.delete().where(
            model_aliases.c.model_id == model.id, model_aliases.c.alias == alias
        )
    )
    record_event(
        conn,
        model.id,
        model.name,
        "alias_deleted",
        who,
        {"alias": alias, "version": v.version},
        version_id=v.id,
        version=v.version,
    )


def alias_rows(conn: Connection, model_id: str) -> Any:
    """A model's aliases with their version numbers, by alias."""
    return conn.execute(
        sa.select(model_aliases, model_versions.c.version)
        .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
        .where(model_aliases.c.model_id == model_id)
        .order_by(model_aliases.c.alias)
    )


def version_aliases(conn: Connection, version_ids: list[str]) -> dict[str, list[str]]:
    """``version id -> its aliases`` (sorted) for the given versions."""
    out: dict[str, list[str]] = {i: [] for i in version_ids}
    for i in range(0, len(version_ids), _CHUNK):
        for a in conn.execute(
            sa.select(model_aliases.c.version_id, model_aliases.c.alias)
            .where(model_aliases.c.version_id.in_(version_ids[i : i + _CHUNK]))
            .order_by(model_aliases.c.alias)
        ):
            out[a.version_id].append(a.alias)
    return out


def model_summaries(
    conn: Connection, model_ids: list[str]
) -> tuple[dict[str, dict[str, int]], dict[str, tuple[int | None, int]]]:
    """``model id -> {alias: version}`` (by alias) and ``model id -> (newest version, count)``."""
    aliases: dict[str, dict[str, int]] = {i: {} for i in model_ids}
    stats: dict[str, tuple[int | None, int]] = {i: (None, 0) for i in model_ids}
    for i in range(0, len(model_ids), _CHUNK):
        chunk = model_ids[i : i + _CHUNK]
        for a in conn.execute(
            sa.select(model_aliases.c.model_id, model_aliases.c.alias, model_versions.c.version)
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .where(model_aliases.c.model_id.in_(chunk))
            .order_by(model_aliases.c.alias)
        ):
            aliases[a.model_id][a.alias] = a.version
        for s in conn.execute(
            sa.select(
                model_versions.c.model_id,
                sa.func.max(model_versions.c.version),
                sa.func.count(),
            )
            .where(model_versions.c.model_id.in_(chunk))
            .group_by(model_versions.c.model_id)
        ):
            stats[s[0]] = (s[1], s[2])
    return aliases, stats


def models_query(kind: str | None, name_contains: str | None, max_results: int) -> Any:
    """Models (of ``kind``) by name; ``name_contains`` matches case-insensitively."""
    if not 1 <= int(max_results) <= MAX_LIST:
        raise InvalidArgument(f"max_results must be in 1..{MAX_LIST}")
    q = sa.select(registered_models).order_by(registered_models.c.name).limit(int(max_results))
    if kind is not None:
        q = q.where(registered_models.c.kind == N.check_kind(kind))
    if name_contains:
        if not isinstance(name_contains, str) or len(name_contains) > 256:
            raise InvalidArgument("name_contains must be a string of at most 256 characters")
        q = q.where(
            sa.func.lower(registered_models.c.name).contains(name_contains.lower(), autoescape=True)
        )
    return q


def insert_model(
    conn: Connection, name: str, kind: str, description: str, who: str, detail: Mapping[str, Any]
) -> str:
    """A new ``registered_models`` row and its ``model_created`` event; its id."""
    ts = now_ms()
    mid = new_id()
    conn.execute(
        registered_models.insert().values(
            id=mid,
            name=name,
            kind=kind,
            description=description,
            created_at=ts,
            updated_at=ts,
            created_by=who,
        )
    )
    record_event(conn, mid, name, "model_created", who, detail)
    return mid


def version_rows(conn: Connection, model_id: str) -> list[Any]:
    """Every version row of a model, newest first."""
    return list(
        conn.execute(
            sa.select(model_versions)
            .where(model_versions.c.model_id == model_id)
            .order_by(model_versions.c.version.desc())
        )
    )


def newest_version(conn: Connection, model_id: str) -> int | None:
    newest = conn.execute(
        sa.select(sa.func.max(model_versions.c.version)).where(
            model_versions.c.model_id == model_id
        )
    ).scalar()
    return None if newest is None else int(newest)


def next_version(conn: Connection, model_id: str) -> int:
    """The number a new version of the model gets (the model row is locked by the caller)."""
    return (newest_version(conn, model_id) or 0) + 1


def touch_model(conn: Connection, model_id: str, ts: int) -> None:
    conn.execute(
        registered_models.update().where(registered_models.c.id == model_id).values(updated_at=ts)
    )
