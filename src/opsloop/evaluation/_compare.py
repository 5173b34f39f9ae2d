"""``compare``: N evaluations side by side, each against a baseline, example by example.

Examples are aligned by id (only ids every evaluation has are compared). Per
example, the compared value is the metric's per-example score; for
classification metrics that only exist over a whole set (accuracy, F1) it is
correctness (``output == reference``) and the aggregate difference is the
metric itself recomputed on paired resamples. Tests, all paired:

- paired bootstrap of the aggregate difference (interval and two-sided p-value);
- sign-flip permutation test of the mean per-example difference (exact
  enumeration up to 2^16 sign patterns, else ``n_permutations`` random ones);
- sign test on wins vs losses; McNemar's exact test when the values are 0/1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from opsloop.core import Context
from opsloop.errors import InvalidArgument
from opsloop.evaluation._entities import EvaluationResult
from opsloop.evaluation._evaluate import load_result, metric_key
from opsloop.evaluation._rooms import tracking_of
from opsloop.tracking import Tracking

EXACT_PERMUTATION_MAX = 16
_CORRECTNESS_KINDS = ("classification",)
_SENTENCE = {"bleu": "sentence_bleu", "chrf": "sentence_chrf"}


class ExampleDiff(BaseModel):
    id: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    reference: Any = None
    outputs: list[Any]
    values: list[float | None]
    diffs: list[float | None]  # value - baseline value, per candidate (0 for the baseline)


class CandidateComparison(BaseModel):
    run_id: str
    name: str
    candidate: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    delta: float  # aggregate minus the baseline's aggregate (recomputed on the common examples)
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    wins: int = 0
    losses: int = 0
    ties: int = 0
    p_value_bootstrap: float | None = None
    p_value_permutation: float | None = None
    p_value_sign: float | None = None
    p_value_mcnemar: float | None = None


class Comparison(BaseModel):
    metric: str
    greater_is_better: bool
    per_example_basis: str  # "score" | "correctness" | "sentence"
    baseline: int
    n_common: int
    n_dropped: list[int]  # examples of each evaluation not in every other one
    candidates: list[CandidateComparison]
    examples: list[ExampleDiff]


# ---------------------------------------------------------------------------- tests


def paired_permutation_test(
    diffs: Sequence[float], *, n_permutations: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value of mean(diffs) = 0 by flipping signs (exact when <= 16 nonzero diffs)."""
    import numpy as np

    d = np.asarray([x for x in diffs if x != 0], dtype=np.float64)
    if d.size == 0:
        return 1.0
    obs = abs(d.sum())
    tol = 1e-12 * max(1.0, obs)
    if d.size <= EXACT_PERMUTATION_MAX:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
        sums = np.abs(signs @ d)
        return float(np.mean(sums >= obs - tol))
    rng = np.random.default_rng(seed)
    hits, done, block = 0, 0, max(1, 2_000_000 // d.size)
    while done < n_permutations:
        b = min(block, n_permutations - done)
        signs = rng.choice((-1.0, 1.0), size=(b, d.size))
        hits += int(np.sum(np.abs(signs @ d) >= obs - tol))
        done += b
    return (hits + 1) / (n_permutations + 1)


def _binom_two_sided(k: int, n: int) -> float:
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties dropped)."""
    return _binom_two_sided(wins, wins + losses)


def mcnemar_exact(b: int, c: int) -> float:
    """McNemar's exact test: ``b`` pairs only the first got right, ``c`` only the second."""
    return _binom_two_sided(b, b + c)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Mean of ``b - a`` with its percentile interval and a two-sided bootstrap p-value."""
    import numpy as np

    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    rng = np.random.default_rng(seed)
    reps = d[rng.integers(0, d.size, size=(n_bootstrap, d.size))].mean(axis=1)
    return (float(d.mean()), *_interval_p(reps, confidence))


def _interval_p(reps: Any, confidence: float) -> tuple[float, float, float]:
    import numpy as np

    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return math.nan, math.nan, math.nan
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    p = min(1.0, 2 * min(float(np.mean(reps <= 0)), float(np.mean(reps >= 0))))
    return float(lo), float(hi), p


# ---------------------------------------------------------------------------- compare


def _results(items: Sequence[Any], client: Tracking | None) -> list[EvaluationResult]:
    out = []
    for it in items:
        if isinstance(it, EvaluationResult):
            out.append(it)
        elif isinstance(it, str):
            if client is None:
                raise InvalidArgument("comparing run ids needs a client")
            out.append(load_result(client, it))
        else:
            raise InvalidArgument("compare takes run ids or EvaluationResult objects")
    return out


def compare(
    runs: Sequence[Any],
    *,
    metric: str,
    baseline: int = 0,
    client: Tracking | Context | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare evaluations (run ids or results) on ``metric`` against ``runs[baseline]``."""
    if isinstance(runs, str) or not isinstance(runs, Sequence) or len(runs) < 2:
        raise InvalidArgument("compare needs at least two evaluations")
    if not isinstance(baseline, int) or not 0 <= baseline < len(runs):
        raise InvalidArgument(f"baseline must be an index in 0..{len(runs) - 1}")
    needs_runs = any(isinstance(r, str) for r in runs)
    results = _results(runs, tracking_of(client) if needs_runs or client is not None else None)
    return compare_results(
        results, metric=metric, baseline=baseline, n_bootstrap=n_bootstrap,
        confidence=confidence, n_permutations=n_permutations, seed=seed,
    )  # fmt: skip


