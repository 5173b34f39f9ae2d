"""``run_loop``: serve version 1, replay questions with feedback, fine-tune, evaluate, gate, promote.

Every stage goes through another room's public surface and leaves an
artifact there; the loop run (a tracking run in experiment ``loop``) and the
returned ``LoopReport`` name them all, and ``check_lineage`` walks the links
between them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from opsloop.errors import InvalidArgument, NotFound
from opsloop.evaluation.metrics import get_metric
from opsloop.finetune import JobSpec
from opsloop.loop._improve import (
    GAIN_METRIC,
    GATE_METRIC,
    QUALITY_METRIC,
    evaluate_versions,
    finetune_version,
    gate_and_promote,
    rag_pipeline,
)
from opsloop.registry import bundled_gguf, check_alias, check_model_name

LOOP_EXPERIMENT = "loop"
REFERENCE_AUTHOR = "loop:reference"
STAGES = ("serve", "replay", "feedback", "dataset", "finetune", "evaluate", "gate")

#: What the loop fine-tunes with unless told otherwise: LoRA on every attention and MLP
#: projection of the base, answers only in the loss, prompts as the pipeline builds them.
DEFAULT_TRAINING: dict[str, Any] = {
    "max_steps": 40,
    "batch_size": 4,
    "learning_rate": 5e-4,
    "lora_r": 16,
    "lora_alpha": 32,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "max_length": 1024,
    "checkpoint_every": 1000,
    "logging_steps": 5,
}

Progress = Callable[[str, int, int], None]


class LoopArtifacts(BaseModel):
    """The ids of everything the loop made, in the order it made them."""

    loop_run_id: str
    model: str
    v1: int
    traces: list[str] = Field(default_factory=list)
    annotations: list[str] = Field(default_factory=list)
    dataset_version_id: str = ""
    dataset: str = ""
    heldout_dataset: str = ""
    job_id: str = ""
    job_run_id: str = ""
    adapter: str = ""  # models:/MODEL-sft/N, the job's LoRA adapter
    v2: int | None = None  # the adapter merged into MODEL
    eval_run_v1: str = ""
    eval_run_v2: str = ""
    alias_event_id: int | None = None


class LoopReport(BaseModel):
    """What one loop did: held-out quality of both versions, the paired test, the decision."""

    metric: str = QUALITY_METRIC
    alias: str
    train_questions: int
    heldout_questions: int
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
    promoted: bool
    decision: str  # the gate's words: why it promoted or refused
    stage_seconds: dict[str, float]
    total_seconds: float
    artifacts: LoopArtifacts

    def table(self) -> list[tuple[str, str]]:
        """The report as (label, value) rows, for a console or a markdown table."""

        def f(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        rows = [
            (f"v1 held-out {self.metric}", f(self.v1_quality)),
            (f"v2 held-out {self.metric}", f(self.v2_quality)),
            ("gain (v2 - v1)", f"{self.gain:+.3f}"),
            ("95% paired bootstrap CI", f"[{f(self.ci_low)}, {f(self.ci_high)}]"),
            ("p-value (paired bootstrap)", f(self.p_value)),
            ("wins / losses / ties", f"{self.wins} / {self.losses} / {self.ties}"),
            ("gate", ("promoted" if self.promoted else "refused") + f": {self.decision}"),
        ]
        rows += [(f"time: {k}", f"{v:.1f} s") for k, v in self.stage_seconds.items()]
        rows.append(("time: total", f"{self.total_seconds:.1f} s"))
        return rows


def _rows(rows: Sequence[Mapping[str, Any]], what: str) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(rows):
        q, a = r.get("question"), r.get("answer")
        refs = [a] if isinstance(a, str) else list(a or [])
        if (
            not isinstance(q, str)
            or not q.strip()
            or not refs
            or not all(isinstance(x, str) and x for x in refs)
        ):
            raise InvalidArgument(
                f"{what} row {i} needs a non-empty 'question' and 'answer' (a string or a list "
                "of accepted strings)",
                details={"row": i},
            )
        out.append({"id": str(r.get("id") or f"{what}-{i}"), "question": q, "answer": refs})
    if not out:
        raise InvalidArgument(f"the {what} questions are empty")
    return out


def check_loop_arguments(
    model: str, alias: str, training: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Refuse a bad model name, alias or training setting before anything runs; returns the
    training settings (``DEFAULT_TRAINING`` overridden by ``training``)."""
    check_model_name(model)
    check_model_name(f"{model}-sft")
    check_alias(alias)
    spec = {**DEFAULT_TRAINING, **dict(training or {})}
    try:
        JobSpec(method="sft", base_model=f"models:/{model}/1", dataset=f"{model}-feedback", **spec)
    except ValidationError as exc:
        why = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidArgument(
            f"invalid training settings: {why}",
            details={"training": {k: str(v) for k, v in spec.items()}},
        ) from None
    except TypeError as exc:
        raise InvalidArgument(f"invalid training settings: {exc}") from None
    return spec


