"""Promotion gates: a stored policy per registered model, checked when an alias moves.

The registry's ``set_alias`` calls :func:`check_alias_move` (its
``registry.alias_move`` hook, declared in ``_room.py``) inside its write
transaction, so REST, SDK and CLI are all gated the same way and a refused
move changes nothing. A candidate version's metrics are its source run's
latest metrics, overlaid by its newest finished evaluation run (a run tagged
``opsloop.eval.model`` / ``opsloop.eval.model_version``, see ``evaluate``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgument, NotFound, PromotionRefused
from opsloop.evaluation._compare import _metric_obj
from opsloop.evaluation._entities import GatePolicy, GateRule, RuleOutcome
from opsloop.evaluation._tables import promotion_gates
from opsloop.registry import AliasMove, check_alias, check_model_name
from opsloop.store import Database, now_ms, upsert
from opsloop.tracking.tables import latest_metrics, run_tags, runs

MAX_RULES = 100
CURRENT = "current"  # min_delta_vs: the version holding the alias being moved


def parse_rules(rules: Any) -> list[GateRule]:
    if isinstance(rules, Mapping):
        rules = [rules]
    if not isinstance(rules, Sequence) or isinstance(rules, str) or not rules:
        raise InvalidArgument("rules must be a non-empty list of rule objects")
    if len(rules) > MAX_RULES:
        raise InvalidArgument(f"at most {MAX_RULES} rules per gate")
    out = []
    for i, r in enumerate(rules):
        if isinstance(r, GateRule):
            out.append(r)
            continue
        try:
            out.append(GateRule.model_validate(r))
        except Exception as exc:
            raise InvalidArgument(f"rule {i} is not valid: {exc}", details={"rule": i}) from None
    return out


class GateService:
    """Gate policies in the database (one row per model name)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def set_gate(
        self,
        model: str,
        rules: Any,
        *,
        aliases: Sequence[str] | None = None,
        actor: str = "",
    ) -> GatePolicy:
        check_model_name(model)
        parsed = parse_rules(rules)
        if aliases is not None:
            aliases = [check_alias(a) for a in aliases]
        ts = now_ms()
        row: dict[str, Any] = {
            "model_name": model,
            "rules_json": [r.model_dump(exclude_none=True) for r in parsed],
            "aliases_json": list(aliases) if aliases is not None else None,
            "updated_at": ts,
            "updated_by": actor,
        }
        with self.db.write() as conn:
            upsert(
                conn,
                promotion_gates,
                [row],
                ["model_name"],
                ["rules_json", "aliases_json", "updated_at", "updated_by"],
            )
        return GatePolicy(
            model=model,
            rules=parsed,
            aliases=list(aliases) if aliases is not None else None,
            updated_at=ts,
            updated_by=actor,
        )

    def get_gate(self, model: str) -> GatePolicy:
        with self.db.read() as conn:
            policy = load_policy(conn, model)
        if policy is None:
            raise NotFound(f"model {model!r} has no promotion gate", details={"model": model})
        return policy

    def delete_gate(self, model: str) -> None:
        with self.db.write() as conn:
            n = conn.execute(
                promotion_gates.delete().where(promotion_gates.c.model_name == model)
            ).rowcount
        if not n:
            raise NotFound(f"model {model!r} has no promotion gate", details={"model": model})


def load_policy(conn: Connection, model: str) -> GatePolicy | None:
    r = conn.execute(
        sa.select(promotion_gates).where(promotion_gates.c.model_name == model)
    ).first()
    if r is None:
        return None
    return GatePolicy(
        model=r.model_name,
        rules=[GateRule.model_validate(x) for x in r.rules_json],
        aliases=r.aliases_json,
        updated_at=r.updated_at,
        updated_by=r.updated_by,
    )


def version_metrics(
    conn: Connection, model: str, version: int, source_run_id: str | None
) -> dict[str, float]:
    """Source run metrics, overlaid by the newest finished evaluation run of this version."""

    def metrics_of(run_id: str) -> dict[str, float]:
        rows = conn.execute(
            sa.select(latest_metrics.c.key, latest_metrics.c.value).where(
                latest_metrics.c.run_id == run_id
            )
        )
        return {k: float(v) for k, v in rows if v is not None}

    out: dict[str, float] = {}
    if source_run_id:
        out.update(metrics_of(source_run_id))
    t_model = run_tags.alias("t_model")
    t_version = run_tags.alias("t_version")
    newest = conn.execute(
        sa.select(runs.c.id)
        .join(
            t_model, sa.and_(t_model.c.run_id == runs.c.id, t_model.c.key == "opsloop.eval.model")
        )
        .join(
            t_version,
            sa.and_(
                t_version.c.run_id == runs.c.id, t_version.c.key == "opsloop.eval.model_version"
            ),
        )
        .where(
            t_model.c.value == model,
            t_version.c.value == str(version),
            runs.c.status == "FINISHED",
            runs.c.lifecycle_stage == "active",
        )
        .order_by(runs.c.start_time.desc(), runs.c.id.desc())
        .limit(1)
    ).scalar()
    if newest is not None:
        out.update(metrics_of(newest))
    return out


