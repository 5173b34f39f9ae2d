"""Experiments: create, read, rename, tag, delete and restore (one transaction each)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyExists, InvalidArgument, NotFound
from opsloop.store import Database, now_ms, upsert
from opsloop.tracking import _validation as V
from opsloop.tracking._goals import check_goal, check_goal_tag, goal_tag
from opsloop.tracking._sql import _SEL_EXPERIMENT, new_id
from opsloop.tracking._tables import (
    experiment_tags,
    experiments,
    runs,
)
from opsloop.tracking.entities import (
    Experiment,
)


class ExperimentOps:
    """The experiment half of ``TrackingService``; the base of the other parts."""

    db: Database

    def _experiment_from_row(
        self, conn: Connection, row: Any, run_count: int | None = None
    ) -> Experiment:
        tags = {
            r.key: r.value
            for r in conn.execute(
                sa.select(experiment_tags).where(experiment_tags.c.experiment_id == row.id)
            )
        }
        return Experiment(
            id=row.id,
            name=row.name,
            description=row.description,
            lifecycle_stage=row.lifecycle_stage,
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=tags,
            run_count=run_count,
        )

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        V.check_name("experiment name", name)
        if not isinstance(description, str) or len(description) > V.MAX_NOTES:
            raise InvalidArgument(
                "experiment description must be a string of at most 100000 characters"
            )
        tag_rows = {V.check_key("tag", k): V.tag_value(v) for k, v in (tags or {}).items()}
        for k, v in tag_rows.items():
            check_goal_tag(k, v)
        ts = now_ms()
        eid = new_id()
        try:
            with self.db.write() as conn:
                if conn.execute(
                    sa.select(experiments.c.id).where(experiments.c.name == name)
                ).first():
                    raise AlreadyExists(
                        f"experiment {name!r} already exists", details={"name": name}
                    )
                conn.execute(
                    experiments.insert().values(
                        id=eid,
                        name=name,
                        description=description,
                        lifecycle_stage="active",
                        created_at=ts,
                        updated_at=ts,
                    )
                )
                if tag_rows:
                    conn.execute(
                        experiment_tags.insert(),
                        [{"experiment_id": eid, "key": k, "value": v} for k, v in tag_rows.items()],
                    )
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(
                f"experiment {name!r} already exists", details={"name": name}
            ) from exc
        return self.get_experiment(eid)

    def get_experiment(self, experiment_id: str) -> Experiment:
        V.check_id("experiment id", experiment_id)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(experiments).where(experiments.c.id == experiment_id)
            ).first()
            if row is None:
                raise NotFound(
                    f"experiment {experiment_id!r} does not exist",
                    details={"experiment_id": experiment_id},
                )
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(runs)
                .where(runs.c.experiment_id == experiment_id, runs.c.lifecycle_stage == "active")
            ).scalar_one()
            return self._experiment_from_row(conn, row, count)

    def get_experiment_by_name(self, name: str) -> Experiment:
        V.check_name("experiment name", name)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(experiments.c.id).where(experiments.c.name == name)
            ).first()
        if row is None:
            raise NotFound(f"experiment {name!r} does not exist", details={"name": name})
        return self.get_experiment(row.id)

    def get_or_create_experiment(self, name: str) -> Experiment:
        try:
            return self.get_experiment_by_name(name)
        except NotFound:
            try:
                return self.create_experiment(name)
            except AlreadyExists:
                return self.get_experiment_by_name(name)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        with self.db.read() as conn:
            q = sa.select(experiments).order_by(experiments.c.created_at, experiments.c.name)
            if not include_deleted:
                q = q.where(experiments.c.lifecycle_stage == "active")
            rows = conn.execute(q).all()
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(runs.c.experiment_id, sa.func.count())
                    .where(runs.c.lifecycle_stage == "active")
                    .group_by(runs.c.experiment_id)
                ).all()
            )
            tags: dict[str, dict[str, str]] = defaultdict(dict)
            for r in conn.execute(sa.select(experiment_tags)):
                tags[r.experiment_id][r.key] = r.value
            return [
                Experiment(
                    id=r.id,
                    name=r.name,
                    description=r.description,
                    lifecycle_stage=r.lifecycle_stage,
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    tags=tags.get(r.id, {}),
                    run_count=counts.get(r.id, 0),
                )
                for r in rows
            ]

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment:
        V.check_id("experiment id", experiment_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = V.check_name("experiment name", name)
        if description is not None:
            if not isinstance(description, str) or len(description) > V.MAX_NOTES:
                raise InvalidArgument(
                    "experiment description must be a string of at most 100000 characters"
                )
            values["description"] = description
        if values:
            values["updated_at"] = now_ms()
            try:
                with self.db.write() as conn:
                    self._require_experiment(conn, experiment_id)
                    if (
                        name is not None
                        and conn.execute(
                            sa.select(experiments.c.id).where(
                                experiments.c.name == name, experiments.c.id != experiment_id
                            )
                        ).first()
                    ):
                        raise AlreadyExists(
                            f"experiment {name!r} already exists", details={"name": name}
                        )
                    conn.execute(
                        experiments.update()
                        .where(experiments.c.id == experiment_id)
                        .values(**values)
                    )
            except sa.exc.IntegrityError as exc:
                raise AlreadyExists(f"experiment {name!r} already exists") from exc
        return self.get_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        V.check_id("experiment id", experiment_id)
        row = {
            "experiment_id": experiment_id,
            "key": V.check_key("tag", key),
            "value": V.tag_value(value),
        }
        check_goal_tag(row["key"], row["value"])
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id)
            upsert(conn, experiment_tags, [row], ["experiment_id", "key"], ["value"])

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove one tag of an active experiment (``NotFound`` if it has no such tag)."""
        V.check_id("experiment id", experiment_id)
        V.check_key("tag", key)
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id)
            res = conn.execute(
                experiment_tags.delete().where(
                    experiment_tags.c.experiment_id == experiment_id, experiment_tags.c.key == key
                )
            )
            if res.rowcount == 0:
                raise NotFound(f"experiment {experiment_id!r} has no tag {key!r}")

    def set_metric_goal(self, experiment_id: str, key: str, goal: str) -> None:
        """Whether metric ``key`` is better high (``maximize``) or low (``minimize``) in
        this experiment's runs; comparisons pick the best run by it. Stored as the
        experiment tag ``opsloop.goal.<key>``; without one the goal is inferred from
        the name (``_goals.infer_goal``)."""
        self.set_experiment_tag(experiment_id, goal_tag(key), check_goal(goal))

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its runs (restorable)."""
        self._set_experiment_stage(experiment_id, "deleted")

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, "active")

    def _set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        V.check_id("experiment id", experiment_id)
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id, active_only=False)
            conn.execute(
                experiments.update()
                .where(experiments.c.id == experiment_id)
                .values(lifecycle_stage=stage, updated_at=now_ms())
            )
            conn.execute(
                runs.update()
                .where(runs.c.experiment_id == experiment_id)
                .values(lifecycle_stage=stage)
            )

    def _require_experiment(
        self, conn: Connection, experiment_id: str, *, active_only: bool = True
    ) -> Any:
        row = conn.execute(_SEL_EXPERIMENT, {"id": experiment_id}).first()
        if row is None or (active_only and row.lifecycle_stage != "active"):
            raise NotFound(
                f"experiment {experiment_id!r} does not exist",
                details={"experiment_id": experiment_id},
            )
        return row
