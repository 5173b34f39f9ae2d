"""The opsloop server: REST API and web UI, built by ``create_app``."""

from opsloop.server._app import API_PREFIX, create_app
from opsloop.server._serve import serve

__all__ = ["API_PREFIX", "create_app", "serve"]
