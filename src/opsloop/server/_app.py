"""``create_app(settings)``: the FastAPI application, built in a factory (never at import)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from opsloop._version import __version__
from opsloop.core import Context, load_ref
from opsloop.core.web import BodyLimitMiddleware, JSONBody, install_error_handlers
from opsloop.rooms import declarations
from opsloop.server._blobs import router as blobs_router
from opsloop.server._ui import ui_index, ui_routes_module
from opsloop.settings import Settings
from opsloop.store import SCHEMA_HEAD

UI_DIR = Path(__file__).parent / "ui"
API_PREFIX = "/api/v1"


class _NoCacheStatic(StaticFiles):
    """Static UI files, revalidated on every load so an upgrade never runs stale JS."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        resp = super().file_response(*args, **kwargs)
        resp.headers["Cache-Control"] = "no-cache"
        return resp


def create_app(settings: Settings | None = None, *, context: Context | None = None) -> FastAPI:
    """Build the server: REST API under ``/api/v1``, the web UI under ``/ui``.

    Every room declared in ``opsloop.rooms`` is mounted. Raises
    ``SchemaOutOfDate`` when the database needs ``opsloop db upgrade``.
    """
    if context is None:
        context = Context(settings or Settings())
    settings = context.settings
    if context.is_remote:
        # The server works on its own store; a tracking URI in its environment is for clients.
        settings = settings.model_copy(update={"tracking_uri": None})
        context = Context(settings)
    state = context
    state.database  # noqa: B018 - open the database and check its schema now, not on a request

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The rooms' background work (schedules, event triggers), stopped before the store closes.
        stops = [load_ref(ref)(state) for room in declarations() for ref in room.background]
        try:
            yield
        finally:
            for stop in reversed(stops):
                stop()
            state.close()

    app = FastAPI(
        lifespan=lifespan,
        title="opsloop",
        version=__version__,
        description="Experiment tracking and the rest of the ML/LLM operations loop. "
        'Every error answers `{"error": {"code", "message", "details"}}`.',
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        default_response_class=JSONBody,
    )
    app.state.opsloop = state
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        max_artifact_bytes=settings.max_artifact_bytes,
    )

    meta = APIRouter(tags=["meta"])

    @meta.get("/health", summary="Liveness and schema version")
    def health() -> Response:
        return JSONBody(
            {
                "status": "ok",
                "version": __version__,
                "schema": SCHEMA_HEAD,
                "database": state.database.engine.dialect.name,
            }
        )

    app.include_router(meta, prefix=API_PREFIX)
    app.include_router(blobs_router, prefix=API_PREFIX)  # files of datasets, models, ...
    for room in declarations():
        for ref in room.routers:
            app.include_router(load_ref(ref), prefix=API_PREFIX)
        for ref in room.root_routers:
            app.include_router(load_ref(ref))

    @app.get("/health", include_in_schema=False)
    def root_health() -> Response:
        return JSONBody({"status": "ok"})

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/ui/")

    if UI_DIR.is_dir():
        app.mount(
            "/ui/static",
            _NoCacheStatic(directory=UI_DIR / "static", check_dir=False),
            name="ui-static",
        )

        index = ui_index(UI_DIR / "index.html", declarations())
        routes_js = ui_routes_module(declarations())

        @app.get("/ui/routes.js", include_in_schema=False)
        def ui_routes() -> Response:
            # The rooms' pages and sidebar links, generated from their declarations.
            return Response(
                routes_js, media_type="text/javascript", headers={"Cache-Control": "no-cache"}
            )

        @app.get("/ui", include_in_schema=False)
        @app.get("/ui/{rest:path}", include_in_schema=False)
        def ui(rest: str = "") -> Response:
            # The UI is one page; it routes by URL hash, so every /ui path serves it.
            return HTMLResponse(index, headers={"Cache-Control": "no-cache"})

    # Last, so a room's middleware sees every route (the permission check walks them all).
    for room in declarations():
        for ref in room.middleware:
            load_ref(ref)(app, state)
    return app
