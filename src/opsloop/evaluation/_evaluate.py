"""``evaluate``: run a candidate over a dataset version, score it, and store the result as a run.

The run (experiment ``evaluations`` by default) holds: params naming the
candidate, the dataset version and its content digest, the metrics and the
bootstrap settings; metrics with every aggregate and its ``_ci_low`` /
``_ci_high``, plus latency percentiles, tokens and cost; the artifacts
``eval/examples.jsonl`` (one line per example) and ``eval/summary.json``; an
input link to the dataset version (context ``evaluation``); and the tags
``opsloop.eval`` (``"1"``), ``opsloop.eval.candidate`` and, for a registry
model or pipeline, ``opsloop.eval.model`` / ``opsloop.eval.model_version``,
which the promotion gates read; for a registry prompt
``opsloop.eval.prompt`` / ``opsloop.eval.prompt_version``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from opsloop.core import Context
from opsloop.datasets.entities import DatasetVersionInfo
from opsloop.errors import InvalidArgument, OpsloopError
from opsloop.evaluation._bootstrap import check_params, metric_ci
from opsloop.evaluation._candidate import Candidate, Outcome
from opsloop.evaluation._candidates import make_candidate, resolve_prompt
from opsloop.evaluation._entities import EvaluationResult, ExampleResult
from opsloop.evaluation._rooms import datasets_of, tracking_of
from opsloop.tracking import Tracking

if TYPE_CHECKING:
    from opsloop.evaluation.metrics import Metric

TAG = "opsloop.eval"
EXAMPLES_PATH = "eval/examples.jsonl"
SUMMARY_PATH = "eval/summary.json"
TARGET_GUESSES = ("target", "label", "reference", "answer", "expected", "y")
# Metrics that read scores or probabilities, not labels.
SCORE_METRICS = frozenset(
    {
        "roc_auc",
        "average_precision",
        "pr_auc",
        "log_loss",
        "brier_score",
        "expected_calibration_error",
    }
)
_BAD_KEY = re.compile(r"[^\w\-. /:]")

Progress = Callable[[int, int], None]


def metric_key(name: str) -> str:
    """The run metric key for a metric name (``ndcg@5`` → ``ndcg_5``, ``chrf++`` → ``chrf__``)."""
    return _BAD_KEY.sub("_", name)


def _metrics(metrics: Any) -> list[Metric]:
    from opsloop.evaluation.metrics import Metric, get_metric  # lazy: loads numpy

    if isinstance(metrics, str | Metric):
        metrics = [metrics]
    if not isinstance(metrics, Sequence) or not metrics:
        raise InvalidArgument("metrics must name at least one metric")
    out = [m if isinstance(m, Metric) else get_metric(m) for m in metrics]
    keys = [metric_key(m.name) for m in out]
    if len(set(keys)) != len(keys):
        raise InvalidArgument(f"metrics named twice: {keys}")
    return out


def load_rows(
    data: Any, client: Tracking | Context | None
) -> tuple[list[dict[str, Any]], str | None, str | None, str | None]:
    """Rows, the ``name@version`` ref, the content digest and the version id of ``data``."""
    if isinstance(data, str | DatasetVersionInfo):
        if client is None:
            raise InvalidArgument("a dataset reference needs a client")
        ds = datasets_of(client)
        v = ds.get(data)
        rows = list(ds.iter_rows(v.id))
        return rows, v.ref, v.content_digest, v.id
    if isinstance(data, Sequence) and all(isinstance(r, Mapping) for r in data):
        rows = [dict(r) for r in data]
        blob = json.dumps(rows, sort_keys=True, default=str).encode()
        return rows, None, "sha256:" + hashlib.sha256(blob).hexdigest(), None
    raise InvalidArgument(
        'data must be a dataset version ("name@version" or a DatasetVersion) or a list of dicts'
    )


def _ids(rows: list[dict[str, Any]], id_column: str) -> list[str]:
    if rows and all(id_column in r for r in rows):
        ids = [str(r[id_column]) for r in rows]
        if len(set(ids)) == len(ids):
            return ids
        raise InvalidArgument(f"column {id_column!r} has repeated values; ids must be unique")
    return [str(i) for i in range(len(rows))]


def _jsonable(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, str | int | float | bool):
        return v
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return str(v)


def evaluate(
    candidate: Any,
    data: Any,
    *,
    metrics: Any,
    input_columns: Sequence[str] | None = None,
    target_column: str | None = None,
    prompt: Any = None,
    name: str | None = None,
    experiment: str = "evaluations",
    client: Tracking | Context | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    max_workers: int = 1,
    progress: Progress | None = None,
    id_column: str = "id",
    options: Mapping[str, Any] | None = None,
    cache_dir: Any = None,
    output_key: str | None = None,
    trusted_types: Sequence[str] | None = None,
) -> EvaluationResult:
    """Run ``candidate`` on every example of ``data``, score it with ``metrics``, store a run.

    ``target_column`` defaults to the first of target/label/reference/answer/
    expected/y present. ``input_columns`` defaults to the inputs a pipeline
    declares, else every column except the target and ``id_column``.
    ``options`` go to an LLM call (``max_tokens``, ``temperature``...).
    ``output_key`` names the prediction among a pipeline's (or a callable's)
    dict outputs. An example whose call raises is kept with its ``error`` and
    left out of the metrics; ``error_rate`` says how many. ``trusted_types``:
    type names trusted in a skops model file (a tree model's
    ``sklearn.tree._tree.Tree``), as ``load_model`` takes them.
    """
    check_params(n_bootstrap, confidence)
    if not isinstance(max_workers, int) or not 1 <= max_workers <= 64:
        raise InvalidArgument("max_workers must be an integer in 1..64")
    ms = _metrics(metrics)
    tracking = tracking_of(client)
    try:
        return _evaluate(
            candidate, data, ms, tracking, input_columns=input_columns, target_column=target_column,
            prompt=prompt, name=name, experiment=experiment, n_bootstrap=n_bootstrap,
            confidence=confidence, seed=seed, max_workers=max_workers, progress=progress,
            id_column=id_column, options=options, cache_dir=cache_dir, output_key=output_key,
            trusted_types=trusted_types,
        )  # fmt: skip
    finally:
        if client is None:
            tracking.flush()


def _evaluate(
    candidate: Any,
    data: Any,
    ms: list[Metric],
    client: Tracking,
    *,
    input_columns: Sequence[str] | None,
    target_column: str | None,
    prompt: Any,
    name: str | None,
    experiment: str,
    n_bootstrap: int,
    confidence: float,
    seed: int,
    max_workers: int,
    progress: Progress | None,
    id_column: str,
    options: Mapping[str, Any] | None,
    cache_dir: Any,
    trusted_types: Sequence[str] | None = None,
    output_key: str | None,
) -> EvaluationResult:
    rows, ref, digest, version_id = load_rows(data, client)
    if not rows:
        raise InvalidArgument("the dataset has no rows to evaluate")
    columns = list(rows[0])
    needs_refs = any("references" in m.inputs for m in ms)
    if target_column is None:
        target_column = next((c for c in TARGET_GUESSES if c in columns), None)
    if target_column is not None and target_column not in columns:
        raise InvalidArgument(f"no target column {target_column!r}; columns: {columns}")
    if needs_refs and target_column is None:
        raise InvalidArgument(
            f"the metrics need references: name the target_column (columns: {columns})"
        )
    prompt_ref = prompt if isinstance(prompt, str) else None
    prompt = resolve_prompt(prompt, client)
    cand = make_candidate(
        candidate, prompt=prompt, client=client, options=options, cache_dir=cache_dir,
        output_key=output_key, trusted_types=trusted_types,
    )  # fmt: skip
    try:
        if input_columns is None:
            input_columns = (
                list(cand.inputs)
                if cand.inputs is not None
                else [c for c in columns if c not in (target_column, id_column)]
            )
        missing = [c for c in input_columns if c not in columns]
        if missing:
            raise InvalidArgument(
                f"no input columns {missing}; columns: {columns}"
                + (f" (the {cand.kind} takes {cand.inputs})" if cand.inputs is not None else ""),
                details={"missing": missing, "columns": columns},
            )
        ids = _ids(rows, id_column)
        inputs = [{c: r.get(c) for c in input_columns} for r in rows]
        outcomes = _run_all(cand, inputs, max_workers, progress)
    finally:
        if cand.close is not None:
            cand.close()
    refs = [r.get(target_column) for r in rows] if target_column else [None] * len(rows)
    examples = [
        ExampleResult(
            id=ids[i],
            inputs=_jsonable(inputs[i]),
            output=_jsonable(o.output) if not isinstance(o, BaseException) else None,
            reference=_jsonable(refs[i]),
            latency_ms=None if isinstance(o, BaseException) else o.latency_ms,
            input_tokens=None if isinstance(o, BaseException) else o.input_tokens,
            output_tokens=None if isinstance(o, BaseException) else o.output_tokens,
            cost_usd=None if isinstance(o, BaseException) else o.cost_usd,
            error=f"{type(o).__name__}: {o}" if isinstance(o, BaseException) else None,
        )
        for i, o in enumerate(outcomes)
    ]
    ok = [i for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
    if not ok:
        raise InvalidArgument(
            f"the candidate failed on every example; first error: {examples[0].error}"
        )
    good: list[Outcome] = [outcomes[i] for i in ok]  # type: ignore[misc]
    values = _score(ms, cand, good, [rows[i] for i in ok], [inputs[i] for i in ok],
                    [refs[i] for i in ok], [examples[i] for i in ok],
                    n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)  # fmt: skip
    values.update(_ops(good, len(rows)))
    tags = {TAG: "1", f"{TAG}.candidate": cand.spec[:5000], f"{TAG}.kind": cand.kind}
    tags.update(cand.tags)
    if cand.model_name is not None and cand.model_version is not None:
        tags[f"{TAG}.model"] = cand.model_name
        tags[f"{TAG}.model_version"] = str(cand.model_version)
    pv = _prompt_version(prompt)
    if pv is not None:
        tags[f"{TAG}.prompt"] = pv[0]
        tags[f"{TAG}.prompt_version"] = str(pv[1])
    if ref is not None:
        tags[f"{TAG}.dataset"] = ref
    params = {
        "candidate": cand.spec[:5000],
        "candidate_kind": cand.kind,
        "dataset": ref or "(rows)",
        "dataset_digest": digest or "",
        "target_column": target_column or "",
        "metrics": ",".join(m.name for m in ms),
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "seed": seed,
    }
    params.update({k: v for k, v in cand.params.items() if k not in params})
    if prompt is not None:
        params["prompt"] = str(getattr(prompt, "uri", None) or _jsonable(prompt))[:5000]
        if prompt_ref is not None and prompt_ref != params["prompt"]:
            params["prompt_ref"] = prompt_ref[:5000]  # the label asked for, e.g. prompts:/qa@prod
    if options:
        params["options"] = json.dumps(_jsonable(dict(options)), sort_keys=True)[:5000]
    run = client.create_run(
        experiment_name=experiment,
        name=name or _run_name(cand, pv),
        tags=tags,
        params=params,
    )
    result = EvaluationResult(
        run_id=run.id,
        name=run.name,
        experiment_id=run.experiment_id,
        candidate=cand.spec,
        candidate_kind=cand.kind,
        dataset=ref,
        dataset_digest=digest,
        target_column=target_column,
        metric_names=[metric_key(m.name) for m in ms],
        metrics=values,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        n_examples=len(rows),
        n_errors=len(rows) - len(ok),
        examples=examples,
    )
    try:
        finite = {k: v for k, v in values.items() if math.isfinite(v)}
        client.log_metrics(run.id, finite, synchronous=True)
        if version_id is not None:
            datasets_of(client).log_input(run.id, version_id, context="evaluation")
        lines = "\n".join(e.model_dump_json() for e in examples) + "\n"
        client.log_text(run.id, lines, EXAMPLES_PATH)
        summary = result.model_dump(mode="json", exclude={"examples"})
        client.log_text(run.id, json.dumps(summary, indent=2, allow_nan=False, default=str)
                        if all(math.isfinite(v) for v in values.values())
                        else json.dumps(_jsonable(summary), indent=2), SUMMARY_PATH)  # fmt: skip
    except BaseException:
        client.set_terminated(run.id, "FAILED")
        raise
    client.set_terminated(run.id)
    return result


def _prompt_version(prompt: Any) -> tuple[str, int] | None:
    """``(name, version)`` of a registry prompt (a ``PromptVersion``), else None."""
    name, version = getattr(prompt, "name", None), getattr(prompt, "version", None)
    if isinstance(name, str) and isinstance(version, int) and hasattr(prompt, "render"):
        return name, version
    return None


def _run_name(cand: Candidate, pv: tuple[str, int] | None) -> str:
    short = cand.spec.rsplit("/", 2)[-2] if cand.spec.startswith("models:/") else cand.spec
    return f"eval {pv[0]}/{pv[1]} on {short}" if pv is not None else f"eval {short}"


def _run_all(
    cand: Candidate, inputs: list[dict[str, Any]], workers: int, progress: Progress | None
) -> list[Outcome | BaseException]:
    total = len(inputs)
    done = 0

    def one(x: dict[str, Any]) -> Outcome | BaseException:
        try:
            return cand.run(x)
        except (OpsloopError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            return exc

    out: list[Outcome | BaseException] = []
    if workers == 1:
        for x in inputs:
            out.append(one(x))
            done += 1
            if progress is not None:
                progress(done, total)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for res in pool.map(one, inputs):
            out.append(res)
            done += 1
            if progress is not None:
                progress(done, total)
    return out


def _metric_inputs(
    m: Metric, outcomes: list[Outcome], rows: list[dict[str, Any]]
) -> dict[str, list[Any]]:
    got: dict[str, list[Any]] = {}
    for key in m.inputs:
        if key in ("predictions", "references"):
            continue
        if key == "latency":
            got[key] = [o.latency_ms for o in outcomes]
        elif key == "cost":
            got[key] = [o.cost_usd or 0.0 for o in outcomes]
        elif key == "tokens":
            got[key] = [(o.input_tokens or 0) + (o.output_tokens or 0) for o in outcomes]
        elif all(o.extra is not None and key in o.extra for o in outcomes):
            got[key] = [o.extra[key] for o in outcomes if o.extra is not None]
        elif all(key in r for r in rows):
            got[key] = [r[key] for r in rows]
        else:
            raise InvalidArgument(
                f"metric {m.name!r} needs the input {key!r}: neither a dataset column nor "
                "a key of the candidate's output"
            )
    return got


def _score(
    ms: list[Metric],
    cand: Candidate,
    outcomes: list[Outcome],
    rows: list[dict[str, Any]],
    inputs: list[dict[str, Any]],
    refs: list[Any],
    examples: list[ExampleResult],
    *,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, float]:
    preds = [o.output for o in outcomes]
    values: dict[str, float] = {}
    for m in ms:
        p: list[Any] = preds
        if m.name in SCORE_METRICS and cand.proba is not None:
            probs = [cand.proba(x) for x in inputs]
            p = [pr[1] if len(pr) == 2 else pr for pr in probs]
        r = refs if "references" in m.inputs or m.per_example else None
        kw = _metric_inputs(m, outcomes, rows)
        res = m.compute(p, r, **kw)
        key = metric_key(m.name)
        if res.per_example is not None:
            for ex, s in zip(examples, res.per_example, strict=True):
                ex.scores[key] = s if math.isfinite(s) else None
        ci = metric_ci(
            m, p, r, kw, value=res.value, per_example=res.per_example,
            n_bootstrap=n_bootstrap, confidence=confidence, seed=seed,
        )  # fmt: skip
        values[key] = res.value
        values[f"{key}_ci_low"] = ci.low
        values[f"{key}_ci_high"] = ci.high
    return values


def _ops(outcomes: list[Outcome], total: int) -> dict[str, float]:
    import numpy as np

    lat = np.asarray([o.latency_ms for o in outcomes], dtype=np.float64)
    out = {
        "latency_mean_ms": float(lat.mean()),
        "latency_p50_ms": float(np.percentile(lat, 50)),
        "latency_p90_ms": float(np.percentile(lat, 90)),
        "latency_p99_ms": float(np.percentile(lat, 99)),
        "latency_max_ms": float(lat.max()),
        "error_rate": (total - len(outcomes)) / total,
        "n_examples": float(total),
    }
    tin = [o.input_tokens for o in outcomes if o.input_tokens is not None]
    tout = [o.output_tokens for o in outcomes if o.output_tokens is not None]
    if tin or tout:
        out["input_tokens_total"] = float(sum(tin))
        out["output_tokens_total"] = float(sum(tout))
        out["tokens_per_example"] = (sum(tin) + sum(tout)) / len(outcomes)
    costs = [o.cost_usd for o in outcomes if o.cost_usd is not None]
    if costs:
        out["cost_usd_total"] = float(sum(costs))
        out["cost_usd_per_example"] = float(sum(costs)) / len(outcomes)
    return out


class RunReader(Protocol):
    def get_run(self, run_id: str) -> Any: ...
    def read_artifact(self, run_id: str, path: str) -> bytes: ...


def load_result(client: RunReader, run_id: str, *, examples: bool = True) -> EvaluationResult:
    """An evaluation stored by :func:`evaluate`, read back from its run's artifacts."""
    run = client.get_run(run_id)
    if run.tags.get(TAG) != "1":
        raise InvalidArgument(
            f"run {run_id} is not an evaluation run (it has no {TAG} tag)",
            details={"run_id": run_id},
        )
    summary = json.loads(client.read_artifact(run_id, SUMMARY_PATH))
    summary["metrics"] = {k: (math.nan if v is None else v) for k, v in summary["metrics"].items()}
    if examples:
        text = client.read_artifact(run_id, EXAMPLES_PATH).decode()
        summary["examples"] = [json.loads(line) for line in text.splitlines() if line.strip()]
    return EvaluationResult.model_validate(summary)
