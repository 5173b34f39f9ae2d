"""Deployment types that cross the SDK and the REST API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Deployment", "DeploymentStatus"]

DeploymentStatus = Literal["running", "stopped", "failed", "lost"]


class Deployment(BaseModel):
    """A model server: what it serves, where, and whether it is alive.

    ``status`` is ``lost`` when the server still claims ``running`` but has
    not heartbeated for ``heartbeat_interval_s`` times three (killed hard, or
    its machine went away).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    model_uri: str
    model_name: str
    version: int | None = None
    alias: str | None = None
    url: str
    host: str = ""
    pid: int | None = None
    status: DeploymentStatus
    started_at: int
    last_heartbeat_at: int
    stopped_at: int | None = None
    workers: int = 1
    flavor: str | None = None
