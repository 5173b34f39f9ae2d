"""MLflow 3's logged models (``LoggedModel``, what ``log_model`` creates) over opsloop runs.

A logged model is an opsloop run in the same experiment, a child of the run
that logged it, tagged ``opsloop.mlflow.logged_model``: its params, tags and
artifacts are the run's, its status the run's status, and it shows in
opsloop's UI under its source run. Its id is ``m-<run id>``.
"""

from __future__ import annotations

from typing import Any

from opsloop.core import Context
from opsloop.errors import NotFound
from opsloop.mlflowapi._experiments import experiment_id, svc
from opsloop.mlflowapi._search import logged_model_filter
from opsloop.mlflowapi._tracking import LOGGED_MODEL, MAX_RESULTS_RUNS, OWN
from opsloop.mlflowapi._wire import MlflowError, Msg, key_value_list, key_values, max_results
from opsloop.tracking import Run

__all__ = ["HANDLERS", "MODEL_PREFIX", "logged_model_uri", "model_run_id"]

_MODEL_STATUS = {
    "RUNNING": "LOGGED_MODEL_PENDING",
    "SCHEDULED": "LOGGED_MODEL_PENDING",
    "FINISHED": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
    "KILLED": "LOGGED_MODEL_UPLOAD_FAILED",
}
_MODEL_STATUS_IN = {
    "LOGGED_MODEL_PENDING": "RUNNING",
    "LOGGED_MODEL_READY": "FINISHED",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
    "1": "RUNNING",
    "2": "FINISHED",
    "3": "FAILED",
}
MODEL_TYPE = OWN + "model_type"


MODEL_PREFIX = "m-"


def model_run_id(model_id: str) -> str:
    if not model_id.startswith(MODEL_PREFIX):
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found."
        )
    return model_id[len(MODEL_PREFIX) :]


def logged_model_uri(run: Run) -> str:
    return f"mlflow-artifacts:/{run.experiment_id}/models/{MODEL_PREFIX}{run.id}/artifacts"


def logged_model_json(run: Run) -> dict[str, Any]:
    tags = {k: v for k, v in run.tags.items() if not k.startswith(OWN)}
    if run.user:
        tags["mlflow.user"] = run.user
    info: dict[str, Any] = {
        "model_id": MODEL_PREFIX + run.id,
        "experiment_id": run.experiment_id,
        "name": run.name,
        "creation_timestamp_ms": run.start_time,
        "last_updated_timestamp_ms": run.end_time or run.start_time,
        "artifact_uri": logged_model_uri(run),
        "status": _MODEL_STATUS[run.status.value],
        "tags": key_value_list(tags.items()),
    }
    if run.tags.get(MODEL_TYPE):
        info["model_type"] = run.tags[MODEL_TYPE]
    if run.parent_run_id:
        info["source_run_id"] = run.parent_run_id
    return {"info": info, "data": {"params": key_value_list(run.params.items()), "metrics": []}}


def _model_run(ctx: Context, model_id: str, *, allow_deleted: bool = False) -> Run:
    try:
        run = svc(ctx).get_run(model_run_id(model_id))
    except (NotFound, MlflowError):
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found."
        ) from None
    if LOGGED_MODEL not in run.tags or (run.lifecycle_stage != "active" and not allow_deleted):
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found."
        )
    return run


def create_logged_model(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    tags = dict(key_values(m.dicts("tags"), "tag"))
    params = dict(key_values(m.dicts("params"), "param"))
    user = tags.pop("mlflow.user", "")
    tags[LOGGED_MODEL] = "1"
    if m.text("model_type"):
        tags[MODEL_TYPE] = m.req("model_type")
    run = s.create_run(
        experiment_id(s, m.text("experiment_id") or "0"),
        name=m.text("name") or "model",
        parent_run_id=m.text("source_run_id"),
        tags=tags,
        params=params,
        user=user,
    )
    return {"model": logged_model_json(run)}


def get_logged_model(ctx: Context, m: Msg) -> dict[str, Any]:
    run = _model_run(ctx, m.req("model_id"), allow_deleted=m.flag("allow_deleted"))
    return {"model": logged_model_json(run)}


def finalize_logged_model(ctx: Context, m: Msg) -> dict[str, Any]:
    run = _model_run(ctx, m.req("model_id"))
    raw = m.text("status", required=True)
    status = _MODEL_STATUS_IN.get(str(raw).upper())
    if status is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid logged model status {raw!r}")
    run = svc(ctx).update_run(run.id, status=status)
    return {"model": logged_model_json(run)}


def delete_logged_model(ctx: Context, m: Msg) -> dict[str, Any]:
    run = _model_run(ctx, m.req("model_id"))
    svc(ctx).delete_run(run.id)
    return {}


def set_logged_model_tags(ctx: Context, m: Msg) -> dict[str, Any]:
    run = _model_run(ctx, m.req("model_id"))
    tags = dict(key_values(m.dicts("tags"), "tag"))
    if tags:
        svc(ctx).log_batch(run.id, tags=tags)
    return {}


def delete_logged_model_tag(ctx: Context, m: Msg) -> dict[str, Any]:
    run = _model_run(ctx, m.req("model_id"))
    svc(ctx).delete_tag(run.id, m.req("tag_key"))
    return {}


def log_logged_model_params(ctx: Context, m: Msg) -> dict[str, Any]:
    run = _model_run(ctx, m.req("model_id"))
    params = dict(key_values(m.dicts("params"), "param"))
    if params:
        svc(ctx).log_batch(run.id, params=params)
    return {}


def search_logged_models(ctx: Context, m: Msg) -> dict[str, Any]:
    s = svc(ctx)
    flt = f'tags.`{LOGGED_MODEL}` = "1"'
    extra = logged_model_filter(m.text("filter"))
    if extra:
        flt = f"({extra}) and {flt}"
    ids = [experiment_id(s, str(e)) for e in m.values("experiment_ids")]
    page = s.search_runs(
        ids or None,
        filter=flt,
        max_results=max_results(m, 100, MAX_RESULTS_RUNS),
        page_token=m.text("page_token"),
        with_total=False,
    )
    out: dict[str, Any] = {"models": [logged_model_json(r) for r in page.runs]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


# (method, path under /api/2.0/mlflow) -> handler
HANDLERS = {
    ("POST", "/logged-models"): create_logged_model,
    ("POST", "/logged-models/search"): search_logged_models,
    ("GET", "/logged-models/{model_id}"): get_logged_model,
    ("PATCH", "/logged-models/{model_id}"): finalize_logged_model,
    ("DELETE", "/logged-models/{model_id}"): delete_logged_model,
    ("PATCH", "/logged-models/{model_id}/tags"): set_logged_model_tags,
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key:path}"): delete_logged_model_tag,
    ("POST", "/logged-models/{model_id}/params"): log_logged_model_params,
}
