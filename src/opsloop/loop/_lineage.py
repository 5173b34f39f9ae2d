"""``check_lineage``: every arrow of a loop run, read back from the rooms that store it.

trace -> annotation        the feedback room's annotations on each replayed trace
annotation -> dataset      the feedback room's export links (``exports``)
dataset -> job run         the datasets room's run inputs of the job's run
job run -> model version   the job's adapter (its source run is the job's, its base v1)
                           merged into v2 (same source run, tagged merged_from)
model version -> eval      evaluation runs tagged with the model and each version,
                           reading the held-out dataset version
eval -> alias move         the registry's ``alias_set`` event of v2, named on v2's
                           evaluation run (only when the gate promoted)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from opsloop.errors import NotFound
from opsloop.loop._improve import GATE_METRIC
from opsloop.loop._loop import LoopReport

ARROWS = (
    "trace->annotation",
    "annotation->dataset",
    "dataset->job_run",
    "job_run->model_version",
    "model_version->evaluation",
    "evaluation->alias_move",
)


class LineageCheck(BaseModel):
    """Which arrows were found (``links``) and which are missing, with why."""

    links: dict[str, int] = Field(default_factory=dict)  # arrow -> how many links were found
    missing: list[str] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def check_lineage(client: Any, report: LoopReport) -> LineageCheck:
    """Read every link of ``report``'s loop back from the store; ``missing`` names the gaps.

    The alias-move arrow is required only when the gate promoted (a refused move
    changes nothing and is recorded on the evaluation run instead).
    """
    art = report.artifacts
    out = LineageCheck()

    def found(arrow: str, n: int, why: str) -> None:
        out.links[arrow] = n
        if n == 0:
            out.missing.append(f"{arrow}: {why}")

    fb = client.feedback
    annotated = 0
    for trace_id in art.traces:
        ids = {a.id for a in fb.list(trace_id=trace_id)}
        annotated += bool(ids & set(art.annotations))
    n_traces = len(art.traces)
    found(
        "trace->annotation",
        annotated if annotated == n_traces else 0,
        f"{n_traces - annotated} of {n_traces} traces have no annotation of the loop",
    )

    links = fb.exports(dataset_version_id=art.dataset_version_id) if art.dataset_version_id else []
    exported = {x.annotation_id for x in links} & set(art.annotations)
    traced = {x.trace_id for x in links} & set(art.traces)
    found(
        "annotation->dataset",
        len(exported) if traced == set(art.traces) else 0,
        f"the dataset version {art.dataset_version_id or '(none)'} links "
        f"{len(traced)} of {n_traces} traces",
    )

    inputs = client.datasets.run_inputs(art.job_run_id) if art.job_run_id else []
    found(
        "dataset->job_run",
        sum(i.dataset_version_id == art.dataset_version_id for i in inputs),
        f"the job run {art.job_run_id or '(none)'} did not read {art.dataset}",
    )

    n = 0
    if art.v2 is not None and art.adapter:
        lin = client.registry.lineage(art.model, art.v2)
        merged = client.registry.get_version(art.model, art.v2)
        adapter = client.registry.resolve(art.adapter)
        n = int(
            lin.run is not None
            and lin.run.run_id == art.job_run_id
            and adapter.source_run_id == art.job_run_id
            and merged.tags.get("opsloop.finetune.merged_from") == art.adapter
            and adapter.metadata.get("base_model") == f"models:/{art.model}/{art.v1}"
        )
    found(
        "job_run->model_version",
        n,
        f"{art.model} v{art.v2} does not come from job run {art.job_run_id} on v{art.v1}",
    )

    n = 0
    for run_id, version in ((art.eval_run_v1, art.v1), (art.eval_run_v2, art.v2)):
        if not run_id:
            continue
        run = client.get_run(run_id)
        tags = run.tags
        reads = {f"{i.dataset_name}@{i.version}" for i in client.datasets.run_inputs(run_id)}
        n += int(
            tags.get("opsloop.eval.model") == art.model
            and tags.get("opsloop.eval.model_version") == str(version)
            and art.heldout_dataset in reads
        )
    found(
        "model_version->evaluation",
        n if n == 2 else 0,
        "both versions need an evaluation run tagged with them that read the held-out set",
    )

    run2 = client.get_run(art.eval_run_v2) if art.eval_run_v2 else None
    if report.promoted:
        event = None
        if art.alias_event_id is not None and art.v2 is not None:
            event = next(
                (
                    e
                    for e in client.registry.history(art.model, version=art.v2, limit=100)
                    if e.id == art.alias_event_id and e.action == "alias_set"
                ),
                None,
            )
        named = run2 is not None and run2.tags.get("opsloop.loop.alias_event") == str(
            art.alias_event_id
        )
        found(
            "evaluation->alias_move",
            int(event is not None and named),
            f"no alias_set event {art.alias_event_id} of v{art.v2} named by its evaluation",
        )
    else:
        gated = run2 is not None and run2.tags.get("opsloop.loop.promoted") == "false"
        metric = run2 is not None and GATE_METRIC in _metric_keys(client, art.eval_run_v2)
        found(
            "evaluation->alias_move",
            int(gated and metric),
            "a refused move must be recorded on v2's evaluation run with the gate's metric",
        )
    return out


def _metric_keys(client: Any, run_id: str) -> set[str]:
    try:
        return set(client.get_run(run_id).metrics)
    except NotFound:
        return set()
