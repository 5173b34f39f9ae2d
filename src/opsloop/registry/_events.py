"""Ids and the change log: every registry write appends a ``registry_events`` row in its transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from opsloop.registry._tables import registry_events
from opsloop.store import now_ms

MAX_FILES = 100_000
MAX_LIST = 10_000


def new_id() -> str:
    return uuid.uuid4().hex


def record_event(
    conn: Connection,
    model_id: str,
    model_name: str,
    action: str,
    actor: str,
    detail: Mapping[str, Any] | None = None,
    *,
    version_id: str | None = None,
    version: int | None = None,
) -> None:
    conn.execute(
        registry_events.insert().values(
            model_id=model_id,
            model_name=model_name,
            version_id=version_id,
            version=version,
            action=action,
            detail_json=dict(detail or {}),
            actor=actor,
            at=now_ms(),
        )
    )
