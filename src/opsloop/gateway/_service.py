"""Routes, teams, virtual keys and the usage log over the database; one transaction per call."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from opsloop.errors import InvalidArgument, NotFound, Unauthenticated
from opsloop.gateway._tables import gateway_keys, gateway_routes, gateway_teams, gateway_usage
from opsloop.gateway.entities import (
    CreatedKey,
    Limits,
    Route,
    RouteSpec,
    Team,
    UsageReport,
    UsageRow,
    VirtualKey,
    check_name,
)
from opsloop.store import Database, now_ms, upsert

__all__ = ["KEY_PREFIX", "GatewayService", "hash_secret"]

KEY_PREFIX = "sk-ogw-"
GROUPS = {"key": "key_id", "team": "team", "route": "route", "model": "model", "none": None}
BUCKETS = {"hour": 3_600_000, "day": 86_400_000}


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret (SHA-256 hex; the secret has 256 random bits)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _name(value: Any, what: str) -> str:
    try:
        return check_name(value, what)
    except ValueError as exc:
        raise InvalidArgument(str(exc), details={"field": what}) from None


def _validated(model: Any, data: Any, what: str) -> Any:
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or what
        raise InvalidArgument(
            f"invalid {what}: {loc}: {first.get('msg', 'invalid')}", details={"field": loc}
        ) from None


def _route(row: Any) -> Route:
    return Route(name=row.name, created_at=row.created_at, updated_at=row.updated_at, **row.spec)


def _key(row: Any) -> VirtualKey:
    return VirtualKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        team=row.team,
        owner=row.owner or "",
        routes=list(row.routes),
        limits=Limits.model_validate(row.limits),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class GatewayService:
    """The gateway's stored configuration (routes, teams, keys) and its usage log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- routes ---------------------------------------------------------------------

    def set_route(self, name: str, spec: RouteSpec | dict[str, Any], *, actor: str = "") -> Route:
        """Create or replace the route ``name`` (the ``model`` clients send)."""
        name = _name(name, "route name")
        spec = _validated(RouteSpec, spec, "route")
        assert isinstance(spec, RouteSpec)
        if name in spec.fallbacks:
            raise InvalidArgument(
                "a route cannot fall back to itself", details={"field": "fallbacks"}
            )
        now = now_ms()
        data = spec.model_dump(mode="json")
        with self.db.write() as conn:
            old = conn.execute(
                sa.select(gateway_routes.c.created_at).where(gateway_routes.c.name == name)
            ).first()
            created = int(old.created_at) if old else now
            row = {
                "name": name,
                "spec": data,
                "created_at": created,
                "updated_at": now,
                "updated_by": actor[:256],
            }
            upsert(conn, gateway_routes, [row], ["name"], ["spec", "updated_at", "updated_by"])
        return Route(name=name, created_at=created, updated_at=now, **data)

    def get_route(self, name: str) -> Route:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(gateway_routes).where(gateway_routes.c.name == name)
            ).first()
        if row is None:
            raise NotFound(f"gateway route {name!r} not found", details={"route": name})
        return _route(row)

    def list_routes(self) -> list[Route]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(gateway_routes).order_by(gateway_routes.c.name)).all()
        return [_route(r) for r in rows]

    def delete_route(self, name: str) -> None:
        with self.db.write() as conn:
            n = conn.execute(gateway_routes.delete().where(gateway_routes.c.name == name)).rowcount
        if not n:
            raise NotFound(f"gateway route {name!r} not found", details={"route": name})

    # -- teams ----------------------------------------------------------------------

    def set_team(self, name: str, limits: Limits | dict[str, Any]) -> Team:
        name = _name(name, "team name")
        limits = _validated(Limits, limits, "limits")
        assert isinstance(limits, Limits)
        now = now_ms()
        with self.db.write() as conn:
            old = conn.execute(
                sa.select(gateway_teams.c.created_at).where(gateway_teams.c.name == name)
            ).first()
            created = old.created_at if old else now
            row = {
                "name": name,
                "limits": limits.model_dump(),
                "created_at": created,
                "updated_at": now,
            }
            upsert(conn, gateway_teams, [row], ["name"], ["limits", "updated_at"])
        return Team(name=name, limits=limits, created_at=created, updated_at=now)

    def get_team(self, name: str) -> Team:
        with self.db.read() as conn:
            row = conn.execute(sa.select(gateway_teams).where(gateway_teams.c.name == name)).first()
        if row is None:
            raise NotFound(f"gateway team {name!r} not found", details={"team": name})
        return Team(
            name=row.name,
            limits=Limits.model_validate(row.limits),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def list_teams(self) -> list[Team]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(gateway_teams).order_by(gateway_teams.c.name)).all()
        return [
            Team(
                name=r.name,
                limits=Limits.model_validate(r.limits),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]

    # -- keys -----------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        *,
        routes: list[str] | None = None,
        team: str | None = None,
        owner: str = "",
        limits: Limits | dict[str, Any] | None = None,
        expires_at: int | None = None,
    ) -> CreatedKey:
        """A new virtual key; its secret is in the answer only (the store keeps its hash).

        ``routes``: the route names it may call (``["*"]``: every route; default none).
        ``team``: a team whose limits it shares (created with no limits if new).
        """
        name = _name(name, "key name")
        scopes = [r if r == "*" else _name(r, "route") for r in (routes or [])]
        if len(scopes) > 256:
            raise InvalidArgument("a key names at most 256 routes", details={"field": "routes"})
        if team is not None:
            team = _name(team, "team")
        if not isinstance(owner, str) or len(owner) > 256:
            raise InvalidArgument("owner is a string of at most 256 characters")
        lim = _validated(Limits, limits or {}, "limits")
        now = now_ms()
        if expires_at is not None and (
            isinstance(expires_at, bool)
            or not isinstance(expires_at, int)
            or expires_at <= now
            or expires_at >= 2**62
        ):
            raise InvalidArgument(
                "expires_at is a time in the future (ms since the epoch)",
                details={"field": "expires_at"},
            )
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = {
            "id": uuid.uuid4().hex,
            "name": name,
            "secret_hash": hash_secret(secret),
            "prefix": secret[: len(KEY_PREFIX) + 6],
            "team": team,
            "owner": owner,
            "routes": scopes,
            "limits": lim.model_dump(),
            "created_at": now,
            "expires_at": expires_at,
            "revoked_at": None,
        }
        with self.db.write() as conn:
            if team is not None:
                exists = conn.execute(
                    sa.select(gateway_teams.c.name).where(gateway_teams.c.name == team)
                ).first()
                if exists is None:
                    conn.execute(
                        gateway_teams.insert().values(
                            name=team, limits=Limits().model_dump(), created_at=now, updated_at=now
                        )
                    )
            conn.execute(gateway_keys.insert().values(**row))
        return CreatedKey(key=_key(_Obj(row)), secret=secret)

    def get_key(self, key_id: str) -> VirtualKey:
        with self.db.read() as conn:
            row = conn.execute(sa.select(gateway_keys).where(gateway_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"gateway key {key_id!r} not found", details={"key": key_id})
        return _key(row)

    def list_keys(self, *, team: str | None = None) -> list[VirtualKey]:
        q = sa.select(gateway_keys).order_by(gateway_keys.c.created_at.desc(), gateway_keys.c.id)
        if team is not None:
            q = q.where(gateway_keys.c.team == team)
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        return [_key(r) for r in rows]

    def revoke_key(self, key_id: str) -> VirtualKey:
        """Revoke a key (revoking twice keeps the first time)."""
        with self.db.write() as conn:
            row = conn.execute(sa.select(gateway_keys).where(gateway_keys.c.id == key_id)).first()
            if row is None:
                raise NotFound(f"gateway key {key_id!r} not found", details={"key": key_id})
            if row.revoked_at is None:
                conn.execute(
                    gateway_keys.update()
                    .where(gateway_keys.c.id == key_id)
                    .values(revoked_at=now_ms())
                )
        return self.get_key(key_id)

    def set_key_limits(self, key_id: str, limits: Limits | dict[str, Any]) -> VirtualKey:
        lim = _validated(Limits, limits, "limits")
        with self.db.write() as conn:
            n = conn.execute(
                gateway_keys.update()
                .where(gateway_keys.c.id == key_id)
                .values(limits=lim.model_dump())
            ).rowcount
        if not n:
            raise NotFound(f"gateway key {key_id!r} not found", details={"key": key_id})
        return self.get_key(key_id)

    def authenticate(self, secret: str) -> tuple[VirtualKey, Limits | None]:
        """The live key whose secret this is, and its team's limits; ``Unauthenticated`` else."""
        if not isinstance(secret, str) or not secret.startswith(KEY_PREFIX) or len(secret) > 200:
            raise Unauthenticated("no valid gateway key (send Authorization: Bearer sk-ogw-...)")
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(gateway_keys).where(gateway_keys.c.secret_hash == hash_secret(secret))
            ).first()
            team = None
            if row is not None and row.team is not None:
                t = conn.execute(
                    sa.select(gateway_teams.c.limits).where(gateway_teams.c.name == row.team)
                ).first()
                team = Limits.model_validate(t.limits) if t else Limits()
        if row is None:
            raise Unauthenticated("unknown gateway key", details={"reason": "unknown"})
        key = _key(row)
        if key.revoked_at is not None:
            raise Unauthenticated(
                f"gateway key {key.prefix}... is revoked", details={"reason": "revoked"}
            )
        if key.expires_at is not None and key.expires_at <= now_ms():
            raise Unauthenticated(
                f"gateway key {key.prefix}... has expired", details={"reason": "expired"}
            )
        return key, team

    # -- usage ----------------------------------------------------------------------

    def record_usage(self, rows: list[dict[str, Any]]) -> None:
        """Append rows to the usage log (one transaction)."""
        if rows:
            with self.db.write() as conn:
                conn.execute(gateway_usage.insert(), rows)

    def usage_log(
        self, *, key_id: str | None = None, since: int | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        q = sa.select(gateway_usage).order_by(gateway_usage.c.ts.desc(), gateway_usage.c.id)
        if key_id is not None:
            q = q.where(gateway_usage.c.key_id == key_id)
        if since is not None:
            q = q.where(gateway_usage.c.ts >= since)
        with self.db.read() as conn:
            rows = conn.execute(q.limit(max(1, min(limit, 100_000)))).all()
        return [dict(r._mapping) for r in rows]

    def usage(
        self,
        *,
        group_by: str = "key",
        bucket: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> UsageReport:
        """Requests, errors, tokens, cost and cache hits per key, team, route or model
        (``group_by``), optionally per ``hour`` or ``day`` (``bucket``)."""
        if group_by not in GROUPS:
            raise InvalidArgument(
                f"group_by is one of {', '.join(GROUPS)}", details={"field": "group_by"}
            )
        if bucket is not None and bucket not in BUCKETS:
            raise InvalidArgument("bucket is hour or day", details={"field": "bucket"})
        u = gateway_usage.c
        col = GROUPS[group_by]
        group_col = getattr(u, col) if col else sa.null()
        cols: list[Any] = [group_col.label("g")]
        if bucket is not None:
            width = BUCKETS[bucket]
            cols.append((u.ts - (u.ts % width)).label("b"))
        cols += [
            sa.func.count().label("requests"),
            sa.func.sum(sa.case((u.status >= 400, 1), else_=0)).label("errors"),
            sa.func.coalesce(sa.func.sum(u.input_tokens), 0).label("inp"),
            sa.func.coalesce(sa.func.sum(u.output_tokens), 0).label("outp"),
            sa.func.coalesce(sa.func.sum(u.cost_micros), 0).label("cost"),
            sa.func.sum(sa.case((u.cache == "hit", 1), else_=0)).label("hits"),
        ]
        q = sa.select(*cols)
        if since is not None:
            q = q.where(u.ts >= since)
        if until is not None:
            q = q.where(u.ts < until)
        groups = (["g"] if col else []) + (["b"] if bucket else [])
        if groups:
            q = q.group_by(*[sa.text(g) for g in groups]).order_by(*[sa.text(g) for g in groups])
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        out = [
            UsageRow(
                group=None if r.g is None else str(r.g),
                bucket=int(r.b) if bucket is not None and r.b is not None else None,
                requests=int(r.requests),
                errors=int(r.errors or 0),
                input_tokens=int(r.inp),
                output_tokens=int(r.outp),
                cost_usd=int(r.cost) / 1e6,
                cache_hits=int(r.hits or 0),
            )
            for r in rows
            if r.requests
        ]
        return UsageReport(group_by=group_by, bucket=bucket, since=since, until=until, rows=out)


class _Obj:
    """Attribute access over a dict (a row just inserted)."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