def run_loop(
    client: Any,
    *,
    train: Sequence[Mapping[str, Any]],
    heldout: Sequence[Mapping[str, Any]],
    index: str,
    model: str = "docs-qa-llm",
    alias: str = "prod",
    base: str | None = None,
    base_options: Mapping[str, Any] | None = None,
    k: int = 3,
    max_tokens: int = 64,
    training: Mapping[str, Any] | None = None,
    correction: Callable[[Mapping[str, Any]], str] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    cache_dir: Any = None,
    progress: Progress | None = None,
) -> LoopReport:
    """Close the loop once on ``model``; returns the report (a refusal is a report, not an error).

    1. **serve**: version 1 of ``model`` is the holder of ``alias``, else ``base`` (default:
       the bundled SmolLM2 GGUF) is registered as a new version and gets ``alias``.
    2. **replay**: each ``train`` question goes through the retrieval pipeline (``rag_qa``
       over vector ``index``, ``k`` chunks, ``max_tokens``) on ``models:/MODEL/V1``, one
       trace each.
    3. **feedback**: code-sourced annotations on each trace from its reference answers:
       ``thumbs`` (the answer contains a reference) and a ``correction`` (``correction(row)``,
       default the first reference; ``row`` also carries the ``prompt`` the model saw and
       the ``response`` it gave) carrying the prompt the model saw.
    4. **dataset**: the feedback exported as an SFT dataset version (``MODEL-feedback``).
    5. **finetune**: a LoRA SFT job on v1 (``training`` overrides ``DEFAULT_TRAINING``);
       its adapter (``MODEL-sft``, pinned to v1) is merged into v1 and registered as the
       next version of ``model`` (its source run is the job's run).
    6. **evaluate**: both versions' pipelines on the ``heldout`` questions (a dataset
       version ``MODEL-heldout``), compared with a paired bootstrap on ``contains``.
    7. **gate**: the model's promotion gate requires ``loop_gain_ci_low`` above zero;
       moving ``alias`` to v2 either passes it (promoted) or is refused (nothing moves).
    """
    spec = check_loop_arguments(model, alias, training)
    train_rows = _rows(train, "train")
    held_rows = _rows(heldout, "heldout")
    fix = correction or (lambda r: str(r["answer"][0]))
    notify = progress or (lambda stage, done, total: None)
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()

    exp = client.get_or_create_experiment(LOOP_EXPERIMENT)
    loop_run = client.create_run(exp.id, name=f"loop {model}@{alias}")
    client.log_params(
        loop_run.id,
        {"model": model, "alias": alias, "index": index, "k": k, "max_tokens": max_tokens,
         "train_questions": len(train_rows), "heldout_questions": len(held_rows),
         **{f"training.{k_}": v for k_, v in spec.items()}},
    )  # fmt: skip
    try:
        report = _stages(
            client, loop_run.id, model=model, alias=alias, base=base, base_options=base_options,
            index=index, k=k, max_tokens=max_tokens, spec=spec, fix=fix, train_rows=train_rows,
            held_rows=held_rows, n_bootstrap=n_bootstrap, seed=seed, cache_dir=cache_dir,
            notify=notify, seconds=seconds, t_all=t_all,
        )  # fmt: skip
    except BaseException:
        client.set_terminated(loop_run.id, "FAILED")
        raise
    client.log_metrics(
        loop_run.id,
        {
            "v1_quality": report.v1_quality,
            "v2_quality": report.v2_quality,
            GAIN_METRIC: report.gain,
            **({GATE_METRIC: report.ci_low} if report.ci_low is not None else {}),
            **{f"seconds_{k_}": v for k_, v in report.stage_seconds.items()},
            "seconds_total": report.total_seconds,
        },
    )
    client.set_tags(loop_run.id, {"opsloop.loop.promoted": str(report.promoted).lower()})
    client.log_dict(loop_run.id, report.model_dump(mode="json"), "loop/report.json")
    client.set_terminated(loop_run.id, "FINISHED")
    return report


