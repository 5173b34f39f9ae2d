"""MLflow's model registry calls over opsloop's registry.

A model version registered through MLflow is an opsloop version of flavor
``mlflow`` whose files are the logged model's artifacts (content-addressed
blobs, shared with the run, not copied). MLflow's stages are opsloop aliases:
``Staging`` is the alias ``staging``, ``Production`` the alias ``production``
(an alias names one version, so moving it archives nothing by itself);
``Archived`` is recorded as a version tag. ``get-download-uri`` answers an
``mlflow-artifacts:/_registry/<name>/<version>`` URI that the artifact proxy
serves from the version's own files.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from opsloop.core import Context
from opsloop.errors import AlreadyExists, NotFound
from opsloop.mlflowapi._experiments import svc as tracking_svc
from opsloop.mlflowapi._logged_models import MODEL_PREFIX
from opsloop.mlflowapi._search import parse_conditions
from opsloop.mlflowapi._tracking import OWN
from opsloop.mlflowapi._wire import MlflowError, Msg, key_values
from opsloop.registry import ModelVersion, RegisteredModel, RegistryService

__all__ = ["HANDLERS", "registry", "version_files_uri"]

FLAVOR = "mlflow"
ARCHIVED = OWN + "archived"
SOURCE = OWN + "source"
MODEL_ID = OWN + "model_id"
RUN_ID = OWN + "run_id"
STAGE_ALIASES = {"staging": "Staging", "production": "Production"}
MAX_RESULTS = 10_000


def registry(ctx: Context) -> RegistryService:
    """The context's registry service, acting as the server's user."""
    return RegistryService(
        ctx.database,
        ctx.blobs,
        default_actor=ctx.user,
        max_file_bytes=ctx.settings.max_artifact_bytes,
    )


def _svc(ctx: Context) -> RegistryService:
    return ctx.room(registry)


def version_files_uri(name: str, version: int | str) -> str:
    return f"mlflow-artifacts:/_registry/{name}/{version}"


def _stage(mv: ModelVersion) -> str:
    for alias in ("production", "staging"):
        if alias in mv.aliases:
            return STAGE_ALIASES[alias]
    return "Archived" if mv.tags.get(ARCHIVED) else "None"


def version_json(mv: ModelVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.created_at,
        "last_updated_timestamp": mv.created_at,
        "user_id": mv.created_by,
        "current_stage": _stage(mv),
        "description": mv.description,
        "source": mv.tags.get(SOURCE) or mv.source,
        "run_id": mv.tags.get(RUN_ID) or mv.source_run_id or "",
        "status": mv.status,
        "tags": [{"key": k, "value": v} for k, v in mv.tags.items() if not k.startswith(OWN)],
        "aliases": list(mv.aliases),
    }
    if mv.tags.get(MODEL_ID):
        out["model_id"] = mv.tags[MODEL_ID]
    return out


def model_json(rm: RegisteredModel, latest: list[ModelVersion] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": rm.name,
        "creation_timestamp": rm.created_at,
        "last_updated_timestamp": rm.updated_at,
        "user_id": rm.created_by,
        "description": rm.description,
        "tags": [{"key": k, "value": v} for k, v in rm.tags.items()],
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(rm.aliases.items())],
    }
    if latest:
        out["latest_versions"] = [version_json(v) for v in latest]
    return out


def _version(m: Msg) -> int:
    v = m.int64("version")
    if v is None:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'version'."
        )
    return v


def _get_model(s: RegistryService, name: str) -> RegisteredModel:
    try:
        return s.get_model(name)
    except NotFound:
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST", f"Registered Model with name={name} not found"
        ) from None


def _get_version(s: RegistryService, name: str, version: int) -> ModelVersion:
    try:
        return s.get_version(name, version)
    except NotFound:
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST", f"Model Version (name={name}, version={version}) not found"
        ) from None


# ---------------------------------------------------------------------------- registered models


def create_registered_model(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name = m.req("name")
    tags = dict(key_values(m.dicts("tags"), "tag"))
    try:
        rm = s.create_model(name, description=m.text("description") or "", tags=tags)
    except Exception as exc:
        if getattr(exc, "code", "") == "ALREADY_EXISTS":
            raise MlflowError(
                "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists."
            ) from None
        raise
    return {"registered_model": model_json(rm)}


def _latest_by_stage(s: RegistryService, name: str, stages: list[str] | None) -> list[ModelVersion]:
    versions = s.list_versions(name)  # newest first
    wanted = {st.lower() for st in stages} if stages else None
    out: list[ModelVersion] = []
    seen: set[str] = set()
    for mv in versions:
        st = _stage(mv)
        if st in seen or (wanted is not None and st.lower() not in wanted):
            continue
        seen.add(st)
        out.append(mv)
    return sorted(out, key=lambda v: v.version)


def get_registered_model(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    rm = _get_model(s, m.req("name"))
    return {"registered_model": model_json(rm, _latest_by_stage(s, rm.name, None))}


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid page token")
    return int(token)


def _page(items: list[Any], m: Msg, default: int) -> tuple[list[Any], str | None]:
    limit = m.int64("max_results", default)
    assert limit is not None
    if not 1 <= limit <= MAX_RESULTS:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"max_results must be between 1 and {MAX_RESULTS}"
        )
    start = _offset(m.text("page_token"))
    nxt = str(start + limit) if start + limit < len(items) else None
    return items[start : start + limit], nxt


def _model_value(rm: RegisteredModel, entity: str, key: str) -> Any:
    if entity == "tag":
        return rm.tags.get(key)
    if key == "name":
        return rm.name
    raise MlflowError(
        "INVALID_PARAMETER_VALUE", f"Invalid filter on '{key}': use name or tags.<key>"
    )


def search_registered_models(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    models = s.list_models(kind="model", max_results=MAX_RESULTS)
    for c in parse_conditions(m.text("filter")):
        models = [
            rm
            for rm in models
            if c.matches(_model_value(rm, c.entity, c.key), missing_differs=True)
        ]
    for clause in reversed(m.values("order_by")):
        parts = str(clause).split() or [""]
        field = parts[0].lower()
        keys = {"name": lambda r: r.name, "last_updated_timestamp": lambda r: r.updated_at,
                "creation_timestamp": lambda r: r.created_at}  # fmt: skip
        if field not in keys:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause '{clause}'")
        models.sort(key=keys[field], reverse=len(parts) > 1 and parts[1].lower() == "desc")
    page, nxt = _page(models, m, 100)
    out: dict[str, Any] = {"registered_models": [model_json(rm) for rm in page]}
    if nxt:
        out["next_page_token"] = nxt
    return out


def update_registered_model(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name = m.req("name")
    _get_model(s, name)
    rm = s.update_model(name, description=m.text("description") or "")
    return {"registered_model": model_json(rm)}


def rename_registered_model(ctx: Context, m: Msg) -> dict[str, Any]:
    """The registry's rename: versions, aliases and tags go along; ``models:/OLD`` keeps
    resolving in opsloop until the name is reused (the MLflow API itself answers the new name)."""
    s = _svc(ctx)
    name, new_name = m.req("name"), m.req("new_name")
    _get_model(s, name)
    try:
        rm = s.rename_model(name, new_name)
    except AlreadyExists:
        raise MlflowError(
            "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={new_name}) already exists."
        ) from None
    return {"registered_model": model_json(rm, _latest_by_stage(s, rm.name, None))}


def delete_registered_model(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name = m.req("name")
    _get_model(s, name)
    s.delete_model(name)
    return {}


def set_registered_model_tag(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name = m.req("name")
    _get_model(s, name)
    s.set_model_tag(name, m.req("key"), m.text("value") or "")
    return {}


def delete_registered_model_tag(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name = m.req("name")
    _get_model(s, name)
    s.delete_model_tag(name, m.req("key"))
    return {}


def get_latest_versions(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name = m.req("name")
    _get_model(s, name)
    stages = [str(x) for x in m.values("stages")] or None
    return {"model_versions": [version_json(v) for v in _latest_by_stage(s, name, stages)]}


# ---------------------------------------------------------------------------- aliases


def set_alias(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name = m.req("name")
    _get_version(s, name, _version(m))
    s.set_alias(name, m.req("alias"), _version(m))
    return {}


def delete_alias(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name = m.req("name")
    _get_model(s, name)
    s.delete_alias(name, m.req("alias"))
    return {}


def get_by_alias(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name, alias = m.req("name"), m.req("alias")
    _get_model(s, name)
    try:
        mv = s.get_version_by_alias(name, alias)
    except NotFound:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"Registered model alias {alias} not found."
        ) from None
    return {"model_version": version_json(mv)}


# ---------------------------------------------------------------------------- versions

_ARTIFACTS_URL = re.compile(r"^https?://[^/]+/api/2\.0/mlflow-artifacts/artifacts/")


def run_source(source: str, model_id: str | None) -> tuple[str, str | None]:
    """(``runs:/<run id>[/path]``, logged model id) for an MLflow model version's source."""
    if model_id:
        return "runs:/" + _model_run(model_id), model_id
    src = source.strip()
    if src.startswith("models:/" + MODEL_PREFIX):
        mid = src[len("models:/") :].strip("/")
        return "runs:/" + _model_run(mid), mid
    if src.startswith("runs:/"):
        return src, None
    rest: str | None = None
    if src.startswith("mlflow-artifacts:"):
        rest = src[len("mlflow-artifacts:") :].lstrip("/")
    elif _ARTIFACTS_URL.match(src):
        rest = _ARTIFACTS_URL.sub("", src)
    if rest is not None:
        parts = [p for p in rest.split("/") if p]
        if len(parts) >= 3 and parts[2] == "artifacts":
            return "runs:/" + "/".join([parts[1], *parts[3:]]), None
        if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
            sub = "/".join(parts[4:])
            rid = _model_run(parts[2])
            return "runs:/" + (f"{rid}/{sub}" if sub else rid), parts[2]
    raise MlflowError(
        "INVALID_PARAMETER_VALUE",
        f"Invalid model version source {source!r}: opsloop registers models logged to its own "
        "runs (models:/<model id>, runs:/<run id>/<path> or an mlflow-artifacts: URI of a run)",
    )


