"""Deployments: the model servers ``opsloop serve`` started, and whether they still run."""

from __future__ import annotations

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
