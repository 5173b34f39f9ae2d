"""The MLflow API room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import Room

ROOM = Room(
    name="mlflowapi",
    doc="MLflow's REST protocol (tracking, registry, artifact proxy) over opsloop's store.",
    # At MLflow's own paths, /api/2.0/mlflow and /api/2.0/mlflow-artifacts.
    root_routers=("opsloop.mlflowapi.api:router", "opsloop.mlflowapi.api:artifacts_router"),
)
