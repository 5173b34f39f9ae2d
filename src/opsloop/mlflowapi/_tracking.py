"""MLflow's tracking calls over opsloop's tracking service: experiments, runs, metrics, models.

Each handler takes the server's ``Context`` and the request's ``Msg`` and
returns the response message as a dict; ``api.py`` routes and answers. What
MLflow keeps as reserved run tags, opsloop keeps as run columns:
``mlflow.runName`` is the run's name, ``mlflow.user`` its user,
``mlflow.parentRunId`` its parent and ``mlflow.note.content`` its notes (an
experiment's ``mlflow.note.content`` is its description). MLflow's experiment
``"0"`` is opsloop's ``Default`` experiment.

Logged models (MLflow 3) are in ``_logged_models.py``. Tags starting with
``opsloop.mlflow.`` are this room's bookkeeping (logged-model marks, dataset
inputs, model outputs) and are not shown to MLflow clients as tags.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from opsloop.core import Context
from opsloop.mlflowapi._experiments import (
    EXPERIMENT_HANDLERS,
    NOTE,
    experiment_id,
    experiment_json,
    svc,
)
from opsloop.mlflowapi._search import (
    run_filter,
    run_order_by,
)
from opsloop.mlflowapi._wire import (
    MlflowError,
    Msg,
    key_value_list,
    key_values,
    max_results,
    page_offset,
    page_token,
    to_float,
    to_int,
    view_type,
    wire_float,
)
from opsloop.tracking import (
    Run,
    RunStatus,
    TrackingService,
)

__all__ = ["HANDLERS", "experiment_json", "run_json", "svc"]

OWN = "opsloop.mlflow."
LOGGED_MODEL = OWN + "logged_model"
INPUT = OWN + "input."
OUTPUT = OWN + "output."

# MLflow's log-batch limits (mlflow/utils/validation.py).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_RESULTS_RUNS = 50_000

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


# ---------------------------------------------------------------------------- conversions


def run_artifact_uri(run: Run) -> str:
    return f"mlflow-artifacts:/{run.experiment_id}/{run.id}/artifacts"


def _run_tags(run: Run) -> tuple[dict[str, str], list[dict[str, Any]], list[dict[str, Any]]]:
    """(tags MLflow sees, dataset inputs, model outputs) of a run."""
    tags: dict[str, str] = {}
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for k, v in run.tags.items():
        if k.startswith(OWN):
            if k.startswith(INPUT):
                with contextlib.suppress(ValueError):
                    inputs.append(json.loads(v))
            elif k.startswith(OUTPUT):
                outputs.append({"model_id": k[len(OUTPUT) :], "step": to_int("step", v)})
            continue
        tags[k] = v
    tags["mlflow.runName"] = run.name
    if run.user:
        tags["mlflow.user"] = run.user
    if run.parent_run_id:
        tags["mlflow.parentRunId"] = run.parent_run_id
    if run.notes:
        tags[NOTE] = run.notes
    return tags, inputs, outputs


def run_info(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "user_id": run.user,
        "status": run.status.value,
        "start_time": run.start_time,
        "artifact_uri": run_artifact_uri(run),
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_json(run: Run) -> dict[str, Any]:
    tags, inputs, outputs = _run_tags(run)
    out: dict[str, Any] = {
        "info": run_info(run),
        "data": {
            "metrics": [
                {"key": k, "value": wire_float(m.value), "timestamp": m.timestamp, "step": m.step}
                for k, m in run.metrics.items()
            ],
            "params": key_value_list(run.params.items()),
            "tags": key_value_list(tags.items()),
        },
        "inputs": {"dataset_inputs": inputs},
    }
    if outputs:
        out["outputs"] = {"model_outputs": outputs}
    return out


# ---------------------------------------------------------------------------- runs


def _run_id(m: Msg) -> str:
    rid = m.text("run_id") or m.text("run_uuid")
    if not rid:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'."
        )
    return rid


def create_run(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    tags = dict(key_values(m.dicts("tags"), "tag"))
    name = m.text("run_name") or tags.pop("mlflow.runName", None)
    tags.pop("mlflow.runName", None)
    user = m.text("user_id") or tags.get("mlflow.user") or ""
    tags.pop("mlflow.user", None)
    parent = tags.pop("mlflow.parentRunId", None) or None
    notes = tags.pop(NOTE, "")
    run = s.create_run(
        experiment_id(s, m.text("experiment_id") or "0"),
        name=name,
        start_time=m.int64("start_time"),
        parent_run_id=parent,
        tags=tags,
        notes=notes,
        user=user,
    )
    return {"run": run_json(run)}


def get_run(ctx: Context, m: Msg) -> dict[str, Any]:
    return {"run": run_json(svc(ctx).get_run(_run_id(m)))}


def _status(v: Any) -> str:
    if isinstance(v, int) or (isinstance(v, str) and v.isdigit()):
        out = _STATUS_NUMBERS.get(int(v))
        if out is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid run status {v!r}")
        return out
    if not isinstance(v, str) or v.upper() not in RunStatus.__members__:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid run status {v!r}")
    return v.upper()


def update_run(ctx: Context, m: Msg) -> dict[str, Any]:
    status = m.data.get("status")
    run = svc(ctx).update_run(
        _run_id(m),
        status=None if status in (None, "") else _status(status),
        end_time=m.int64("end_time"),
        name=m.text("run_name"),
    )
    return {"run_info": run_info(run)}


def delete_run(ctx: Context, m: Msg) -> dict[str, Any]:
    svc(ctx).delete_run(_run_id(m))
    return {}


def restore_run(ctx: Context, m: Msg) -> dict[str, Any]:
    svc(ctx).restore_run(_run_id(m))
    return {}


def _metric_point(d: dict[str, Any]) -> tuple[str, float, int, int]:
    key = d.get("key")
    if not isinstance(key, str) or not key:
        raise MlflowError("INVALID_PARAMETER_VALUE", "every metric needs a non-empty 'key'")
    if "value" not in d:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"metric {key!r} has no value")
    v, step, ts = d["value"], d.get("step", 0), d.get("timestamp")
    if ts is None or ts == "":
        raise MlflowError("INVALID_PARAMETER_VALUE", f"metric {key!r} has no timestamp")
    # The common case (a JSON number each) without the general conversions.
    return (
        key,
        v if type(v) is float else to_float("value", v),
        step if type(step) is int and _I64_MIN <= step <= _I64_MAX else to_int("step", step),
        ts if type(ts) is int and _I64_MIN <= ts <= _I64_MAX else to_int("timestamp", ts),
    )


def _log(
    s: TrackingService,
    run_id: str,
    *,
    metrics: list[tuple[str, float, int, int]] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """One write; MLflow's reserved tags go to the run's columns."""
    tags = dict(tags or {})
    update: dict[str, Any] = {}
    if "mlflow.runName" in tags:
        update["name"] = _run_name(tags.pop("mlflow.runName"))
    if NOTE in tags:
        update["notes"] = tags.pop(NOTE)
    if tags.get("mlflow.user") is not None:
        tags.pop("mlflow.user")  # the run's user is set when it is created
    if metrics or params or tags:
        s.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    if update:
        s.update_run(run_id, **update)


def _run_name(name: str) -> str:
    """A run name checked before anything of its request is written."""
    if not name.strip() or len(name) > 256 or any(ord(c) < 32 for c in name):
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"Invalid run name {name[:60]!r}: 1-256 characters, no control characters",
        )
    return name


def log_metric(ctx: Context, m: Msg) -> dict[str, Any]:
    point = _metric_point(m.data)
    _log(svc(ctx), _run_id(m), metrics=[point])
    return {}


def log_param(ctx: Context, m: Msg) -> dict[str, Any]:
    _log(svc(ctx), _run_id(m), params={m.req("key"): m.text("value") or ""})
    return {}


def set_tag(ctx: Context, m: Msg) -> dict[str, Any]:
    _log(svc(ctx), _run_id(m), tags={m.req("key"): m.text("value") or ""})
    return {}


def delete_tag(ctx: Context, m: Msg) -> dict[str, Any]:
    svc(ctx).delete_tag(_run_id(m), m.req("key"))
    return {}


def log_batch(ctx: Context, m: Msg) -> dict[str, Any]:
    metrics, params, tags = m.dicts("metrics"), m.dicts("params"), m.dicts("tags")
    if len(metrics) > MAX_METRICS_PER_BATCH:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. "
            f"Got {len(metrics)} metrics. Please split up metrics across multiple requests "
            "and try again.",
        )
    for what, items in (("params", params), ("tags", tags)):
        if len(items) > MAX_PARAMS_TAGS_PER_BATCH:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"A batch logging request can contain at most {MAX_PARAMS_TAGS_PER_BATCH} "
                f"{what}. Got {len(items)} {what}. Please split up {what} across multiple "
                "requests and try again.",
            )
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_ENTITIES_PER_BATCH:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} total "
            f"metrics, params and tags. Got {total}.",
        )
    param_pairs = key_values(params, "param")
    param_map: dict[str, str] = {}
    for k, v in param_pairs:
        if k in param_map and param_map[k] != v:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Duplicate parameter keys have been submitted: [{k!r}]. Please ensure the "
                "request contains only one param value per param key.",
            )
        param_map[k] = v
    _log(
        svc(ctx),
        _run_id(m),
        metrics=[_metric_point(d) for d in metrics],
        params=param_map,
        tags=dict(key_values(tags, "tag")),
    )
    return {}


def _input_tag(item: dict[str, Any]) -> tuple[str, str]:
    ds = item.get("dataset")
    if not isinstance(ds, dict) or not ds.get("name"):
        raise MlflowError("INVALID_PARAMETER_VALUE", "every dataset input needs a named dataset")
    digest = str(ds.get("digest") or "")
    name = str(ds["name"])
    entry: dict[str, Any] = {
        "tags": [
            {"key": str(t.get("key")), "value": str(t.get("value", ""))}
            for t in item.get("tags") or []
            if isinstance(t, dict)
        ],
        "dataset": {
            k: str(ds[k])
            for k in ("name", "digest", "source_type", "source", "schema", "profile")
            if ds.get(k) is not None
        },
    }
    text = json.dumps(entry, separators=(",", ":"))
    for drop in ("profile", "schema", "source"):
        if len(text) <= 8000:
            break
        entry["dataset"].pop(drop, None)
        text = json.dumps(entry, separators=(",", ":"))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{name}.{digest}")[:200]
    return INPUT + safe, text[:8000]


def log_inputs(ctx: Context, m: Msg) -> dict[str, Any]:
    datasets = m.dicts("datasets")
    if len(datasets) > 1000:
        raise MlflowError("INVALID_PARAMETER_VALUE", "at most 1000 dataset inputs per request")
    tags = dict(_input_tag(d) for d in datasets)
    if tags:
        s = svc(ctx)
        rid = _run_id(m)
        for i in range(0, len(tags), MAX_PARAMS_TAGS_PER_BATCH):
            chunk = dict(list(tags.items())[i : i + MAX_PARAMS_TAGS_PER_BATCH])
            s.log_batch(rid, tags=chunk)
    return {}


def log_outputs(ctx: Context, m: Msg) -> dict[str, Any]:
    tags = {}
    for item in m.dicts("models"):
        mid = item.get("model_id")
        if not isinstance(mid, str) or not mid:
            raise MlflowError("INVALID_PARAMETER_VALUE", "every model output needs a model_id")
        tags[OUTPUT + mid] = str(to_int("step", item.get("step"), 0))
    if tags:
        svc(ctx).log_batch(_run_id(m), tags=tags)
    return {}


def search_runs(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    view = view_type(m, "run_view_type")
    limit = max_results(m, 1000, MAX_RESULTS_RUNS)
    flt = run_filter(m.text("filter"))
    ids = [experiment_id(s, str(e)) for e in m.values("experiment_ids")]
    page = s.search_runs(
        ids or None,
        filter=flt,
        order_by=run_order_by(m.values("order_by")),
        max_results=limit,
        page_token=m.text("page_token"),
        include_deleted=view != "ACTIVE_ONLY",
        with_total=False,
    )
    # Logged models' runs are left out here rather than in SQL (a NOT EXISTS per run
    # costs a third of the search): a page may hold fewer runs, its token stays exact.
    runs = [r for r in page.runs if LOGGED_MODEL not in r.tags]
    if view == "DELETED_ONLY":
        runs = [r for r in runs if r.lifecycle_stage == "deleted"]
    out: dict[str, Any] = {"runs": [run_json(r) for r in runs]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


def get_metric_history(ctx: Context, m: Msg) -> dict[str, Any]:
    rid = _run_id(m)
    key = m.req("metric_key")
    h = svc(ctx).get_metric_history(rid, key)
    start = page_offset(m.text("page_token"))
    limit = m.int64("max_results")
    end = len(h.steps) if limit is None else start + max(1, limit)
    points = [
        {"key": key, "value": wire_float(v), "timestamp": t, "step": st}
        for st, t, v in zip(
            h.steps[start:end], h.timestamps[start:end], h.values[start:end], strict=True
        )
    ]
    out: dict[str, Any] = {"metrics": points}
    if end < len(h.steps):
        out["next_page_token"] = page_token(end)
    return out


# ---------------------------------------------------------------------------- the routes

# (method, path under /api/2.0/mlflow) -> handler; {name} matches one path segment,
# {name:path} the rest of the path.
HANDLERS = {
    **EXPERIMENT_HANDLERS,
    ("POST", "/runs/create"): create_run,
    ("GET", "/runs/get"): get_run,
    ("POST", "/runs/update"): update_run,
    ("POST", "/runs/delete"): delete_run,
    ("POST", "/runs/restore"): restore_run,
    ("POST", "/runs/log-metric"): log_metric,
    ("POST", "/runs/log-parameter"): log_param,
    ("POST", "/runs/set-tag"): set_tag,
    ("POST", "/runs/delete-tag"): delete_tag,
    ("POST", "/runs/log-batch"): log_batch,
    ("POST", "/runs/log-inputs"): log_inputs,
    ("POST", "/runs/outputs"): log_outputs,
    ("POST", "/runs/search"): search_runs,
    ("GET", "/metrics/get-history"): get_metric_history,
}
