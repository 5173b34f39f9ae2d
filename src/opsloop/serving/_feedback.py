"""End-user feedback on a model server: every answer carries an id, ``POST /v1/feedback`` scores it.

Predict answers carry the id in the ``X-Opsloop-Response-Id`` header (the body
keeps its ``{"predictions": [...]}`` shape); OpenAI-compatible answers carry
it as their ``id`` (``chatcmpl-...``, ``cmpl-...``) and in the same header.
``POST /v1/feedback`` records an annotation on that served prediction in the
store the server's settings name (its home's database, or the server at
``tracking_uri``), through the feedback room's SDK, so the score is checked
against its definition as anywhere else.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import Field

from opsloop.core import Context
from opsloop.core.web import JSONBody, StrictBody
from opsloop.feedback import Feedback
from opsloop.serving._runtime import ModelHolder
from opsloop.settings import Settings

__all__ = ["RESPONSE_ID_HEADER", "FeedbackRecorder", "feedback_router", "new_response_id"]

RESPONSE_ID_HEADER = "x-opsloop-response-id"
END_USER = "end-user"


def new_response_id(prefix: str = "pred-") -> str:
    """A fresh id for one served answer."""
    return prefix + uuid.uuid4().hex[:24]


class ServedFeedback(StrictBody):
    response_id: str = Field(min_length=1, max_length=128, description="The answer's id.")
    name: str = Field(default="thumbs", min_length=1, max_length=64, description="Score name.")
    value: bool | float | str | None = Field(description="The score's value (thumbs: true/false).")
    comment: str | None = Field(default=None, max_length=20_000)
    correction: str | None = Field(default=None, max_length=100_000)
    user: str | None = Field(
        default=None, max_length=200, description="The end user (one annotation per user)."
    )
    key: str | None = Field(default=None, max_length=256, description="Upsert key for retries.")
    metadata: dict[str, Any] | None = None


class FeedbackRecorder:
    """The feedback SDK on the server's settings, opened on first use, closed with the app."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context: Context | None = None
        self._lock = threading.Lock()

    def feedback(self) -> Feedback:
        with self._lock:
            if self._context is None:
                self._context = Context(self._settings)
            return self._context.room(Feedback)

    def close(self) -> None:
        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            context.close()


def feedback_router(holder: ModelHolder, recorder: FeedbackRecorder) -> APIRouter:
    router = APIRouter(tags=["feedback"])

    @router.post("/v1/feedback", status_code=201, summary="Feedback on a served answer")
    async def post_feedback(body: ServedFeedback) -> Response:
        rt = holder.current
        meta: dict[str, Any] = dict(body.metadata or {})
        if rt is not None:
            meta.setdefault("model", rt.name)
            meta.setdefault("model_version", rt.resolved.version)
        a = await run_in_threadpool(
            lambda: recorder.feedback().annotate(
                body.name,
                body.value,
                prediction_id=body.response_id,
                comment=body.comment,
                correction=body.correction,
                source="human",
                author=f"{END_USER}:{body.user}" if body.user else END_USER,
                key=body.key,
                metadata=meta,
            )
        )
        return JSONBody(
            {
                "id": a.id,
                "response_id": a.prediction_id,
                "name": a.name,
                "value": a.value,
                "author": a.author,
            },
            status_code=201,
        )

    return router
