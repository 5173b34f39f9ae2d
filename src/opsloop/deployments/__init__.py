"""Deployments: the model servers ``opsloop serve`` started, and whether they still run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.deployments._client import Deployments
    from opsloop.deployments._recorder import DeploymentRecorder
    from opsloop.deployments._service import HEARTBEAT_INTERVAL_S, DeploymentService
    from opsloop.deployments.entities import Deployment, DeploymentStatus

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "Deployment",
    "DeploymentRecorder",
    "DeploymentService",
    "DeploymentStatus",
    "Deployments",
]

# Each name loads its module on first use: the package itself imports nothing, so
# reading the room's declaration (the CLI, opsloop.rooms) stays light.
_LAZY = {
    "HEARTBEAT_INTERVAL_S": "opsloop.deployments._service",
    "Deployment": "opsloop.deployments.entities",
    "DeploymentRecorder": "opsloop.deployments._recorder",
    "DeploymentService": "opsloop.deployments._service",
    "DeploymentStatus": "opsloop.deployments.entities",
    "Deployments": "opsloop.deployments._client",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
