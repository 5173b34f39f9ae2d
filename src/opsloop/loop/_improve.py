"""The loop's second half, stage by stage: feedback to data, fine-tune, evaluate, gate.

``run_loop`` calls these after replaying its questions; the shipped workflow
``opsloop.workflows.shipped:feedback_loop`` calls them on feedback that real
users left, one step each. Each takes a client with the rooms' properties
(``opsloop.Client``, or ``LoopClient(context)`` inside a room) and leaves its
artifact in the room that owns it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from opsloop.core import Context
from opsloop.datasets import Datasets
from opsloop.errors import InvalidArgument, PromotionRefused
from opsloop.evaluation import Evaluation
from opsloop.feedback import Feedback
from opsloop.finetune import Finetune
from opsloop.registry import Registry
from opsloop.tracing import Tracing
from opsloop.tracking import Tracking

QUALITY_METRIC = "contains"
GAIN_METRIC = "loop_gain"
#: The gate: the lower bound of the paired bootstrap interval of the gain must be above
#: zero (a gate ``min`` is inclusive, so the bound is the smallest step above zero).
GATE_METRIC = "loop_gain_ci_low"
GATE_MIN = 1e-9

Notify = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    return None


class LoopClient(Tracking):
    """Tracking plus the rooms the loop uses, on one context: what ``opsloop.Client`` offers,
    for code inside the rooms layer (the shipped workflows) that cannot import the SDK."""

    @cached_property
    def datasets(self) -> Datasets:
        return self.context.room(Datasets)

    @cached_property
    def evaluation(self) -> Evaluation:
        return self.context.room(Evaluation)

    @cached_property
    def feedback(self) -> Feedback:
        return self.context.room(Feedback)

    @cached_property
    def finetune(self) -> Finetune:
        return self.context.room(Finetune)

    @cached_property
    def registry(self) -> Registry:
        return self.context.room(Registry)

    @cached_property
    def tracing(self) -> Tracing:
        return self.context.room(Tracing)


def loop_client(context: Context) -> LoopClient:
    """The context's tracking client as a ``LoopClient`` (one per context)."""
    client = LoopClient(context)
    context.provide(Tracking, client)
    return client


class Tuned(BaseModel):
    """A fine-tuning stage's result: the job, its adapter and the merged version."""

    job_id: str
    job_run_id: str
    adapter: str  # models:/MODEL-sft/N
    version: int  # the adapter merged into MODEL


class Compared(BaseModel):
    """Both versions evaluated on the same held-out rows, and the paired comparison."""

    eval_run_v1: str
    eval_run_v2: str
    v1_quality: float
    v2_quality: float
    v1_token_f1: float | None = None
    v2_token_f1: float | None = None
    gain: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    wins: int = 0
    losses: int = 0
    ties: int = 0


class Decision(BaseModel):
    """What the gate decided about moving the alias to the new version."""

    promoted: bool
    decision: str
    alias_event_id: int | None = None


def rag_pipeline(
    client: Any,
    model: str,
    version: int,
    *,
    index: str,
    k: int,
    max_tokens: int,
    cache_dir: Any = None,
) -> Any:
    """The retrieval pipeline (``rag_qa``) on ``models:/MODEL/VERSION``, traced on ``client``."""
    from opsloop.pipelines import rag_qa  # lazy: loads the LLM stack

    p = rag_qa(index, f"models:/{model}/{version}", k=k, max_tokens=max_tokens,
               name=f"{model}-v{version}")  # fmt: skip
    p.configure(
        client=client, tracer=client.tracing.tracer, home=client.settings.home, cache_dir=cache_dir
    )
    return p


def finetune_version(
    client: Any,
    model: str,
    v1: int,
    dataset: str,
    spec: dict[str, Any],
    *,
    cache_dir: Any = None,
    description: str = "",
    notify: Notify = _quiet,
) -> Tuned:
    """A LoRA SFT job on ``models:/MODEL/V1`` over ``dataset``; its adapter merged into the
    next version of ``model`` (so one alias of one model moves under its gate)."""
    total_steps = int(spec["max_steps"])
    notify("finetune", 0, total_steps)
    job = client.finetune.run(
        {
            **spec,
            "method": "sft",
            "base_model": f"models:/{model}/{v1}",
            "dataset": dataset,
            "output_model": f"{model}-sft",
            "cache_dir": None if cache_dir is None else str(cache_dir),
        },
        progress=lambda step, total, metrics: notify("finetune", step, total),
    )
    if job.state != "succeeded" or not job.result_uri:
        raise InvalidArgument(
            f"the fine-tuning job {job.id} ended {job.state}: {job.error or 'no adapter'}",
            details={"job_id": job.id},
        )
    merged = client.finetune.merge(
        job.result_uri, model, cache_dir=cache_dir,
        description=description or f"{job.result_uri} merged into v{v1}",
    )  # fmt: skip
    return Tuned(
        job_id=job.id, job_run_id=job.run_id or "", adapter=job.result_uri,
        version=int(merged.version),
    )  # fmt: skip


