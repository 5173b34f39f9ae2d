"""Deployment records over the database; one transaction per public call."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from opsloop.deployments._tables import deployments
from opsloop.deployments.entities import Deployment
from opsloop.errors import Conflict, InvalidArgument, NotFound
from opsloop.store import Database, now_ms

# How often a server heartbeats; a ``running`` row silent for LOST_AFTER intervals reads ``lost``.
HEARTBEAT_INTERVAL_S = 5.0
LOST_AFTER_INTERVALS = 3
STORED_STATUSES = ("running", "stopped", "failed")


def _text(value: Any, field: str, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise InvalidArgument(
            f"{field} must be a {'non-empty ' if required else ''}string of at most {limit} "
            "characters",
            details={"field": field},
        )
    return value


def _int32(value: Any, field: str, minimum: int) -> int:
    # The columns are 32-bit integers on every backend.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < 2**31:
        raise InvalidArgument(
            f"{field} must be an integer from {minimum} to {2**31 - 1}, got {value!r}",
            details={"field": field},
        )
    return value


class DeploymentService:
    """Register, heartbeat, stop and list model servers."""

    def __init__(self, db: Database, *, lost_after_s: float | None = None) -> None:
        self.db = db
        self.lost_after_ms = int(
            1000 * (lost_after_s or HEARTBEAT_INTERVAL_S * LOST_AFTER_INTERVALS)
        )

    def _entity(self, row: Any, now: int) -> Deployment:
        status = row.status
        if status == "running" and now - row.last_heartbeat_at > self.lost_after_ms:
            status = "lost"
        return Deployment(
            id=row.id,
            name=row.name,
            model_uri=row.model_uri,
            model_name=row.model_name,
            version=row.version,
            alias=row.alias,
            url=row.url,
            host=row.host or "",
            pid=row.pid,
            status=status,
            started_at=row.started_at,
            last_heartbeat_at=row.last_heartbeat_at,
            stopped_at=row.stopped_at,
            workers=row.workers,
            flavor=row.flavor,
        )

    def register(
        self,
        *,
        name: str,
        model_uri: str,
        model_name: str,
        url: str,
        version: int | None = None,
        alias: str | None = None,
        host: str = "",
        pid: int | None = None,
        workers: int = 1,
        flavor: str | None = None,
    ) -> Deployment:
        """Record a server that just started; it reads ``running`` until it stops or goes silent."""
        values = {
            "id": uuid.uuid4().hex,
            "name": _text(name, "name", 256),
            "model_uri": _text(model_uri, "model_uri", 1024),
            "model_name": _text(model_name, "model_name", 256),
            "url": _text(url, "url", 1024),
            "host": _text(host, "host", 256, required=False),
            "alias": None if alias is None else _text(alias, "alias", 256),
            "flavor": None if flavor is None else _text(flavor, "flavor", 64),
            "version": None if version is None else _int32(version, "version", 1),
            "pid": None if pid is None else _int32(pid, "pid", 0),
            "workers": _int32(workers, "workers", 1),
        }
        now = now_ms()
        values.update(status="running", started_at=now, last_heartbeat_at=now, stopped_at=None)
        with self.db.write() as conn:
            conn.execute(deployments.insert().values(**values))
            row = conn.execute(sa.select(deployments).where(deployments.c.id == values["id"])).one()
        return self._entity(row, now)

    def get(self, deployment_id: str) -> Deployment:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(deployments).where(deployments.c.id == deployment_id)
            ).first()
        if row is None:
            raise NotFound(f"deployment {deployment_id!r} not found")
        return self._entity(row, now_ms())

    def list(
        self, *, model_name: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[Deployment]:
        """Deployments newest first; ``status`` filters on the shown status (``lost`` included)."""
        if status is not None and status not in (*STORED_STATUSES, "lost"):
            raise InvalidArgument(f"unknown deployment status {status!r}")
        q = sa.select(deployments).order_by(deployments.c.started_at.desc(), deployments.c.id)
        if model_name:
            q = q.where(deployments.c.model_name == model_name)
        with self.db.read() as conn:
            rows = conn.execute(q.limit(max(1, min(limit, 10_000)))).all()
        now = now_ms()
        out = [self._entity(r, now) for r in rows]
        return [d for d in out if status is None or d.status == status]

    def heartbeat(
        self,
        deployment_id: str,
        *,
        version: int | None = None,
        model_uri: str | None = None,
        flavor: str | None = None,
    ) -> Deployment:
        """Note the server is alive, and which version it serves now (after an alias move)."""
        changes: dict[str, Any] = {"last_heartbeat_at": now_ms()}
        if version is not None:
            changes["version"] = _int32(version, "version", 1)
        if model_uri is not None:
            changes["model_uri"] = _text(model_uri, "model_uri", 1024)
        if flavor is not None:
            changes["flavor"] = _text(flavor, "flavor", 64)
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(deployments.c.status).where(deployments.c.id == deployment_id)
            ).first()
            if row is None:
                raise NotFound(f"deployment {deployment_id!r} not found")
            if row.status != "running":
                raise Conflict(
                    f"deployment {deployment_id!r} is {row.status}; it cannot heartbeat",
                    details={"status": row.status},
                )
            conn.execute(
                deployments.update().where(deployments.c.id == deployment_id).values(**changes)
            )
        return self.get(deployment_id)

    def stop(self, deployment_id: str, *, failed: bool = False) -> Deployment:
        """Mark the server stopped (or failed); stopping twice keeps the first stop."""
        now = now_ms()
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(deployments.c.status).where(deployments.c.id == deployment_id)
            ).first()
            if row is None:
                raise NotFound(f"deployment {deployment_id!r} not found")
            if row.status == "running":
                conn.execute(
                    deployments.update()
                    .where(deployments.c.id == deployment_id)
                    .values(status="failed" if failed else "stopped", stopped_at=now)
                )
        return self.get(deployment_id)
