"""Approvals: a protected alias moves only when a reviewer approves a request to move it.

An admin protects an alias of a registered model (``protect``), naming the
users who may approve besides admins and owners. From then on:

- moving it directly (``Registry.set_alias``, ``PUT .../aliases/{alias}``,
  the MLflow API) is refused with ``APPROVAL_REQUIRED``, and deleting it with
  ``ALIAS_PROTECTED``: the registry calls :func:`check_move` and
  :func:`check_delete` (its ``registry.alias_move`` and ``registry.alias_delete``
  hooks, declared in ``_room.py``) inside its transaction;
- ``request`` records a pending approval: who asked, the model, version and
  alias, and the promotion gate's result (the registry's dry run of the move,
  ``RegistryService.check_alias_move``), so the reviewer sees it. A failed
  gate refuses the request unless it is forced (then the failures are shown);
- ``approve`` (a named reviewer, an admin or an owner; never the requester)
  moves the alias through the registry with the approval's id: the hook marks
  the approval approved and appends the decision to the audit trail in the
  move's own transaction, so the alias, the approval and the trail change
  together or not at all (a gate that now fails refuses, and the request stays
  pending). ``reject`` records the refusal the same way.

Who the caller is comes from its token on a server with auth on; embedded,
the context's user acts as owner.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgument, NotFound
from opsloop.governance._audit import append_entry
from opsloop.governance._errors import (
    AliasNotProtected,
    AliasProtected,
    ApprovalNotPending,
    ApprovalRequired,
    NotAReviewer,
)
from opsloop.governance._tables import alias_protections, approvals
from opsloop.governance.entities import Approval, Protection
from opsloop.registry import AliasDelete, AliasMove, RegistryService, check_alias, check_model_name
from opsloop.store import Database, now_ms, upsert

__all__ = ["ApprovalService", "check_delete", "check_move"]

MAX_REVIEWERS = 100
MAX_TEXT = 2000
STATES = ("pending", "approved", "rejected")


@dataclass(frozen=True)
class _Decision:
    """Who decides, as the approvals API knows it, for the hook to record."""

    role: str | None
    token_id: str | None
    client: str
    comment: str


_deciding: contextvars.ContextVar[_Decision | None] = contextvars.ContextVar(
    "opsloop_approval_decision", default=None
)


def _text(value: Any, field: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidArgument(
            f"{field} must be a string of at most {limit} characters", details={"field": field}
        )
    return value


def _reviewers(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_REVIEWERS:
        raise InvalidArgument(
            f"reviewers must be a list of at most {MAX_REVIEWERS} user names",
            details={"field": "reviewers"},
        )
    out: list[str] = []
    for r in value:
        if not isinstance(r, str) or not r.strip() or len(r) > 256:
            raise InvalidArgument(
                "each reviewer must be a user name of 1-256 characters",
                details={"field": "reviewers"},
            )
        if r not in out:
            out.append(r)
    return out


def _protection(row: Any) -> Protection:
    return Protection(
        model=row.model_name,
        alias=row.alias,
        reviewers=json.loads(row.reviewers),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _approval(row: Any) -> Approval:
    return Approval(
        id=row.id,
        model=row.model_name,
        alias=row.alias,
        version=row.version,
        from_version=row.from_version,
        force=bool(row.force),
        note=row.note,
        state=row.state,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        gate=row.gate,
        gate_failures=json.loads(row.gate_failures),
        reviewers=json.loads(row.reviewers),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        comment=row.comment,
    )


def _load_protection(conn: Connection, model: str, alias: str) -> Protection | None:
    t = alias_protections
    row = conn.execute(sa.select(t).where(t.c.model_name == model, t.c.alias == alias)).first()
    return _protection(row) if row is not None else None


def _record(
    conn: Connection, approval: Approval, actor: str, event: str, decision: _Decision | None
) -> None:
    """The approval's step in the audit trail, in the transaction that makes it."""
    append_entry(
        conn,
        actor=actor,
        method="APPROVAL",
        path=f"/api/v1/approvals/{approval.id}",
        route=f"approval.{event}",
        status=201 if event == "requested" else 200,
        token_id=decision.token_id if decision else None,
        role=decision.role if decision else None,
        client=decision.client if decision else "",
        response=json.dumps(approval.model_dump(mode="json"), separators=(",", ":")),
    )


def _decide(conn: Connection, approval_id: str, state: str, actor: str) -> Approval:
    """Mark a pending approval decided (a concurrent decision finds it decided already)."""
    decision = _deciding.get()
    done = conn.execute(
        approvals.update()
        .where(approvals.c.id == approval_id, approvals.c.state == "pending")
        .values(
            state=state,
            pending_key=None,
            decided_by=actor,
            decided_at=now_ms(),
            comment=decision.comment if decision else "",
        )
    ).rowcount
    row = conn.execute(sa.select(approvals).where(approvals.c.id == approval_id)).first()
    if row is None:
        raise NotFound(f"no approval {approval_id!r}", details={"approval": approval_id})
    if not done:
        raise ApprovalNotPending(
            f"approval {approval_id} is {row.state} already",
            details={"approval": approval_id, "state": row.state},
        )
    found = _approval(row)
    _record(conn, found, actor, state, decision)
    return found