def evaluate_versions(
    client: Any,
    model: str,
    versions: tuple[int, int],
    heldout: str,
    pipeline: Callable[[int], Any],
    *,
    rows: int,
    n_bootstrap: int = 1000,
    seed: int = 0,
    tags: dict[str, str] | None = None,
    notify: Notify = _quiet,
) -> Compared:
    """Both versions' pipelines on dataset ``heldout`` (``rows`` rows), compared with a paired
    bootstrap on ``contains``; the gain and its interval are logged on the second's run."""
    done, n_eval = [0], 2 * rows

    def tick(*_: Any) -> None:
        done[0] += 1
        notify("evaluate", min(done[0], n_eval), n_eval)

    results = {}
    for version in versions:
        res = client.evaluation.evaluate(
            pipeline(version), heldout, metrics=[QUALITY_METRIC, "token_f1"],
            target_column="answer", name=f"loop {model}/{version} held-out",
            n_bootstrap=n_bootstrap, seed=seed, progress=tick, output_key="answer",
        )  # fmt: skip
        client.set_tags(
            res.run_id,
            {"opsloop.eval.model": model, "opsloop.eval.model_version": str(version),
             **(tags or {})},
        )  # fmt: skip
        results[version] = res
    r1, r2 = (results[v] for v in versions)
    cmp = client.evaluation.compare(
        [r1.run_id, r2.run_id], metric=QUALITY_METRIC, n_bootstrap=n_bootstrap, seed=seed
    )
    c = cmp.candidates[1]
    gain_metrics = {GAIN_METRIC: c.delta}
    if c.delta_ci_low is not None:
        gain_metrics[GATE_METRIC] = c.delta_ci_low
    if c.delta_ci_high is not None:
        gain_metrics["loop_gain_ci_high"] = c.delta_ci_high
    client.log_metrics(r2.run_id, gain_metrics)
    client.flush(r2.run_id)
    return Compared(
        eval_run_v1=r1.run_id, eval_run_v2=r2.run_id,
        v1_quality=float(r1.metrics[QUALITY_METRIC]), v2_quality=float(r2.metrics[QUALITY_METRIC]),
        v1_token_f1=r1.metrics.get("token_f1"), v2_token_f1=r2.metrics.get("token_f1"),
        gain=float(c.delta), ci_low=c.delta_ci_low, ci_high=c.delta_ci_high,
        p_value=c.p_value_bootstrap, wins=c.wins, losses=c.losses, ties=c.ties,
    )  # fmt: skip


def gate_and_promote(
    client: Any, model: str, alias: str, version: int, compared: Compared
) -> Decision:
    """Require ``loop_gain_ci_low`` above zero on ``alias``, then try to move it to ``version``;
    a refusal is a decision (nothing moves), not an error."""
    client.evaluation.set_gate(model, [{"metric": GATE_METRIC, "min": GATE_MIN}], aliases=[alias])
    reg = client.registry
    try:
        reg.set_alias(model, alias, version)
    except PromotionRefused as exc:
        decision = Decision(promoted=False, decision=str(exc))
    else:
        event = next(
            (e for e in reg.history(model, version=version, limit=20) if e.action == "alias_set"),
            None,
        )
        low = compared.ci_low
        decision = Decision(
            promoted=True,
            decision=(
                f"the gain's lower bound {low:.3f} is above 0: {alias!r} moved to v{version}"
                if low is not None
                else f"{alias!r} moved to v{version}"
            ),
            alias_event_id=None if event is None else event.id,
        )
    client.set_tags(
        compared.eval_run_v2,
        {"opsloop.loop.promoted": str(decision.promoted).lower(),
         **({"opsloop.loop.alias_event": str(decision.alias_event_id)}
            if decision.alias_event_id is not None else {})},
    )  # fmt: skip
    return decision
