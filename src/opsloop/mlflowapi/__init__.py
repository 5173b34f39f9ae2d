"""MLflow's REST protocol on ``opsloop server``: the unmodified ``mlflow`` client logs to opsloop.

Point existing code at an opsloop server with one variable::

    MLFLOW_TRACKING_URI=http://localhost:5000 python train.py

The server answers MLflow's tracking and registry calls under
``/api/2.0/mlflow/`` and its artifact proxy under
``/api/2.0/mlflow-artifacts/``, over opsloop's own store: runs logged this
way are opsloop runs (params, metrics in the packed metric store, tags,
content-addressed artifacts), models registered this way are opsloop model
versions. docs/mlflow.md lists what is supported and what each unsupported
call answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.mlflowapi._search import run_filter, run_order_by
    from opsloop.mlflowapi.api import ARTIFACTS_PREFIX, PREFIX, artifacts_router, router

__all__ = [
    "ARTIFACTS_PREFIX",
    "PREFIX",
    "artifacts_router",
    "router",
    "run_filter",
    "run_order_by",
]

_LAZY = {
    "ARTIFACTS_PREFIX": "opsloop.mlflowapi.api",
    "PREFIX": "opsloop.mlflowapi.api",
    "artifacts_router": "opsloop.mlflowapi.api",
    "router": "opsloop.mlflowapi.api",
    "run_filter": "opsloop.mlflowapi._search",
    "run_order_by": "opsloop.mlflowapi._search",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
