"""Lineage: which runs read which dataset versions, and which versions derive from which.

``run_inputs`` rows link a run to a dataset version in a context (``train``,
``eval``...); a version's ``parent_version_id`` links it to its source (a
split). Each function is one transaction.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.datasets._queries import VERSION_SELECT, info_fields, resolve
from opsloop.datasets._tables import dataset_versions, datasets
from opsloop.datasets._tables import run_inputs as inputs_table
from opsloop.datasets.entities import DatasetVersionInfo, RunInput, VersionRun
from opsloop.errors import InvalidArgument, NotFound
from opsloop.store import Database, now_ms
from opsloop.tracking import runs_table as runs

CONTEXT_RE = re.compile(r"^[A-Za-z0-9][\w.\-]{0,63}$")


def children(db: Database, ref: str) -> list[DatasetVersionInfo]:
    """Versions derived from this one (splits), across datasets."""
    with db.read() as conn:
        vid = resolve(conn, ref).id
        rows = conn.execute(
            VERSION_SELECT.where(dataset_versions.c.parent_version_id == vid).order_by(
                datasets.c.name, dataset_versions.c.version
            )
        ).all()
    return [DatasetVersionInfo(**info_fields(r)) for r in rows]


def log_input(db: Database, run_id: str, ref: str, context: str = "train") -> RunInput:
    """Record that a run read a version (again is a no-op)."""
    if not isinstance(context, str) or not CONTEXT_RE.match(context):
        raise InvalidArgument(
            f"input context {context!r} must be a short word (letters, digits, '_', '-', '.')"
        )
    with db.write() as conn:
        require_run(conn, run_id)
        v = resolve(conn, ref)
        exists = conn.execute(
            sa.select(inputs_table.c.created_at).where(
                inputs_table.c.run_id == run_id,
                inputs_table.c.dataset_version_id == v.id,
                inputs_table.c.context == context,
            )
        ).first()
        ts = exists.created_at if exists else now_ms()
        if exists is None:
            conn.execute(
                inputs_table.insert().values(
                    run_id=run_id, dataset_version_id=v.id, context=context, created_at=ts
                )
            )
    return RunInput(
        run_id=run_id,
        dataset_version_id=v.id,
        dataset_name=v.dataset_name,
        version=v.version,
        context=context,
        created_at=ts,
    )


def require_run(conn: Connection, run_id: Any) -> None:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 32:
        raise InvalidArgument(f"not a run id: {run_id!r}")
    row = conn.execute(sa.select(runs.c.lifecycle_stage).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist", details={"run_id": run_id})


def run_inputs(db: Database, run_id: str) -> list[RunInput]:
    """The dataset versions a run read."""
    with db.read() as conn:
        require_run(conn, run_id)
        rows = conn.execute(
            sa.select(
                inputs_table,
                datasets.c.name.label("dataset_name"),
                dataset_versions.c.version,
            )
            .join(dataset_versions, dataset_versions.c.id == inputs_table.c.dataset_version_id)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(inputs_table.c.run_id == run_id)
            .order_by(inputs_table.c.created_at, datasets.c.name, inputs_table.c.context)
        ).all()
    return [
        RunInput(
            run_id=r.run_id,
            dataset_version_id=r.dataset_version_id,
            dataset_name=r.dataset_name,
            version=r.version,
            context=r.context,
            created_at=r.created_at,
        )
        for r in rows
    ]


def version_runs(db: Database, ref: str, *, include_deleted: bool = False) -> list[VersionRun]:
    """The runs that read a version."""
    with db.read() as conn:
        vid = resolve(conn, ref).id
        q = (
            sa.select(
                inputs_table.c.run_id,
                inputs_table.c.context,
                inputs_table.c.created_at,
                runs.c.name,
                runs.c.experiment_id,
                runs.c.status,
            )
            .join(runs, runs.c.id == inputs_table.c.run_id)
            .where(inputs_table.c.dataset_version_id == vid)
            .order_by(inputs_table.c.created_at, inputs_table.c.run_id)
        )
        if not include_deleted:
            q = q.where(runs.c.lifecycle_stage == "active")
        rows = conn.execute(q).all()
    return [
        VersionRun(
            run_id=r.run_id,
            run_name=r.name,
            experiment_id=r.experiment_id,
            status=r.status,
            context=r.context,
            created_at=r.created_at,
        )
        for r in rows
    ]
