"""``create_serving_app(target, settings)``: a FastAPI app serving one model.

Routes by model kind (see ``GET /v1/metadata``):

- every model: ``GET /health`` (liveness), ``GET /ready`` (503 until the model
  is loaded), ``GET /v1/metadata``, ``GET /v1/models``, ``GET /v1/stats``
  (batching counters of this worker process);
- tabular/pyfunc: ``POST /invocations``, ``/v1/predict``, ``/v1/predict_proba``;
- language models: ``POST /v1/chat/completions``, ``/v1/completions``;
- embedders: ``POST /v1/embeddings``;
- every model: ``POST /v1/feedback``, end users' feedback on an answer by its id
  (the ``X-Opsloop-Response-Id`` header; an OpenAI answer's ``id``).

The model loads in the background once the server starts, so the process
answers ``/health`` at once; a ``models:/NAME@ALIAS`` (or latest) target is
re-resolved every ``poll_interval_s`` and a moved alias is loaded and swapped
in without failing a request.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from opsloop.core import VERSION, hooks
from opsloop.core.web import BodyLimitMiddleware, JSONBody
from opsloop.errors import NotFound, Unavailable
from opsloop.serving._errors import install_serving_error_handlers
from opsloop.serving._feedback import FeedbackRecorder, feedback_router
from opsloop.serving._openai import openai_router
from opsloop.serving._options import ServeOptions
from opsloop.serving._predict import FastPredictMiddleware, PredictionObserver, predict_router
from opsloop.serving._runtime import ModelHolder
from opsloop.serving._source import Resolved, source_for
from opsloop.settings import Settings

__all__ = ["OBSERVER_HOOK", "create_serving_app"]

#: Hook point: ``hook(app=, settings=, options=)`` returns a ``PredictionObserver`` (or None),
#: told of every predict answer and closed with the app (the monitoring room declares one).
OBSERVER_HOOK = "serving.observer"


def create_serving_app(
    target: Any,
    settings: Settings | None = None,
    *,
    options: ServeOptions | None = None,
    preloaded: tuple[Resolved, Any] | None = None,
) -> FastAPI:
    """An app serving ``target``: a ``models:/`` URI, a saved-model folder, or a loaded model.

    ``settings`` locate the registry for ``models:/`` URIs (default:
    ``Settings()``). The app's ``state.holder`` is the ``ModelHolder``
    (tests and embedding applications can call ``check_for_update()``).
    ``preloaded``: the version ``target`` resolves to and its loaded model, when
    the caller loaded it already (``serve`` does, to fail before listening).
    """
    settings = settings or Settings()
    options = options or ServeOptions()
    source = source_for(target, settings, options)
    holder = ModelHolder(source, options, preloaded=preloaded)
    recorder = FeedbackRecorder(settings)
    observers: list[PredictionObserver] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.start()
        try:
            yield
        finally:
            await holder.close()
            recorder.close()
            for obs in observers:
                obs.close()

    app = FastAPI(
        lifespan=lifespan,
        title="opsloop model server",
        version=VERSION,
        description=f"Serves {source.describe()}. Errors answer "
        '`{"error": {"code", "message", "details"}}` (plus `type`/`param` on OpenAI routes).',
        docs_url="/docs",
        redoc_url=None,
        default_response_class=JSONBody,
    )
    app.state.holder = holder
    app.state.feedback = recorder  # the served POST /v1/feedback writes through it
    if options.monitoring:
        for hook in hooks(OBSERVER_HOOK):
            obs = hook(app=app, settings=settings, options=options)
            if obs is not None:
                observers.append(obs)
    app.state.observers = observers
    install_serving_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        max_artifact_bytes=settings.max_request_bytes,
    )
    # Added last, so it is the outermost layer: predict requests skip the rest.
    app.add_middleware(
        FastPredictMiddleware,
        holder=holder,
        max_bytes=settings.max_request_bytes,
        observers=observers,
    )
    started = time.time()

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> Response:
        return JSONBody({"status": "ok", "pid": os.getpid()})

    @app.get("/ready", summary="Readiness: the model is loaded and takes requests")
    async def ready() -> Response:
        rt = holder.current
        if rt is None:
            msg = (
                "the model is loading" if holder.load_error is None else "the model failed to load"
            )
            details = {"error": holder.load_error} if holder.load_error else None
            raise Unavailable(f"{msg}: {source.describe()}", details=details)
        return JSONBody(
            {
                "status": "ready",
                "model": rt.name,
                "version": rt.resolved.version,
                "pid": os.getpid(),
            }
        )

    @app.get("/v1/metadata", summary="The served model: name, version, flavor, signature")
    async def metadata() -> Response:
        async with holder.use() as rt:
            return JSONBody(rt.info())

    def _model_card(rt: Any) -> dict[str, Any]:
        info = rt.info()
        return {
            "id": rt.name,
            "object": "model",
            "created": int(rt.loaded_at),
            "owned_by": "opsloop",
            **{k: v for k, v in info.items() if k != "name"},
        }

    @app.get("/v1/models", summary="The served model, in OpenAI's list format")
    async def models() -> Response:
        async with holder.use() as rt:
            return JSONBody({"object": "list", "data": [_model_card(rt)]})

    @app.get("/v1/models/{model_id:path}", summary="The served model, in OpenAI's format")
    async def model(model_id: str) -> Response:
        async with holder.use() as rt:
            if model_id != rt.name:
                raise NotFound(
                    f"the model {model_id!r} is not served here; this server serves {rt.name!r}"
                )
            return JSONBody(_model_card(rt))

    @app.get("/v1/stats", summary="Batching and reload counters of this worker process")
    async def stats() -> Response:
        rt = holder.current
        return JSONBody(
            {
                "pid": os.getpid(),
                "uptime_s": round(time.time() - started, 3),
                "model": None if rt is None else {"name": rt.name, "version": rt.resolved.version},
                "reloads": holder.reloads,
                "failed_reloads": holder.failed_reloads,
                "last_reload_error": holder.last_reload_error,
                **({} if rt is None else rt.stats()),
            }
        )

    app.include_router(predict_router(holder, observers))
    app.include_router(openai_router(holder, observers))
    app.include_router(feedback_router(holder, recorder))
    return app