def _metric_obj(metric: str) -> Any:
    from opsloop.evaluation.metrics import list_metrics  # lazy: loads numpy

    for m in list_metrics():
        if metric_key(m.name) == metric or m.name == metric:
            return m
    return None


def compare_results(
    results: list[EvaluationResult],
    *,
    metric: str,
    baseline: int = 0,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> Comparison:
    import numpy as np

    key = metric_key(metric)
    for r in results:
        if key not in r.metrics:
            raise InvalidArgument(
                f"evaluation {r.run_id} has no metric {key!r}; it has {r.metric_names}",
                details={"run_id": r.run_id, "metric": key},
            )
    m = _metric_obj(key)
    gib = True if m is None else m.greater_is_better
    by_id = [{e.id: e for e in r.examples if e.error is None} for r in results]
    common = [i for i in by_id[0] if all(i in d for d in by_id[1:])]
    if not common:
        raise InvalidArgument("the evaluations share no example ids")
    dropped = [len(d) - len(common) for d in by_id]
    rows = [[d[i] for i in common] for d in by_id]
    basis, vals = _per_example_values(key, m, rows)
    base = baseline
    out_c: list[CandidateComparison] = []
    rng_seed = seed
    for j, r in enumerate(results):
        diffs = vals[j] - vals[base]
        better = diffs > 0 if gib else diffs < 0
        worse = diffs < 0 if gib else diffs > 0
        wins, losses = int(better.sum()), int(worse.sum())
        delta, lo, hi, p_boot = _aggregate_delta(
            key, m, basis, rows[base], rows[j], vals[base], vals[j],
            n_bootstrap=n_bootstrap, confidence=confidence, seed=rng_seed,
        )  # fmt: skip
        binary = bool(np.isin(vals[j], (0.0, 1.0)).all() and np.isin(vals[base], (0.0, 1.0)).all())
        cc = CandidateComparison(
            run_id=r.run_id,
            name=r.name,
            candidate=r.candidate,
            value=r.metrics[key],
            ci_low=_f(r.metrics.get(f"{key}_ci_low")),
            ci_high=_f(r.metrics.get(f"{key}_ci_high")),
            delta=delta,
            wins=wins,
            losses=losses,
            ties=len(common) - wins - losses,
        )
        if j != base:
            cc.delta_ci_low, cc.delta_ci_high, cc.p_value_bootstrap = _f(lo), _f(hi), _f(p_boot)
            cc.p_value_permutation = paired_permutation_test(
                diffs.tolist(), n_permutations=n_permutations, seed=seed
            )
            cc.p_value_sign = sign_test(wins, losses)
            if binary:
                b = int(((vals[base] == 1) & (vals[j] == 0)).sum())
                c = int(((vals[base] == 0) & (vals[j] == 1)).sum())
                cc.p_value_mcnemar = mcnemar_exact(b, c)
        out_c.append(cc)
    examples = [
        ExampleDiff(
            id=common[i],
            inputs=rows[base][i].inputs,
            reference=rows[base][i].reference,
            outputs=[rows[j][i].output for j in range(len(results))],
            values=[_f(vals[j][i]) for j in range(len(results))],
            diffs=[_f(vals[j][i] - vals[base][i]) for j in range(len(results))],
        )
        for i in range(len(common))
    ]
    return Comparison(
        metric=key,
        greater_is_better=gib,
        per_example_basis=basis,
        baseline=base,
        n_common=len(common),
        n_dropped=dropped,
        candidates=out_c,
        examples=examples,
    )


def _f(v: Any) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _per_example_values(key: str, m: Any, rows: list[list[Any]]) -> tuple[str, Any]:
    import numpy as np

    if all(key in e.scores for r in rows for e in r):
        return "score", np.asarray(
            [[math.nan if e.scores[key] is None else e.scores[key] for e in r] for r in rows],
            dtype=np.float64,
        )
    if m is not None and m.kind in _CORRECTNESS_KINDS:
        return "correctness", np.asarray(
            [[1.0 if e.output == e.reference else 0.0 for e in r] for r in rows], dtype=np.float64
        )
    if m is not None and m.name in _SENTENCE:
        from opsloop.evaluation import metrics as M  # lazy: loads numpy

        fn = getattr(M, _SENTENCE[m.name])
        return "sentence", np.asarray(
            [[fn(str(e.output), e.reference) for e in r] for r in rows], dtype=np.float64
        )
    raise InvalidArgument(
        f"metric {key!r} has no per-example values to compare; compare on a per-example metric",
        details={"metric": key},
    )


def _aggregate_delta(
    key: str,
    m: Any,
    basis: str,
    base_rows: list[Any],
    rows: list[Any],
    base_vals: Any,
    vals: Any,
    *,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> tuple[float, float, float, float]:
    """Aggregate difference on the common examples, with a paired-bootstrap interval and p."""
    import numpy as np

    if basis == "score" and (m is None or m.aggregate == "mean"):
        return paired_bootstrap(
            base_vals, vals, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
        )
    # A whole-set metric: recompute it for both on the same resampled example indices.
    refs = [e.reference for e in base_rows]

    def value(rs: list[Any], idx: Any) -> float:
        return float(m.compute([rs[i].output for i in idx], [refs[i] for i in idx]).value)

    n = len(rows)
    full = np.arange(n)
    try:
        delta = value(rows, full) - value(base_rows, full)
    except Exception:
        return paired_bootstrap(
            base_vals, vals, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
        )
    rng = np.random.default_rng(seed)
    reps = np.full(n_bootstrap, np.nan)
    for b in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        try:
            reps[b] = value(rows, idx) - value(base_rows, idx)
        except Exception:
            continue
    return (delta, *_interval_p(reps, confidence))
