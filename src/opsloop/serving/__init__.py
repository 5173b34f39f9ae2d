"""Serving: one model behind HTTP, batched, with OpenAI-compatible routes for LLMs.

``create_serving_app(target, settings)`` builds the app; ``serve(...)`` runs it
under uvicorn (several workers, graceful shutdown); ``deploy_on_ray(...)`` deploys
it as Ray Serve replicas (``RayOptions``); ``opsloop serve`` is the command line.
Importing this package loads nothing (FastAPI comes with the first of its names);
the model libraries load with the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.serving._app import create_serving_app
    from opsloop.serving._batcher import MicroBatcher
    from opsloop.serving._options import ServeOptions
    from opsloop.serving._ray import RayOptions, deploy_on_ray, serve_on_ray
    from opsloop.serving._run import serve
    from opsloop.serving._source import ModelSource, Resolved, source_for

__all__ = [
    "MicroBatcher",
    "ModelSource",
    "RayOptions",
    "Resolved",
    "ServeOptions",
    "create_serving_app",
    "deploy_on_ray",
    "serve",
    "serve_on_ray",
    "source_for",
]

# Each name loads its module on first use: the package itself imports nothing, so
# reading the room's declaration (the CLI, opsloop.rooms) stays light.
_LAZY = {
    "MicroBatcher": "opsloop.serving._batcher",
    "ModelSource": "opsloop.serving._source",
    "RayOptions": "opsloop.serving._ray",
    "Resolved": "opsloop.serving._source",
    "ServeOptions": "opsloop.serving._options",
    "create_serving_app": "opsloop.serving._app",
    "deploy_on_ray": "opsloop.serving._ray",
    "serve": "opsloop.serving._run",
    "serve_on_ray": "opsloop.serving._ray",
    "source_for": "opsloop.serving._source",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
