"""Who may call what: the permission rule of every route of ``opsloop server``.

One line per route: its method (``*`` for a mounted app), its template as
FastAPI writes it, and the least role that may call it: ``public`` (no token
needed: health checks, the UI's shell, the API docs), ``viewer`` (reads),
``editor`` (changes), ``admin`` (tokens, the audit trail, gateway keys and
teams) or ``owner``. A ``HEAD`` falls back to its ``GET`` rule.

A route missing here is refused to everyone (``NO_PERMISSION_RULE``, 403)
and fails ``tests/test_governance_routes.py``, which walks every route of
the real app: a new route cannot ship unchecked. ``opsloop tokens rules``
prints this table.
"""

from __future__ import annotations

import functools

from opsloop.governance.entities import ROLES

__all__ = ["LEVELS", "READ_BY_POST", "RULES", "required_role", "rules"]

LEVELS: tuple[str, ...] = ("public", *ROLES)

# MLflow's catch-all route takes POST for a few reads; these concrete paths need only a viewer.
READ_BY_POST = frozenset(
    f"/api/2.0/mlflow/{p}"
    for p in (
        "runs/search",
        "experiments/search",
        "logged-models/search",
        "registered-models/get-latest-versions",
    )
)

RULES = """
GET    /api/v1/openapi.json                                                            public
GET    /api/v1/docs                                                                    public
GET    /docs/oauth2-redirect                                                           public
GET    /api/v1/health                                                                  public
POST   /api/v1/blobs/missing                                                           viewer
PUT    /api/v1/blobs/{digest}                                                          editor
HEAD   /api/v1/blobs/{digest}                                                          viewer
GET    /api/v1/blobs/{digest}                                                          viewer
GET    /api/v1/experiments                                                             viewer
POST   /api/v1/experiments                                                             editor
GET    /api/v1/experiments/by-name/{name}                                              viewer
GET    /api/v1/experiments/{experiment_id}                                             viewer
PATCH  /api/v1/experiments/{experiment_id}                                             editor
PUT    /api/v1/experiments/{experiment_id}/tags/{key:path}                             editor
DELETE /api/v1/experiments/{experiment_id}/tags/{key:path}                             editor
DELETE /api/v1/experiments/{experiment_id}                                             editor
POST   /api/v1/experiments/{experiment_id}/restore                                     editor
POST   /api/v1/runs                                                                    editor
POST   /api/v1/runs/search                                                             viewer
POST   /api/v1/runs/compare                                                            viewer
GET    /api/v1/runs/{run_id}                                                           viewer
PATCH  /api/v1/runs/{run_id}                                                           editor
DELETE /api/v1/runs/{run_id}                                                           editor
POST   /api/v1/runs/{run_id}/restore                                                   editor
POST   /api/v1/runs/{run_id}/batch                                                     editor
PUT    /api/v1/runs/{run_id}/tags/{key:path}                                           editor
DELETE /api/v1/runs/{run_id}/tags/{key:path}                                           editor
GET    /api/v1/runs/{run_id}/metric-history                                            viewer
GET    /api/v1/runs/{run_id}/metric-histories                                          viewer
GET    /api/v1/runs/{run_id}/artifacts                                                 viewer
PUT    /api/v1/runs/{run_id}/artifacts/{path:path}                                     editor
GET    /api/v1/runs/{run_id}/artifacts/{path:path}                                     viewer
GET    /api/v1/datasets                                                                viewer
POST   /api/v1/datasets                                                                editor
GET    /api/v1/datasets/{name}                                                         viewer
GET    /api/v1/datasets/{name}/versions                                                viewer
POST   /api/v1/datasets/{name}/versions                                                editor
GET    /api/v1/datasets/{name}/versions/{version}                                      viewer
GET    /api/v1/dataset-versions/{ref}                                                  viewer
GET    /api/v1/dataset-versions/{ref}/rows                                             viewer
GET    /api/v1/dataset-versions/{ref}/diff                                             viewer
POST   /api/v1/dataset-versions/{ref}/splits                                           editor
GET    /api/v1/dataset-versions/{ref}/children                                         viewer
GET    /api/v1/dataset-versions/{ref}/runs                                             viewer
POST   /api/v1/runs/{run_id}/inputs                                                    editor
GET    /api/v1/runs/{run_id}/inputs                                                    viewer
GET    /api/v1/registry/models                                                         viewer
POST   /api/v1/registry/models                                                         editor
GET    /api/v1/registry/models/{name}                                                  viewer
PATCH  /api/v1/registry/models/{name}                                                  editor
POST   /api/v1/registry/models/{name}/rename                                           editor
DELETE /api/v1/registry/models/{name}                                                  editor
PUT    /api/v1/registry/models/{name}/tags/{key:path}                                  editor
DELETE /api/v1/registry/models/{name}/tags/{key:path}                                  editor
GET    /api/v1/registry/models/{name}/history                                          viewer
GET    /api/v1/registry/models/{name}/versions                                         viewer
POST   /api/v1/registry/models/{name}/versions                                         editor
GET    /api/v1/registry/models/{name}/versions/{version}                               viewer
PATCH  /api/v1/registry/models/{name}/versions/{version}                               editor
DELETE /api/v1/registry/models/{name}/versions/{version}                               editor
PUT    /api/v1/registry/models/{name}/versions/{version}/tags/{key:path}               editor
DELETE /api/v1/registry/models/{name}/versions/{version}/tags/{key:path}               editor
GET    /api/v1/registry/models/{name}/versions/{version}/card                          viewer
PUT    /api/v1/registry/models/{name}/versions/{version}/card                          editor
GET    /api/v1/registry/models/{name}/versions/{version}/lineage                       viewer
GET    /api/v1/registry/models/{name}/versions/{version}/files                         viewer
GET    /api/v1/registry/models/{name}/versions/{version}/files/{path:path}             viewer
GET    /api/v1/registry/models/{name}/aliases                                          viewer
GET    /api/v1/registry/models/{name}/aliases/{alias}                                  viewer
PUT    /api/v1/registry/models/{name}/aliases/{alias}                                  editor
DELETE /api/v1/registry/models/{name}/aliases/{alias}                                  editor
GET    /api/v1/registry/resolve                                                        viewer
GET    /api/v1/registry/lineage/datasets/{dataset_version_id}                          viewer
GET    /api/v1/prompts                                                                 viewer
GET    /api/v1/prompts/{name}                                                          viewer
GET    /api/v1/prompts/{name}/versions                                                 viewer
POST   /api/v1/prompts/{name}/versions                                                 editor
GET    /api/v1/prompts/{name}/versions/{version}                                       viewer
GET    /api/v1/prompts/{name}/labels                                                   viewer
GET    /api/v1/prompts/{name}/labels/{label}                                           viewer
PUT    /api/v1/prompts/{name}/labels/{label}                                           editor
DELETE /api/v1/prompts/{name}/labels/{label}                                           editor
GET    /api/v1/prompts/{name}/diff                                                     viewer
POST   /api/v1/prompts/{name}/render                                                   viewer
GET    /api/v1/deployments                                                             viewer
POST   /api/v1/deployments                                                             editor
GET    /api/v1/deployments/{deployment_id}                                             viewer
POST   /api/v1/deployments/{deployment_id}/heartbeat                                   editor
POST   /api/v1/deployments/{deployment_id}/stop                                        editor
GET    /api/v1/feedback/scores                                                         viewer
PUT    /api/v1/feedback/scores/{name}                                                  editor
GET    /api/v1/feedback/scores/{name}                                                  viewer
DELETE /api/v1/feedback/scores/{name}                                                  editor
GET    /api/v1/feedback/scores/{name}/agreement                                        viewer
POST   /api/v1/feedback/annotations                                                    editor
GET    /api/v1/feedback/annotations                                                    viewer
GET    /api/v1/feedback/annotations/{annotation_id}                                    viewer
DELETE /api/v1/feedback/annotations/{annotation_id}                                    editor
POST   /api/v1/feedback/training-data                                                  editor
POST   /api/v1/feedback/exports                                                        editor
GET    /api/v1/feedback/exports                                                        viewer
POST   /api/v1/feedback/queues                                                         editor
GET    /api/v1/feedback/queues                                                         viewer
GET    /api/v1/feedback/queues/{name}                                                  viewer
DELETE /api/v1/feedback/queues/{name}                                                  editor
POST   /api/v1/feedback/queues/{name}/fill                                             editor
POST   /api/v1/feedback/queues/{name}/assign                                           editor
POST   /api/v1/feedback/queues/{name}/claim                                            editor
POST   /api/v1/feedback/queues/{name}/items/{trace_id}/complete                        editor
POST   /api/v1/feedback/queues/{name}/items/{trace_id}/skip                            editor
GET    /api/v1/feedback/queues/{name}/items                                            viewer
GET    /api/v1/feedback/queues/{name}/progress                                         viewer
GET    /api/v1/tuning/studies                                                          viewer
POST   /api/v1/tuning/studies                                                          editor
GET    /api/v1/tuning/studies/{name}                                                   viewer
GET    /api/v1/tuning/studies/{name}/summary                                           viewer
DELETE /api/v1/tuning/studies/{name}                                                   editor
GET    /api/v1/traces                                                                  viewer
POST   /api/v1/traces/batch                                                            editor
GET    /api/v1/traces/stats                                                            viewer
GET    /api/v1/traces/prices                                                           viewer
PUT    /api/v1/traces/prices/{model:path}                                              editor
DELETE /api/v1/traces/prices/{model:path}                                              editor
GET    /api/v1/traces/{trace_id}                                                       viewer
DELETE /api/v1/traces/{trace_id}                                                       editor
POST   /v1/traces                                                                      editor
GET    /api/v1/evaluations                                                             viewer
GET    /api/v1/evaluations/compare                                                     viewer
GET    /api/v1/evaluations/gates/{model}                                               viewer
PUT    /api/v1/evaluations/gates/{model}                                               editor
DELETE /api/v1/evaluations/gates/{model}                                               editor
GET    /api/v1/evaluations/{run_id}                                                    viewer
GET    /api/v1/indexes                                                                 viewer
POST   /api/v1/indexes                                                                 editor
GET    /api/v1/indexes/{name}                                                          viewer
DELETE /api/v1/indexes/{name}                                                          editor
POST   /api/v1/indexes/{name}/items                                                    editor
POST   /api/v1/indexes/{name}/items/delete                                             editor
POST   /api/v1/indexes/{name}/search                                                   viewer
POST   /api/v1/finetune/jobs                                                           editor
GET    /api/v1/finetune/jobs                                                           viewer
GET    /api/v1/finetune/jobs/{job_id}                                                  viewer
POST   /api/v1/finetune/jobs/{job_id}/cancel                                           editor
POST   /api/v1/finetune/jobs/{job_id}/resume                                           editor
DELETE /api/2.0/mlflow/{rest:path}                                                     editor
GET    /api/2.0/mlflow/{rest:path}                                                     viewer
PATCH  /api/2.0/mlflow/{rest:path}                                                     editor
POST   /api/2.0/mlflow/{rest:path}                                                     editor
PUT    /api/2.0/mlflow/{rest:path}                                                     editor
GET    /api/2.0/mlflow-artifacts/artifacts                                             viewer
GET    /api/2.0/mlflow-artifacts/artifacts/{path:path}                                 viewer
PUT    /api/2.0/mlflow-artifacts/artifacts/{path:path}                                 editor
DELETE /api/2.0/mlflow-artifacts/artifacts/{path:path}                                 editor
POST   /api/2.0/mlflow-artifacts/mpu/{action}/{path:path}                              editor
DELETE /api/2.0/mlflow-artifacts/{rest:path}                                           editor
GET    /api/2.0/mlflow-artifacts/{rest:path}                                           viewer
PATCH  /api/2.0/mlflow-artifacts/{rest:path}                                           editor
POST   /api/2.0/mlflow-artifacts/{rest:path}                                           editor
PUT    /api/2.0/mlflow-artifacts/{rest:path}                                           editor
GET    /api/v1/gateway/routes                                                          viewer
GET    /api/v1/gateway/routes/{name}                                                   viewer
PUT    /api/v1/gateway/routes/{name}                                                   editor
DELETE /api/v1/gateway/routes/{name}                                                   editor
GET    /api/v1/gateway/teams                                                           viewer
GET    /api/v1/gateway/teams/{name}                                                    viewer
PUT    /api/v1/gateway/teams/{name}                                                    admin
GET    /api/v1/gateway/keys                                                            viewer
POST   /api/v1/gateway/keys                                                            admin
GET    /api/v1/gateway/keys/{key_id}                                                   viewer
POST   /api/v1/gateway/keys/{key_id}/revoke                                            admin
PUT    /api/v1/gateway/keys/{key_id}/limits                                            admin
GET    /api/v1/gateway/usage                                                           viewer
POST   /api/v1/monitoring/ingest                                                       editor
POST   /api/v1/monitoring/labels                                                       editor
GET    /api/v1/monitoring/predictions                                                  viewer
GET    /api/v1/monitoring/metrics                                                      viewer
GET    /api/v1/monitoring/performance                                                  viewer
GET    /api/v1/monitoring/summary                                                      viewer
GET    /api/v1/monitoring/scores                                                       viewer
GET    /api/v1/monitoring/usage                                                        viewer
GET    /api/v1/monitoring/deployments                                                  viewer
POST   /api/v1/monitoring/monitors                                                     editor
GET    /api/v1/monitoring/monitors                                                     viewer
GET    /api/v1/monitoring/monitors/{name}                                              viewer
DELETE /api/v1/monitoring/monitors/{name}                                              editor
POST   /api/v1/monitoring/monitors/{name}/run                                          editor
GET    /api/v1/monitoring/alerts                                                       viewer
GET    /metrics                                                                        viewer
GET    /api/v1/workflows/runs                                                          viewer
GET    /api/v1/workflows/runs/{run_id}                                                 viewer
GET    /api/v1/workflows/cache                                                         viewer
GET    /api/v1/workflows/cache/{key}                                                   viewer
PUT    /api/v1/workflows/cache/{key}                                                   editor
POST   /api/v1/workflows/cache/{key}/hits                                              editor
POST   /api/v1/workflows/cache/drop                                                    editor
GET    /api/v1/workflows/triggers                                                      viewer
POST   /api/v1/workflows/triggers                                                      editor
DELETE /api/v1/workflows/triggers/{name}                                               editor
POST   /api/v1/workflows/events                                                        editor
GET    /api/v1/workflows/events                                                        viewer
GET    /health                                                                         public
GET    /                                                                               public
*      /ui/static                                                                      public
GET    /ui/routes.js                                                                   public
GET    /ui/{rest:path}                                                                 public
GET    /ui                                                                             public
POST   /api/v1/tokens                                                                  admin
GET    /api/v1/tokens                                                                  admin
GET    /api/v1/tokens/{token_id}                                                       admin
POST   /api/v1/tokens/{token_id}/revoke                                                admin
GET    /api/v1/audit                                                                   admin
GET    /api/v1/audit/verify                                                            admin
GET    /api/v1/whoami                                                                  viewer
GET    /api/v1/approvals/protections                                                   viewer
PUT    /api/v1/approvals/protections/{model}/{alias}                                   admin
DELETE /api/v1/approvals/protections/{model}/{alias}                                   admin
POST   /api/v1/approvals                                                               editor
GET    /api/v1/approvals                                                               viewer
GET    /api/v1/approvals/{approval_id}                                                 viewer
POST   /api/v1/approvals/{approval_id}/approve                                         editor
POST   /api/v1/approvals/{approval_id}/reject                                          editor
GET    /api/v1/retention                                                               admin
POST   /api/v1/retention/run                                                           admin
GET    /auth/login                                                                     public
POST   /auth/session                                                                   public
POST   /auth/logout                                                                    viewer
GET    /auth/oidc/login                                                                public
GET    /auth/oidc/callback                                                             public
"""


@functools.cache
def rules() -> dict[tuple[str, str], str]:
    """``(method, template) -> least role``, parsed from ``RULES`` (checked as it is read)."""
    out: dict[tuple[str, str], str] = {}
    for line in RULES.strip().splitlines():
        method, template, level = line.split()
        if level not in LEVELS or (method, template) in out:
            raise ValueError(f"bad or repeated permission rule: {line!r}")
        out[method, template] = level
    return out


def required_role(method: str, template: str, path: str = "") -> str | None:
    """The least role for ``method`` on ``template`` (``path``: the concrete path), or None."""
    table = rules()
    level = table.get((method, template))
    if level is None and method == "HEAD":
        level = table.get(("GET", template))
    if level == "editor" and method == "POST" and path in READ_BY_POST:
        return "viewer"
    return level
