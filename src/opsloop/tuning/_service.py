"""Tuning logic over the database: the study registry and study summaries.

Summaries are read from opsloop runs (the study's parent run and one child
run per trial), never from Optuna's storage, so the server answers them
without Optuna and for studies whose Optuna storage lives on the client.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from opsloop.errors import Conflict, InvalidArgument, NotFound
from opsloop.store import Database, now_ms
from opsloop.tracking import TrackingService
from opsloop.tracking.entities import Run, RunStatus
from opsloop.tuning._pareto import non_dominated
from opsloop.tuning._space import Categorical, Float, Int, check_space, space_to_dict
from opsloop.tuning._spec import check_directions
from opsloop.tuning._tables import tuning_studies
from opsloop.tuning.entities import ParetoPoint, StudyInfo, StudySummary, TrialInfo

# Tags on a study's runs. Part of the contract with the UI: never rename.
TAG_ROLE = "opsloop.tuning.role"  # "study" on the parent run, "trial" on each child
TAG_STUDY = "opsloop.tuning.study"  # the study name, on both
TAG_TRIAL = "opsloop.tuning.trial"  # the trial number
TAG_STATE = "opsloop.tuning.state"  # RUNNING, COMPLETE, PRUNED, FAIL
TAG_ERROR = "opsloop.tuning.error"  # why a trial failed
TAG_VALUES = "opsloop.tuning.values"  # a trial's objective values, JSON, exactly as Optuna got them
TAG_PARAMS = "opsloop.tuning.params"  # a finished trial's params, JSON, with their types
TAG_OWNER = "opsloop.tuning.owner"  # host:pid:start time of the process running a trial
from opsloop.tuning.entities import INTERMEDIATE  # noqa: E402  (re-exported for callers)

_NAME_RE = re.compile(r"^[A-Za-z0-9_][\w\-.:@ ]{0,199}$")
MAX_SUMMARY_TRIALS = 50_000


def check_study_name(name: Any) -> str:
    """Study names are used in URLs and file names: letters, digits, ``_ - . : @`` and spaces."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name != name.strip():
        raise InvalidArgument(
            f"study name {name!r} must be 1-200 characters of letters, digits, '_', '-', '.', "
            "':', '@' and inner spaces, starting with a letter, digit or '_'",
            details={"name": str(name)[:200]},
        )
    return name


def _info(row: Any) -> StudyInfo:
    return StudyInfo(
        id=row.id,
        name=row.name,
        experiment_id=row.experiment_id,
        run_id=row.run_id,
        directions=list(row.directions),
        objectives=list(row.objectives),
        space=dict(row.space_json or {}),
        storage=row.storage or "",
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by or "",
    )


def typed_params(params: Mapping[str, str], space: Mapping[str, Any]) -> dict[str, Any]:
    """Run params (stored as text) turned back into the space's types where it says them."""
    try:
        dims = check_space(space)
    except InvalidArgument:
        dims = {}
    out: dict[str, Any] = {}
    for k, text in params.items():
        d = dims.get(k)
        try:
            if isinstance(d, Float):
                out[k] = float(text)
            elif isinstance(d, Int):
                out[k] = int(text)
            elif isinstance(d, Categorical):
                out[k] = next((c for c in d.choices if str(c) == text), text)
            else:
                out[k] = text
        except ValueError:
            out[k] = text
    return out