def check_move(move: AliasMove) -> None:
    """The ``registry.alias_move`` hook (declared in ``governance/_room.py``).

    A protected alias moves only with an approval: ``move.approval`` must name a
    pending request for this very move, by someone else than the actor; it is
    marked approved in the move's transaction. A dry run passes.
    """
    if move.dry_run:
        return None
    conn = move.connection
    protection = _load_protection(conn, move.model, move.alias)
    if move.approval is None:
        if protection is None:
            return None
        raise ApprovalRequired(
            f"{move.alias!r} of {move.model!r} is protected: it moves only when a reviewer "
            f"approves (request it with `opsloop approvals request {move.model} {move.alias} "
            f"{move.to_version.version}` or POST /api/v1/approvals)",
            details={
                "model": move.model,
                "alias": move.alias,
                "version": move.to_version.version,
                "reviewers": protection.reviewers,
            },
        )
    row = conn.execute(sa.select(approvals).where(approvals.c.id == move.approval)).first()
    if row is None:
        raise NotFound(f"no approval {move.approval!r}", details={"approval": move.approval})
    if (row.model_name, row.alias, row.version) != (
        move.model,
        move.alias,
        move.to_version.version,
    ):
        raise InvalidArgument(
            f"approval {row.id} is for {row.alias!r} of {row.model_name!r} to v{row.version}",
            details={"approval": row.id},
        )
    if row.requested_by == move.actor:
        raise NotAReviewer(
            f"{move.actor!r} asked for approval {row.id} and cannot approve it too",
            details={"approval": row.id},
        )
    _decide(conn, row.id, "approved", move.actor)
    return None


def check_delete(delete: AliasDelete) -> None:
    """The ``registry.alias_delete`` hook: a protected alias is not deleted."""
    if _load_protection(delete.connection, delete.model, delete.alias) is not None:
        raise AliasProtected(
            f"{delete.alias!r} of {delete.model!r} is protected: an admin lifts the protection "
            "before it can be deleted",
            details={"model": delete.model, "alias": delete.alias},
        )


