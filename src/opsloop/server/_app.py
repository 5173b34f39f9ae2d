"""``create_app(settings)``: the FastAPI application, built in a factory (never at import)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from opsloop._version import __version__
from opsloop.server._errors import install_error_handlers
from opsloop.server._json import JSONBody
from opsloop.server._limits import BodyLimitMiddleware
from opsloop.server._state import AppState
from opsloop.settings import Settings
from opsloop.store._engine import SCHEMA_HEAD

UI_DIR = Path(__file__).parent / "ui"
API_PREFIX = "/api/v1"


class _NoCacheStatic(StaticFiles):
    """Static UI files, revalidated on every load so an upgrade never runs stale JS."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        resp = super().file_response(*args, **kwargs)
        resp.headers["Cache-Control"] = "no-cache"
        return resp


def create_app(settings: Settings | None = None, *, state: AppState | None = None) -> FastAPI:
    """Build the server: REST API under ``/api/v1``, the web UI under ``/ui``.

    Raises ``SchemaOutOfDate`` when the database needs ``opsloop db upgrade``.
    """
    settings = settings or Settings()
    state = state or AppState.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.db.dispose()

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

    from opsloop.datasets.api import router as datasets_router
    from opsloop.deployments.api import router as deployments_router
    from opsloop.evaluation.api import router as evaluation_router
    from opsloop.prompts.api import router as prompts_router
    from opsloop.registry.api import router as registry_router
    from opsloop.tracing.api import otlp_router
    from opsloop.tracing.api import router as tracing_router
    from opsloop.tracking.api import router as tracking_router
    from opsloop.tuning.api import router as tuning_router

    meta = APIRouter(tags=["meta"])

    @meta.get("/health", summary="Liveness and schema version")
    def health() -> Response:
        return JSONBody(
            {
                "status": "ok",
                "version": __version__,
                "schema": SCHEMA_HEAD,
                "database": state.db.engine.dialect.name,
            }
        )

    app.include_router(meta, prefix=API_PREFIX)
    app.include_router(tracking_router, prefix=API_PREFIX)
    app.include_router(datasets_router, prefix=API_PREFIX)
    app.include_router(registry_router, prefix=API_PREFIX)
    app.include_router(prompts_router, prefix=API_PREFIX)
    app.include_router(deployments_router, prefix=API_PREFIX)
    app.include_router(tracing_router, prefix=API_PREFIX)
    app.include_router(otlp_router)  # OTLP/HTTP at its standard path, /v1/traces
    app.include_router(tuning_router, prefix=API_PREFIX)
    app.include_router(evaluation_router, prefix=API_PREFIX)

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

        @app.get("/ui", include_in_schema=False)
        @app.get("/ui/{rest:path}", include_in_schema=False)
        def ui(rest: str = "") -> Response:
            # The UI is one page; it routes by URL hash, so every /ui path serves it.
            return FileResponse(UI_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    return app
