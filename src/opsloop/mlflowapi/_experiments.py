"""MLflow's experiment calls over opsloop's tracking service.

MLflow's experiment ``"0"`` is opsloop's ``Default`` experiment, and an
experiment's ``mlflow.note.content`` tag is its description.
"""

from __future__ import annotations

import functools
from typing import Any

from opsloop.core import Context
from opsloop.errors import NotFound
from opsloop.mlflowapi._search import parse_conditions
from opsloop.mlflowapi._wire import (
    MlflowError,
    Msg,
    key_value_list,
    key_values,
    max_results,
    page_offset,
    page_token,
    view_type,
)
from opsloop.tracking import DEFAULT_EXPERIMENT, Experiment, TrackingService, tracking_service

__all__ = ["EXPERIMENT_HANDLERS", "NOTE", "experiment_id", "experiment_json", "svc"]

NOTE = "mlflow.note.content"
MAX_RESULTS_EXPERIMENTS = 50_000


def svc(ctx: Context) -> TrackingService:
    return ctx.room(tracking_service)


def experiment_json(e: Experiment) -> dict[str, Any]:
    tags = dict(e.tags)
    if e.description:
        tags[NOTE] = e.description
    return {
        "experiment_id": e.id,
        "name": e.name,
        "artifact_location": f"mlflow-artifacts:/{e.id}",
        "lifecycle_stage": e.lifecycle_stage,
        "last_update_time": e.updated_at,
        "creation_time": e.created_at,
        "tags": key_value_list(tags.items()),
    }


def experiment_id(s: TrackingService, eid: str) -> str:
    """MLflow's default experiment ``"0"`` is opsloop's ``Default`` (created when first used)."""
    if eid == "0":
        return s.get_or_create_experiment(DEFAULT_EXPERIMENT).id
    return eid


def create_experiment(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    tags = dict(key_values(m.dicts("tags"), "tag"))
    description = tags.pop(NOTE, "")
    e = s.create_experiment(m.req("name"), description, tags)
    return {"experiment_id": e.id}


def get_experiment(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    return {
        "experiment": experiment_json(s.get_experiment(experiment_id(s, m.req("experiment_id"))))
    }


def get_experiment_by_name(ctx: Context, m: Msg) -> dict[str, Any]:
    name = m.req("experiment_name")
    try:
        e = svc(ctx).get_experiment_by_name(name)
    except NotFound:
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'"
        ) from None
    return {"experiment": experiment_json(e)}


def search_experiments(ctx: Context, m: Msg) -> dict[str, Any]:
    view = view_type(m, "view_type")
    limit = max_results(m, 1000, MAX_RESULTS_EXPERIMENTS)
    conds = parse_conditions(m.text("filter"))
    exps = svc(ctx).list_experiments(include_deleted=view != "ACTIVE_ONLY")
    if view == "DELETED_ONLY":
        exps = [e for e in exps if e.lifecycle_stage == "deleted"]
    for c in conds:
        key = c.key.lower()
        if c.entity == "tag":
            exps = [e for e in exps if c.matches(experiment_tag(e, c.key))]
        elif c.entity == "attr" and key in (
            "name",
            "experiment_id",
            "creation_time",
            "last_update_time",
        ):
            exps = [e for e in exps if c.matches(_exp_attr(e, key))]
        else:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Invalid experiment filter on '{c.key}': use name, creation_time, "
                "last_update_time or tags.<key>",
            )
    order = m.values("order_by") or ["last_update_time DESC"]
    for clause in reversed(order):
        parts = str(clause).strip().split() or [""]
        field = parts[0].lower().removeprefix("attributes.").removeprefix("attribute.")
        desc = len(parts) > 1 and parts[1].lower() == "desc"
        if field not in ("name", "experiment_id", "creation_time", "last_update_time"):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause '{clause}'")
        exps.sort(key=functools.partial(_exp_attr, key=field), reverse=desc)
    start = page_offset(m.text("page_token"))
    page = exps[start : start + limit]
    out: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if start + limit < len(exps):
        out["next_page_token"] = page_token(start + limit)
    return out


def experiment_tag(e: Experiment, key: str) -> str | None:
    if key == NOTE:
        return e.description or None
    return e.tags.get(key)


def _exp_attr(e: Experiment, key: str) -> Any:
    return {
        "name": e.name,
        "experiment_id": e.id,
        "creation_time": e.created_at,
        "last_update_time": e.updated_at,
    }[key]


def update_experiment(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    s.update_experiment(experiment_id(s, m.req("experiment_id")), name=m.text("new_name"))
    return {}


def delete_experiment(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    s.delete_experiment(experiment_id(s, m.req("experiment_id")))
    return {}


def restore_experiment(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    s.restore_experiment(experiment_id(s, m.req("experiment_id")))
    return {}


def set_experiment_tag(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    eid = experiment_id(s, m.req("experiment_id"))
    key, value = m.req("key"), m.text("value") or ""
    if key == NOTE:
        s.update_experiment(eid, description=value)
    else:
        s.set_experiment_tag(eid, key, value)
    return {}


def delete_experiment_tag(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    eid = experiment_id(s, m.req("experiment_id"))
    key = m.req("key")
    if key == NOTE:
        if not s.get_experiment(eid).description:
            raise NotFound(f"No tag with name: {key} in experiment with id {eid}")
        s.update_experiment(eid, description="")
    else:
        s.delete_experiment_tag(eid, key)
    return {}


# (method, path under /api/2.0/mlflow) -> handler
EXPERIMENT_HANDLERS = {
    ("POST", "/experiments/create"): create_experiment,
    ("GET", "/experiments/get"): get_experiment,
    ("GET", "/experiments/get-by-name"): get_experiment_by_name,
    ("POST", "/experiments/search"): search_experiments,
    ("GET", "/experiments/search"): search_experiments,
    ("POST", "/experiments/update"): update_experiment,
    ("POST", "/experiments/delete"): delete_experiment,
    ("POST", "/experiments/restore"): restore_experiment,
    ("POST", "/experiments/set-experiment-tag"): set_experiment_tag,
    ("POST", "/experiments/delete-experiment-tag"): delete_experiment_tag,
}