def _stages(
    client: Any,
    loop_run_id: str,
    *,
    model: str,
    alias: str,
    base: str | None,
    base_options: Mapping[str, Any] | None,
    index: str,
    k: int,
    max_tokens: int,
    spec: dict[str, Any],
    fix: Callable[[Mapping[str, Any]], str],
    train_rows: list[dict[str, Any]],
    held_rows: list[dict[str, Any]],
    n_bootstrap: int,
    seed: int,
    cache_dir: Any,
    notify: Progress,
    seconds: dict[str, float],
    t_all: float,
) -> LoopReport:
    fb = client.feedback

    def tag(key: str, value: Any) -> None:
        client.set_tag(loop_run_id, f"opsloop.loop.{key}", value)

    # 1. serve: version 1 holds the alias.
    t = time.perf_counter()
    notify("serve", 0, 1)
    v1 = _version_one(client, model, alias, base, base_options)
    tag("model", model)
    tag("v1", v1)
    art = LoopArtifacts(loop_run_id=loop_run_id, model=model, v1=v1)

    def pipeline(version: int) -> Any:
        if version == v1:
            return served
        return rag_pipeline(
            client, model, version, index=index, k=k, max_tokens=max_tokens, cache_dir=cache_dir
        )

    served = rag_pipeline(
        client, model, v1, index=index, k=k, max_tokens=max_tokens, cache_dir=cache_dir
    )
    notify("serve", 1, 1)
    seconds["serve"] = time.perf_counter() - t

    # 2. replay the train questions through version 1 (a trace each).
    t = time.perf_counter()
    answered: list[tuple[dict[str, Any], str, str, str]] = []  # row, trace, prompt, answer
    for i, row in enumerate(train_rows):
        res = served.run({"question": row["question"]})
        if not res.trace_id:
            raise NotFound("the pipeline recorded no trace: is tracing switched off?")
        answer = str(res.outputs.get("answer") or "")
        answered.append((row, res.trace_id, str(res.state.get("prompt") or ""), answer))
        notify("replay", i + 1, len(train_rows))
    client.tracing.flush()
    art.traces = [a[1] for a in answered]
    seconds["replay"] = time.perf_counter() - t

    # 3. feedback from the references (source "code").
    t = time.perf_counter()
    contains = get_metric(QUALITY_METRIC)
    for i, (row, trace_id, prompt, answer) in enumerate(answered):
        ok = bool(contains([answer], [row["answer"]]) > 0)
        meta = {"prompt": prompt, "question_id": row["id"], "loop_run_id": loop_run_id}
        a1 = fb.annotate(
            "thumbs", ok, trace_id=trace_id, source="code", author=REFERENCE_AUTHOR, metadata=meta
        )
        fixed = fix({**row, "prompt": prompt, "response": answer})
        a2 = fb.annotate(
            "correction", fixed, trace_id=trace_id, source="code", author=REFERENCE_AUTHOR,
            metadata=meta,
        )  # fmt: skip
        art.annotations += [a1.id, a2.id]
        notify("feedback", i + 1, len(answered))
    seconds["feedback"] = time.perf_counter() - t

    # 4. the feedback becomes an SFT dataset version.
    t = time.perf_counter()
    notify("dataset", 0, 1)
    export = fb.export(f"{model}-feedback", "sft", message=f"loop run {loop_run_id}")
    art.dataset_version_id, art.dataset = export.dataset_version_id, export.ref
    tag("dataset", export.ref)
    notify("dataset", 1, 1)
    seconds["dataset"] = time.perf_counter() - t

    # 5. fine-tune version 1 on it; the adapter merged is the next version of the model.
    t = time.perf_counter()
    tuned = finetune_version(
        client, model, v1, export.ref, spec, cache_dir=cache_dir, notify=notify,
        description=f"loop run {loop_run_id}: adapter merged into v{v1}",
    )  # fmt: skip
    art.job_id, art.job_run_id, art.adapter = tuned.job_id, tuned.job_run_id, tuned.adapter
    tag("job", tuned.job_id)
    v2 = art.v2 = tuned.version
    tag("v2", v2)
    seconds["finetune"] = time.perf_counter() - t

    # 6. evaluate both versions on the held-out questions; the paired test.
    t = time.perf_counter()
    held = client.datasets.create(
        f"{model}-heldout", held_rows, message=f"loop run {loop_run_id}: held-out questions"
    )
    art.heldout_dataset = f"{held.dataset_name}@{held.version}"
    cmp = evaluate_versions(
        client, model, (v1, v2), art.heldout_dataset, pipeline, rows=len(held_rows),
        n_bootstrap=n_bootstrap, seed=seed, tags={"opsloop.loop.run_id": loop_run_id},
        notify=notify,
    )  # fmt: skip
    art.eval_run_v1, art.eval_run_v2 = cmp.eval_run_v1, cmp.eval_run_v2
    tag("eval_v1", art.eval_run_v1)
    tag("eval_v2", art.eval_run_v2)
    seconds["evaluate"] = time.perf_counter() - t

    # 7. the gate decides whether the alias moves to version 2.
    t = time.perf_counter()
    notify("gate", 0, 1)
    decision = gate_and_promote(client, model, alias, v2, cmp)
    art.alias_event_id = decision.alias_event_id
    tag("promoted", str(decision.promoted).lower())
    if art.alias_event_id is not None:
        tag("alias_event", art.alias_event_id)
    notify("gate", 1, 1)
    seconds["gate"] = time.perf_counter() - t

    return LoopReport(
        alias=alias,
        train_questions=len(train_rows),
        heldout_questions=len(held_rows),
        **cmp.model_dump(exclude={"eval_run_v1", "eval_run_v2"}),
        promoted=decision.promoted,
        decision=decision.decision,
        stage_seconds={s: round(seconds[s], 2) for s in STAGES if s in seconds},
        total_seconds=round(time.perf_counter() - t_all, 2),
        artifacts=art,
    )


def _version_one(
    client: Any, model: str, alias: str, base: str | None, base_options: Mapping[str, Any] | None
) -> int:
    """The version holding ``alias``, else ``base`` registered as a new version given ``alias``."""
    reg = client.registry
    try:
        mv = reg.resolve(f"models:/{model}@{alias}")
    except NotFound:
        mv = None
    if mv is not None:
        if mv.flavor != "transformers":
            raise InvalidArgument(
                f"models:/{model}@{alias} is a {mv.flavor!r} version: the loop fine-tunes a full "
                "causal language model (flavor 'transformers'); point the alias at one or use "
                "another model name",
                details={"model": model, "alias": alias},
            )
        return int(mv.version)
    source = base or str(bundled_gguf("smollm2"))
    options = dict(base_options or {"model_id": "SmolLM2-135M-Instruct"})
    mv = reg.register(
        model, source, flavor="transformers", options=options,
        description="version 1 of the loop: the base model",
    )  # fmt: skip
    reg.set_alias(model, alias, mv.version)
    return int(mv.version)