class ApprovalService:
    """Protected aliases and the approvals that move them."""

    def __init__(self, db: Database, registry: RegistryService) -> None:
        self.db = db
        self.registry = registry

    # ------------------------------------------------------------------ protections

    def protect(
        self, model: str, alias: str, *, reviewers: list[str] | None = None, actor: str
    ) -> Protection:
        check_model_name(model)
        check_alias(alias)
        names = _reviewers(reviewers)
        ts = now_ms()
        row = {
            "model_name": model,
            "alias": alias,
            "reviewers": json.dumps(names),
            "updated_at": ts,
            "updated_by": actor,
        }
        with self.db.write() as conn:
            upsert(
                conn,
                alias_protections,
                [row],
                ["model_name", "alias"],
                ["reviewers", "updated_at", "updated_by"],
            )
        return Protection(
            model=model, alias=alias, reviewers=names, updated_at=ts, updated_by=actor
        )

    def unprotect(self, model: str, alias: str) -> None:
        t = alias_protections
        with self.db.write() as conn:
            n = conn.execute(t.delete().where(t.c.model_name == model, t.c.alias == alias))
        if not n.rowcount:
            raise NotFound(
                f"{alias!r} of {model!r} is not protected", details={"model": model, "alias": alias}
            )

    def protections(self, *, model: str | None = None) -> list[Protection]:
        t = alias_protections
        q = sa.select(t).order_by(t.c.model_name, t.c.alias)
        if model is not None:
            q = q.where(t.c.model_name == model)
        with self.db.read() as conn:
            return [_protection(r) for r in conn.execute(q)]

    # ------------------------------------------------------------------ approvals

    def request(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        actor: str,
        force: bool = False,
        note: str = "",
        role: str | None = None,
        token_id: str | None = None,
        client: str = "",
    ) -> Approval:
        """A pending approval to move ``alias`` to ``version``, with the gate's result."""
        check_model_name(model)
        check_alias(alias)
        note = _text(note, "note")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument("version must be a version number (1 or more)")
        with self.db.read() as conn:
            if _load_protection(conn, model, alias) is None:
                raise AliasNotProtected(
                    f"{alias!r} of {model!r} is not protected: move it directly",
                    details={"model": model, "alias": alias},
                )
        # The gate's result: the registry's dry run (a failed gate without force raises).
        checked = self.registry.check_alias_move(model, alias, version, actor=actor, force=force)
        found = Approval(
            id="apr_" + uuid.uuid4().hex[:16],
            model=checked.model,
            alias=alias,
            version=checked.version,
            from_version=checked.from_version,
            force=force,
            note=note,
            state="pending",
            requested_by=actor,
            requested_at=now_ms(),
            gate=checked.gate,  # type: ignore[arg-type]
            gate_failures=checked.failures,
            reviewers=[],
        )
        try:
            with self.db.write() as conn:
                found = self._insert(conn, found, actor, role, token_id, client)
        except sa.exc.IntegrityError:  # a request for the same alias committed meanwhile
            raise ApprovalNotPending(
                f"another request for {alias!r} of {model!r} is pending already",
                details={"model": model, "alias": alias},
            ) from None
        return found

    @staticmethod
    def _insert(
        conn: Connection,
        found: Approval,
        actor: str,
        role: str | None,
        token_id: str | None,
        client: str,
    ) -> Approval:
        protection = _load_protection(conn, found.model, found.alias)
        if protection is None:  # lifted since
            raise AliasNotProtected(f"{found.alias!r} of {found.model!r} is not protected")
        found = found.model_copy(update={"reviewers": protection.reviewers})
        pending = conn.execute(
            sa.select(approvals.c.id).where(approvals.c.pending_key == _key(found))
        ).scalar()
        if pending is not None:
            raise ApprovalNotPending(
                f"approval {pending} for {found.alias!r} of {found.model!r} is pending already: "
                "it is approved or rejected first",
                details={"approval": pending},
            )
        conn.execute(
            approvals.insert().values(
                id=found.id,
                model_name=found.model,
                alias=found.alias,
                version=found.version,
                from_version=found.from_version,
                force=found.force,
                note=found.note,
                state="pending",
                pending_key=_key(found),
                requested_by=actor,
                requested_at=found.requested_at,
                gate=found.gate,
                gate_failures=json.dumps(found.gate_failures),
                reviewers=json.dumps(found.reviewers),
                comment="",
            )
        )
        _record(conn, found, actor, "requested", _Decision(role, token_id, client, ""))
        return found

    def get(self, approval_id: str) -> Approval:
        with self.db.read() as conn:
            row = conn.execute(sa.select(approvals).where(approvals.c.id == approval_id)).first()
        if row is None:
            raise NotFound(f"no approval {approval_id!r}", details={"approval": approval_id})
        return _approval(row)

    def list(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        alias: str | None = None,
        limit: int = 100,
    ) -> list[Approval]:
        """Approvals newest first."""
        if state is not None and state not in STATES:
            raise InvalidArgument(f"state must be one of {', '.join(STATES)}")
        if not 1 <= limit <= 1000:
            raise InvalidArgument("limit must be from 1 to 1000", details={"field": "limit"})
        t = approvals
        q = sa.select(t).order_by(t.c.requested_at.desc(), t.c.id).limit(limit)
        if state is not None:
            q = q.where(t.c.state == state)
        if model is not None:
            q = q.where(t.c.model_name == model)
        if alias is not None:
            q = q.where(t.c.alias == alias)
        with self.db.read() as conn:
            return [_approval(r) for r in conn.execute(q)]

    def approve(
        self,
        approval_id: str,
        *,
        actor: str,
        role: str,
        comment: str = "",
        token_id: str | None = None,
        client: str = "",
    ) -> Approval:
        """Approve, moving the alias in the same transaction (the gate is checked again)."""
        found = self._reviewable(approval_id, actor, role)
        decision = _Decision(role, token_id, client, _text(comment, "comment"))
        with self._as(decision):
            self.registry.set_alias(
                found.model,
                found.alias,
                found.version,
                actor=actor,
                force=found.force,
                approval=found.id,
            )
        return self.get(approval_id)

    def reject(
        self,
        approval_id: str,
        *,
        actor: str,
        role: str,
        comment: str = "",
        token_id: str | None = None,
        client: str = "",
    ) -> Approval:
        self._reviewable(approval_id, actor, role)
        decision = _Decision(role, token_id, client, _text(comment, "comment"))
        with self._as(decision), self.db.write() as conn:
            return _decide(conn, approval_id, "rejected", actor)

    def _reviewable(self, approval_id: str, actor: str, role: str) -> Approval:
        found = self.get(approval_id)
        if found.state != "pending":
            raise ApprovalNotPending(
                f"approval {approval_id} is {found.state} already",
                details={"approval": approval_id, "state": found.state},
            )
        if actor == found.requested_by:
            raise NotAReviewer(
                f"{actor!r} asked for approval {approval_id} and cannot decide it",
                details={"approval": approval_id},
            )
        with self.db.read() as conn:
            protection = _load_protection(conn, found.model, found.alias)
        named = protection.reviewers if protection is not None else found.reviewers
        if role not in ("admin", "owner") and actor not in named:
            raise NotAReviewer(
                f"{actor!r} is not a reviewer of {found.alias!r} of {found.model!r} "
                "(a named reviewer, an admin or an owner decides)",
                details={"approval": approval_id, "reviewers": named},
            )
        return found

    @staticmethod
    @contextlib.contextmanager
    def _as(decision: _Decision) -> Iterator[None]:
        token = _deciding.set(decision)
        try:
            yield
        finally:
            _deciding.reset(token)


def _key(a: Approval) -> str:
    return f"{a.model}\n{a.alias}"
