"""Agreement statistics: Krippendorff's alpha and Cohen's kappa, in plain Python, and a
score's agreement report built from its annotations.

``krippendorff_alpha(units, level)``: ``units`` maps an item to the values
its annotators gave (missing values simply absent); only items with two or
more values are pairable. The coincidence-matrix form (Krippendorff 2011,
"Computing Krippendorff's Alpha-Reliability"):

    alpha = 1 - (n - 1) * sum_ck o_ck d_ck / sum_ck n_c n_k d_ck

with ``d`` the nominal (0 if equal else 1) or interval ((c - k)^2) distance.
``cohen_kappa(a, b)``: two raters' labels of the same items, nominal.
Both return None where the statistic is undefined (no pairable item, or a
single value everywhere, so the expected disagreement is zero).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any, Literal

from opsloop.errors import InvalidArgument
from opsloop.feedback.entities import Agreement, JudgeAgreement, PairAgreement, ScoreDefinition

__all__ = ["cohen_kappa", "krippendorff_alpha", "summarise"]

Level = Literal["nominal", "interval"]


def _distance(level: Level, c: Hashable, k: Hashable) -> float:
    if level == "nominal":
        return 0.0 if c == k else 1.0
    return (float(c) - float(k)) ** 2  # type: ignore[arg-type]


def krippendorff_alpha(
    units: Mapping[Hashable, Iterable[Hashable]] | Iterable[Iterable[Hashable]],
    level: Level = "nominal",
) -> float | None:
    """Krippendorff's alpha over ``units`` (each: the values one item received)."""
    if level not in ("nominal", "interval"):
        raise ValueError(f"level is nominal or interval, not {level!r}")
    groups = units.values() if isinstance(units, Mapping) else units
    coincidence: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for group in groups:
        values = [v for v in group if v is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nc - 1) if c == k else nc * nk
                coincidence[(c, k)] += pairs / (m - 1)
    n_c: dict[Hashable, float] = defaultdict(float)
    for (c, _k), o in coincidence.items():
        n_c[c] += o
    n = sum(n_c.values())
    if n <= 1:
        return None
    observed = sum(o * _distance(level, c, k) for (c, k), o in coincidence.items())
    expected = sum(n_c[c] * n_c[k] * _distance(level, c, k) for c in n_c for k in n_c)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items (``a[i]`` and ``b[i]`` rate item i)."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[label] * cb[label] for label in ca) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


# -- a score's agreement report --------------------------------------------------------


def summarise(name: str, d: ScoreDefinition, rows: Sequence[Any], source: str) -> Agreement:
    """Agreement on score ``name`` (definition ``d``) from its annotation rows (target_id,
    author, source, kind, value_num, value_text): between annotators of ``source`` and,
    where an LLM judge scored the same items, between the judge and them."""
    if d.kind == "text":
        raise InvalidArgument(
            f"score {name!r} is free text: agreement needs a boolean, categorical or numeric score"
        )
    level = "interval" if d.kind == "numeric" else "nominal"

    def val(r: Any) -> Any:
        return r.value_num if level == "interval" else r.value_text

    units: dict[str, dict[str, Any]] = defaultdict(dict)
    judge: dict[str, list[Any]] = defaultdict(list)
    counts: Counter[str] = Counter()
    for r in rows:
        if val(r) is None:
            continue
        if r.source == source:
            units[r.target_id][r.author] = val(r)
            counts[r.author] += 1
        if r.source == "llm_judge" and source != "llm_judge":
            judge[r.target_id].append(val(r))
    alpha = krippendorff_alpha([list(u.values()) for u in units.values()], level)  # type: ignore[arg-type]
    authors = sorted(counts)
    pairs: list[PairAgreement] = []
    for x, y in combinations(authors, 2):
        common = [u for u in units.values() if x in u and y in u]
        if not common:
            continue
        ax, ay = [u[x] for u in common], [u[y] for u in common]
        pairs.append(
            PairAgreement(
                a=x,
                b=y,
                items=len(common),
                kappa=cohen_kappa(ax, ay),
                agreement=sum(1 for p, q in zip(ax, ay, strict=True) if p == q) / len(common),
            )
        )
    kappas = [p.kappa for p in pairs if p.kappa is not None]
    return Agreement(
        score=name,
        kind=d.kind,
        level=level,  # type: ignore[arg-type]
        source=source,  # type: ignore[arg-type]
        annotators=authors,
        items=sum(1 for u in units.values() if len(u) >= 2),
        alpha=alpha,
        pairwise=pairs,
        mean_kappa=sum(kappas) / len(kappas) if kappas else None,
        per_annotator=dict(sorted(counts.items())),
        judge=_judge_agreement(units, judge, level) if judge else None,
    )


def _consensus(values: list[Any], level: str) -> Any:
    if level == "interval":
        return sum(values) / len(values)
    top = Counter(values).most_common()
    if len(top) > 1 and top[0][1] == top[1][1]:
        return None  # a tie between humans: no consensus for this item
    return top[0][0]


def _judge_agreement(
    units: dict[str, dict[str, Any]], judge: dict[str, list[Any]], level: str
) -> JudgeAgreement:
    jv, hv = [], []
    for target, values in judge.items():
        humans = list(units.get(target, {}).values())
        if not humans:
            continue
        h, j = _consensus(humans, level), _consensus(values, level)
        if h is None or j is None:
            continue
        jv.append(j)
        hv.append(h)
    n = len(jv)
    if n == 0:
        return JudgeAgreement(items=0, kappa=None, alpha=None, agreement=None, mean_abs_error=None)
    return JudgeAgreement(
        items=n,
        kappa=cohen_kappa(jv, hv) if level == "nominal" else None,
        alpha=krippendorff_alpha([[j, h] for j, h in zip(jv, hv, strict=True)], level),  # type: ignore[arg-type]
        agreement=sum(1 for j, h in zip(jv, hv, strict=True) if j == h) / n,
        mean_abs_error=(
            sum(abs(j - h) for j, h in zip(jv, hv, strict=True)) / n
            if level == "interval"
            else None
        ),
    )