def _greater_is_better(rule: GateRule) -> bool:
    if rule.greater_is_better is not None:
        return rule.greater_is_better
    if rule.metric.startswith(("latency", "cost", "error_rate")):
        return False
    m = _metric_obj(rule.metric)
    return True if m is None else bool(m.greater_is_better)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def evaluate_rules(
    rules: Sequence[GateRule],
    candidate: Mapping[str, float],
    references: Mapping[str, tuple[int, Mapping[str, float]] | None],
) -> list[RuleOutcome]:
    """Each rule's outcome; ``references[alias]`` is ``(version, metrics)`` of the alias holder."""
    out = []
    for rule in rules:
        actual = candidate.get(rule.metric)
        d = rule.model_dump(exclude_none=True)
        if actual is None or not math.isfinite(actual):
            out.append(
                RuleOutcome(
                    rule=d,
                    metric=rule.metric,
                    passed=False,
                    actual=None,
                    required=None,
                    message=f"{rule.metric}: the candidate has no value for this metric",
                )
            )
            continue
        if rule.max is not None:
            ok = actual <= rule.max
            out.append(_bound(rule, d, actual, rule.max, ok, "above the max"))
        if rule.min is not None:
            ok = actual >= rule.min
            out.append(_bound(rule, d, actual, rule.min, ok, "below the min"))
        if rule.min_delta_vs is not None:
            out.append(_delta(rule, d, actual, references.get(rule.min_delta_vs)))
    return out


def _bound(
    rule: GateRule, d: dict[str, Any], actual: float, bound: float, ok: bool, word: str
) -> RuleOutcome:
    short = None if ok else abs(actual - bound)
    msg = (
        f"{rule.metric} {_fmt(actual)} is within {_fmt(bound)}"
        if ok
        else f"{rule.metric} {_fmt(actual)} is {word} {_fmt(bound)} by {_fmt(short or 0.0)}"
    )
    return RuleOutcome(
        rule=d, metric=rule.metric, passed=ok, actual=actual, required=bound, shortfall=short,
        message=msg,
    )  # fmt: skip


def _delta(
    rule: GateRule,
    d: dict[str, Any],
    actual: float,
    ref: tuple[int, Mapping[str, float]] | None,
) -> RuleOutcome:
    vs = rule.min_delta_vs
    if ref is None:
        return RuleOutcome(
            rule=d, metric=rule.metric, passed=True, actual=actual, required=None,
            message=f"{rule.metric}: no version holds {vs!r} yet, nothing to compare with",
        )  # fmt: skip
    version, metrics = ref
    base = metrics.get(rule.metric)
    if base is None or not math.isfinite(base):
        return RuleOutcome(
            rule=d, metric=rule.metric, passed=True, actual=actual, required=None,
            reference_version=version,
            message=f"{rule.metric}: {vs} v{version} has no value for it, nothing to compare with",
        )  # fmt: skip
    gib = _greater_is_better(rule)
    required = base - rule.tolerance if gib else base + rule.tolerance
    ok = actual >= required if gib else actual <= required
    short = None if ok else abs(required - actual)
    word = "below" if gib else "above"
    msg = (
        f"{rule.metric} {_fmt(actual)} vs {vs} v{version} {_fmt(base)} "
        f"(tolerance {_fmt(rule.tolerance)}): ok"
        if ok
        else f"{rule.metric} {_fmt(actual)} is {word} {vs} v{version}'s {_fmt(base)} "
        f"{'-' if gib else '+'} tolerance {_fmt(rule.tolerance)} = {_fmt(required)} "
        f"by {_fmt(short or 0.0)}"
    )
    return RuleOutcome(
        rule=d, metric=rule.metric, passed=ok, actual=actual, required=required, shortfall=short,
        reference_version=version, reference_value=base, message=msg,
    )  # fmt: skip


def check_alias_move(move: AliasMove) -> list[dict[str, Any]] | None:
    """The ``registry.alias_move`` hook (declared in ``evaluation/_room.py``).

    None when no gate applies to ``move.alias``; else the failed rules (empty:
    all passed). Failed rules refuse the move (``PromotionRefused``) unless
    ``move.force``, when they are returned for the registry to record.
    """
    conn = move.connection
    policy = load_policy(conn, move.model)
    if policy is None or (policy.aliases is not None and move.alias not in policy.aliases):
        return None
    target = move.to_version
    cand = version_metrics(conn, move.model, target.version, target.source_run_id)
    refs: dict[str, tuple[int, Mapping[str, float]] | None] = {}
    for rule in policy.rules:
        vs = rule.min_delta_vs
        if vs is None or vs in refs:
            continue
        holder = move.from_version if vs in (CURRENT, move.alias) else move.holder(vs)
        refs[vs] = (
            None
            if holder is None
            else (
                holder.version,
                version_metrics(conn, move.model, holder.version, holder.source_run_id),
            )
        )
    outcomes = evaluate_rules(policy.rules, cand, refs)
    failed = [o for o in outcomes if not o.passed]
    if failed and not move.force:
        raise refusal(move.model, move.alias, target.version, outcomes)
    return [o.model_dump() for o in failed]


def refusal(model: str, alias: str, version: int, outcomes: list[RuleOutcome]) -> PromotionRefused:
    failed = [o for o in outcomes if not o.passed]
    text = "; ".join(o.message for o in failed)
    return PromotionRefused(
        f"moving {alias!r} of {model!r} to v{version} was refused by its promotion gate: {text} "
        "(pass force to override; the override is recorded)",
        details={
            "model": model,
            "alias": alias,
            "version": version,
            "failures": [o.model_dump() for o in failed],
        },
    )
