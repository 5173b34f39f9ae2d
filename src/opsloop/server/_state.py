"""What every request handler reaches: settings, database and services, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from opsloop.settings import Settings
from opsloop.store import ArtifactStore, Database
from opsloop.tracking import ArtifactService, TrackingService


@dataclass
class AppState:
    settings: Settings
    db: Database
    store: ArtifactStore
    tracking: TrackingService
    artifacts: ArtifactService

    @classmethod
    def build(cls, settings: Settings, *, create_schema: bool = True) -> AppState:
        from opsloop.store import open_artifact_store

        db = Database(settings.resolved_database_url)
        db.ensure_schema(create_if_empty=create_schema)
        store = open_artifact_store(
            settings.resolved_artifact_uri,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
        )
        return cls(
            settings=settings,
            db=db,
            store=store,
            tracking=TrackingService(db),
            artifacts=ArtifactService(db, store, max_bytes=settings.max_artifact_bytes),
        )


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.opsloop
    return state