class TuningService:
    """The study registry and summaries; one transaction per public call."""

    def __init__(self, db: Database, tracking: TrackingService | None = None) -> None:
        self.db = db
        self.tracking = tracking or TrackingService(db)

    # ------------------------------------------------------------------ registry

    def _row(self, conn: Any, name: str) -> Any:
        return conn.execute(sa.select(tuning_studies).where(tuning_studies.c.name == name)).first()

    def get_study(self, name: str) -> StudyInfo:
        check_study_name(name)
        with self.db.read() as conn:
            row = self._row(conn, name)
        if row is None:
            raise NotFound(f"study {name!r} does not exist", details={"name": name})
        return _info(row)

    def list_studies(self, experiment_id: str | None = None) -> list[StudyInfo]:
        q = sa.select(tuning_studies).order_by(tuning_studies.c.created_at, tuning_studies.c.name)
        if experiment_id is not None:
            q = q.where(tuning_studies.c.experiment_id == experiment_id)
        with self.db.read() as conn:
            return [_info(r) for r in conn.execute(q)]

    def register_study(
        self,
        name: str,
        *,
        experiment_id: str,
        directions: Sequence[str],
        objectives: Sequence[str] | None,
        space: Mapping[str, Any] | None = None,
        storage: str = "",
        user: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> tuple[StudyInfo, bool]:
        """Get the study named ``name`` or create it with a parent run; ``(study, created)``.

        An existing study must optimise the same directions and objectives
        (``Conflict`` otherwise); its space and storage are updated to this
        session's. A study whose parent run was purged gets a new one.
        """
        check_study_name(name)
        dirs, objs = check_directions(list(directions), objectives)
        space_json = space_to_dict(check_space(space or {}))
        try:
            orjson.dumps(space_json)  # as the API answers it: integers within 64 bits
        except TypeError as exc:
            raise InvalidArgument(f"the space must be plain JSON: {exc}") from None
        if not isinstance(storage, str) or len(storage) > 1024:
            raise InvalidArgument("storage must be a string of at most 1024 characters")
        for _ in range(3):  # a lost race to create the same study is retried as a "get"
            with self.db.read() as conn:
                row = self._row(conn, name)
            if row is not None:
                if list(row.directions) != dirs or list(row.objectives) != objs:
                    raise Conflict(
                        f"study {name!r} already exists optimising "
                        f"{_describe(row.directions, row.objectives)}, not {_describe(dirs, objs)}",
                        details={
                            "directions": list(row.directions),
                            "objectives": list(row.objectives),
                        },
                    )
                return self._refresh(row, space_json, storage, tags, user), False
            run = self._parent_run(name, experiment_id, dirs, objs, tags, user)
            try:
                ts = now_ms()
                with self.db.write() as conn:
                    conn.execute(
                        tuning_studies.insert().values(
                            id=run.id,
                            name=name,
                            experiment_id=experiment_id,
                            run_id=run.id,
                            directions=dirs,
                            objectives=objs,
                            space_json=space_json,
                            storage=storage,
                            created_at=ts,
                            updated_at=ts,
                            created_by=str(user or "")[:256],
                        )
                    )
                return self.get_study(name), True
            except sa.exc.IntegrityError:
                self.tracking.delete_run(run.id, purge=True)
        raise Conflict(f"study {name!r} is being created concurrently; try again")

    def _parent_run(
        self,
        name: str,
        experiment_id: str,
        dirs: list[str],
        objs: list[str],
        tags: Mapping[str, Any] | None,
        user: str,
    ) -> Run:
        return self.tracking.create_run(
            experiment_id,
            name=name,
            params={"directions": ",".join(dirs), "objectives": ",".join(objs)},
            tags={**dict(tags or {}), TAG_ROLE: "study", TAG_STUDY: name},
            user=user,
        )

    def _refresh(
        self,
        row: Any,
        space_json: dict[str, Any],
        storage: str,
        tags: Mapping[str, Any] | None,
        user: str,
    ) -> StudyInfo:
        run_id = row.run_id
        if run_id is not None:
            try:
                run = self.tracking.get_run(run_id)
                if run.lifecycle_stage != "active":
                    run_id = None
            except NotFound:
                run_id = None
        values: dict[str, Any] = {"updated_at": now_ms(), "storage": storage or row.storage}
        if space_json:
            values["space_json"] = space_json
        if run_id is None:
            run = self._parent_run(
                row.name, row.experiment_id, list(row.directions), list(row.objectives), tags, user
            )
            values["run_id"] = run.id
        with self.db.write() as conn:
            conn.execute(
                tuning_studies.update().where(tuning_studies.c.id == row.id).values(**values)
            )
        return self.get_study(row.name)

    def delete_study(self, name: str) -> None:
        """Forget a study (its runs stay; Optuna's storage is the SDK's to clean)."""
        check_study_name(name)
        with self.db.write() as conn:
            if (
                conn.execute(tuning_studies.delete().where(tuning_studies.c.name == name)).rowcount
                == 0
            ):
                raise NotFound(f"study {name!r} does not exist", details={"name": name})

    # ------------------------------------------------------------------ summaries

    def trial_runs(self, study: StudyInfo) -> list[Run]:
        """The study's trial runs (children of its parent run), any status."""
        if study.run_id is None:
            return []
        page = self.tracking.search_runs(
            [study.experiment_id],
            parent_run_id=study.run_id,
            max_results=MAX_SUMMARY_TRIALS,
            with_total=False,
        )
        return page.runs

    def summary(self, name: str) -> StudySummary:
        study = self.get_study(name)
        return summarize(study, self.trial_runs(study))


def _describe(dirs: Sequence[str], objs: Sequence[str]) -> str:
    return ", ".join(f"{d} {o}" for d, o in zip(dirs, objs, strict=True))


def trial_from_run(run: Run, study: StudyInfo) -> TrialInfo | None:
    """The trial a child run records, or None when the run is not a trial of a study."""
    number = run.tags.get(TAG_TRIAL)
    if number is None or not number.lstrip("-").isdigit():
        return None
    state = run.tags.get(TAG_STATE) or ("RUNNING" if run.status == RunStatus.RUNNING else "FAIL")
    values: list[float | None] | None = None
    if state == "COMPLETE" and TAG_VALUES in run.tags:
        try:
            loaded = json.loads(run.tags[TAG_VALUES])
            values = [None if v is None else float(v) for v in loaded][: len(study.objectives)]
        except (ValueError, TypeError):
            values = None
    if state == "COMPLETE" and values is None:
        values = []
        for o in study.objectives:
            m = run.metrics.get(o)
            v = None if m is None else m.value
            values.append(v if v is None or math.isfinite(v) else None)
    report = run.metrics.get(INTERMEDIATE + study.objectives[0])
    params = typed_params(run.params, study.space)
    if TAG_PARAMS in run.tags:
        with contextlib.suppress(ValueError, TypeError):
            params.update(json.loads(run.tags[TAG_PARAMS]))
    return TrialInfo(
        number=int(number),
        run_id=run.id,
        state=state,
        params=params,
        values=values,
        start_time=run.start_time,
        end_time=run.end_time,
        last_step=None if report is None else report.step,
    )


def summarize(study: StudyInfo, runs: Sequence[Run]) -> StudySummary:
    """Counts, best trial(s) and Pareto front of a study from its trial runs.

    A trial retried after its process died keeps both runs (the dead one
    says FAIL); when two runs claim one number the later one wins.
    """
    by_number: dict[int, TrialInfo] = {}
    for run in sorted(runs, key=lambda r: (r.start_time, r.id)):
        t = trial_from_run(run, study)
        if t is not None:
            by_number[t.number] = t
    trials = [by_number[n] for n in sorted(by_number)]
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    done = [t for t in trials if t.state == "COMPLETE" and t.values and None not in t.values]
    best: list[TrialInfo] = []
    front: list[ParetoPoint] = []
    if done and len(study.directions) == 1:
        sign = 1.0 if study.directions[0] == "maximize" else -1.0
        best = [max(done, key=lambda t: (sign * t.values[0], -t.number))]  # type: ignore[index,operator]
    elif done:
        vals = [[float(v) for v in t.values] for t in done]  # type: ignore[union-attr, arg-type]
        idx = non_dominated(vals, study.directions)
        front = sorted(
            (
                ParetoPoint(
                    number=done[i].number,
                    run_id=done[i].run_id,
                    values=vals[i],
                    params=done[i].params,
                )
                for i in idx
            ),
            key=lambda p: (p.values[0], p.number),
        )
    return StudySummary(study=study, counts=counts, trials=trials, best=best, pareto_front=front)
