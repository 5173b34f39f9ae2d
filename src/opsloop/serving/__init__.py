"""Serving: one model behind HTTP, batched, with OpenAI-compatible routes for LLMs.

``create_serving_app(target, settings)`` builds the app; ``serve(...)`` runs it
under uvicorn (several workers, graceful shutdown); ``deploy_on_ray(...)`` deploys
it as Ray Serve replicas (``RayOptions``); ``opsloop serve`` is the command line. Importing this package stays light: the model libraries load
with the model.
"""

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