def _model_run(model_id: str) -> str:
    if not model_id.startswith(MODEL_PREFIX):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid logged model id {model_id!r}")
    return model_id[len(MODEL_PREFIX) :]


def create_model_version(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name = m.req("name")
    source = m.req("source")
    runs_uri, model_id = run_source(source, m.text("model_id"))
    tags = dict(key_values(m.dicts("tags"), "tag"))
    tags[SOURCE] = source
    if model_id:
        # The version's files are the logged model's run; MLflow names the run that logged it.
        tags[MODEL_ID] = model_id
        model_run = tracking_svc(ctx).get_run(_model_run(model_id))
        tags[RUN_ID] = m.text("run_id") or model_run.parent_run_id or model_run.id
    mv = s.create_version_from_run(
        name, runs_uri, flavor=FLAVOR, description=m.text("description") or "", tags=tags
    )
    return {"model_version": version_json(mv)}


def get_model_version(ctx: Context, m: Msg) -> dict[str, Any]:
    return {"model_version": version_json(_get_version(_svc(ctx), m.req("name"), _version(m)))}


def update_model_version(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name, version = m.req("name"), _version(m)
    _get_version(s, name, version)
    mv = s.update_version(name, version, description=m.text("description") or "")
    return {"model_version": version_json(mv)}


def delete_model_version(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name, version = m.req("name"), _version(m)
    _get_version(s, name, version)
    s.delete_version(name, version)
    return {}


def _version_value(mv: ModelVersion, entity: str, key: str) -> Any:
    if entity == "tag":
        return mv.tags.get(key)
    k = key.lower()
    if k == "name":
        return mv.name
    if k == "run_id":
        return mv.tags.get(RUN_ID) or mv.source_run_id
    if k in ("version", "version_number"):
        return str(mv.version)
    if k in ("source", "source_path"):
        return mv.tags.get(SOURCE) or mv.source
    raise MlflowError(
        "INVALID_PARAMETER_VALUE",
        f"Invalid filter on '{key}': use name, run_id, version_number, source_path or tags.<key>",
    )


def search_model_versions(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    conds = parse_conditions(m.text("filter"))
    names = [c.value for c in conds if c.entity == "attr" and c.key == "name" and c.op == "="]
    if names:
        models = [n for n in names[:1] if isinstance(n, str)]
    else:
        models = [rm.name for rm in s.list_models(kind="model", max_results=MAX_RESULTS)]
    versions: list[ModelVersion] = []
    for name in models:
        try:
            versions.extend(s.list_versions(name))
        except NotFound:
            continue
    for c in conds:
        versions = [
            v
            for v in versions
            if c.matches(_version_value(v, c.entity, c.key), missing_differs=True)
        ]
    versions.sort(key=lambda v: (v.name, -v.version))
    page, nxt = _page(versions, m, 10_000)
    out: dict[str, Any] = {"model_versions": [version_json(v) for v in page]}
    if nxt:
        out["next_page_token"] = nxt
    return out


def set_model_version_tag(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name, version = m.req("name"), _version(m)
    _get_version(s, name, version)
    s.set_version_tag(name, version, m.req("key"), m.text("value") or "")
    return {}


def delete_model_version_tag(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    name, version = m.req("name"), _version(m)
    _get_version(s, name, version)
    s.delete_version_tag(name, version, m.req("key"))
    return {}


def get_download_uri(ctx: Context, m: Msg) -> dict[str, Any]:
    s = _svc(ctx)
    mv = _get_version(s, m.req("name"), _version(m))
    return {"artifact_uri": version_files_uri(mv.name, mv.version)}


def transition_stage(ctx: Context, m: Msg) -> dict[str, Any]:
    """MLflow stages on opsloop aliases: Staging/Production move the alias to this version."""
    s = _svc(ctx)
    name, version = m.req("name"), _version(m)
    stage = m.req("stage").strip().lower()
    archive_others = m.flag("archive_existing_versions")
    mv = _get_version(s, name, version)
    if stage in ("staging", "production"):
        previous = None
        with contextlib.suppress(NotFound):
            previous = s.get_version_by_alias(name, stage)
        for alias in STAGE_ALIASES:
            if alias != stage and alias in mv.aliases:
                s.delete_alias(name, alias)
        s.set_alias(name, stage, version)
        if ARCHIVED in mv.tags:
            s.delete_version_tag(name, version, ARCHIVED)
        if archive_others and previous is not None and previous.version != version:
            s.set_version_tag(name, previous.version, ARCHIVED, "1")
    elif stage in ("archived", "none"):
        for alias in STAGE_ALIASES:
            if alias in mv.aliases:
                s.delete_alias(name, alias)
        if stage == "archived":
            s.set_version_tag(name, version, ARCHIVED, "1")
        elif ARCHIVED in mv.tags:
            s.delete_version_tag(name, version, ARCHIVED)
    else:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"Invalid Model Version stage: {m.req('stage')}. Value must be one of "
            "None, Staging, Production, Archived.",
        )
    return {"model_version": version_json(s.get_version(name, version))}


HANDLERS = {
    ("POST", "/registered-models/create"): create_registered_model,
    ("GET", "/registered-models/get"): get_registered_model,
    ("GET", "/registered-models/search"): search_registered_models,
    ("PATCH", "/registered-models/update"): update_registered_model,
    ("POST", "/registered-models/rename"): rename_registered_model,
    ("DELETE", "/registered-models/delete"): delete_registered_model,
    ("POST", "/registered-models/set-tag"): set_registered_model_tag,
    ("DELETE", "/registered-models/delete-tag"): delete_registered_model_tag,
    ("POST", "/registered-models/get-latest-versions"): get_latest_versions,
    ("GET", "/registered-models/get-latest-versions"): get_latest_versions,
    ("POST", "/registered-models/alias"): set_alias,
    ("DELETE", "/registered-models/alias"): delete_alias,
    ("GET", "/registered-models/alias"): get_by_alias,
    ("POST", "/model-versions/create"): create_model_version,
    ("GET", "/model-versions/get"): get_model_version,
    ("PATCH", "/model-versions/update"): update_model_version,
    ("DELETE", "/model-versions/delete"): delete_model_version,
    ("GET", "/model-versions/search"): search_model_versions,
    ("POST", "/model-versions/set-tag"): set_model_version_tag,
    ("DELETE", "/model-versions/delete-tag"): delete_model_version_tag,
    ("GET", "/model-versions/get-download-uri"): get_download_uri,
    ("POST", "/model-versions/transition-stage"): transition_stage,
}
