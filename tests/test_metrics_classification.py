"""Classification, calibration and regression metrics agree with scikit-learn.

scikit-learn is the reference only: the metrics themselves are numpy code
that never imports it. Each check runs over many random vectors (binary and
multi-class, string labels, ties in scores, sample weights) and hand-picked
edge cases.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from opsloop.errors import InvalidArgument
from opsloop.evaluation import metrics as M

sk = pytest.importorskip("sklearn.metrics")
skcal = pytest.importorskip("sklearn.calibration")

SEEDS = range(25)
# the reference warns about undefined ratios and single-label matrices; we compare values
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:sklearn")


def close(a: Any, b: Any) -> None:
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-10, atol=1e-12
    )


def labels_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    k = int(rng.integers(2, 6))
    t = rng.integers(0, k, n)
    # mostly right predictions, some noise, so every regime shows up
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k + (seed % 2), n))
    if seed % 3 == 0:
        names = np.array(["ant", "bee", "cat", "dog", "eel", "fox", "gnu"])
        t, p = names[t], names[p]
    w = rng.random(n) + 0.1 if seed % 4 == 1 else None
    return t, p, w


@pytest.mark.parametrize("seed", SEEDS)
def test_label_metrics_match_sklearn(seed: int) -> None:
    t, p, w = labels_case(seed)
    close(M.accuracy(t, p, sample_weight=w), sk.accuracy_score(t, p, sample_weight=w))
    close(
        M.accuracy(t, p, normalize=False, sample_weight=w),
        sk.accuracy_score(t, p, normalize=False, sample_weight=w),
    )
    assert np.array_equal(
        M.confusion_matrix(t, p, sample_weight=w), sk.confusion_matrix(t, p, sample_weight=w)
    )
    for norm in ("true", "pred", "all"):
        close(M.confusion_matrix(t, p, normalize=norm), sk.confusion_matrix(t, p, normalize=norm))
    for avg in ("micro", "macro", "weighted"):
        for zd in (0.0, 1.0, np.nan):
            ours = M.precision_recall_fscore(t, p, average=avg, zero_division=zd, sample_weight=w)
            ref = sk.precision_recall_fscore_support(
                t, p, average=avg, zero_division=zd, sample_weight=w
            )
            close(ours[:3], ref[:3])
        for beta in (0.5, 2.0):
            close(
                M.fbeta(t, p, beta=beta, average=avg, sample_weight=w),
                sk.fbeta_score(t, p, beta=beta, average=avg, sample_weight=w, zero_division=0),
            )
    per = M.precision_recall_fscore(t, p, average=None, sample_weight=w)
    ref = sk.precision_recall_fscore_support(t, p, average=None, sample_weight=w, zero_division=0)
    assert list(per.precision) == sorted(set(t) | set(p))
    for ours_d, ref_a in zip(per, ref, strict=True):
        close(list(ours_d.values()), ref_a)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_prf_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(1, 40))
    t = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n) if seed % 5 else np.zeros(n, dtype=int)  # no positive predictions
    for zd in (0.0, 1.0):
        close(M.precision(t, p, zero_division=zd), sk.precision_score(t, p, zero_division=zd))
        close(M.recall(t, p, zero_division=zd), sk.recall_score(t, p, zero_division=zd))
        close(M.f1(t, p, zero_division=zd), sk.f1_score(t, p, zero_division=zd))
        close(
            M.f1(t, p, pos_label=0, zero_division=zd),
            sk.f1_score(t, p, pos_label=0, zero_division=zd),
        )


def test_labels_order_and_subset() -> None:
    t = ["cat", "dog", "pig", "cat", "dog", "pig", "cow"]
    p = ["cat", "pig", "dog", "cat", "cat", "dog", "cat"]
    order = ["pig", "dog", "cat"]
    assert np.array_equal(
        M.confusion_matrix(t, p, labels=order), sk.confusion_matrix(t, p, labels=order)
    )
    for avg in ("micro", "macro", "weighted"):
        close(M.f1(t, p, labels=order, average=avg), sk.f1_score(t, p, labels=order, average=avg))
    per = M.f1(t, p, labels=order, average=None)
    assert list(per) == order
    close(list(per.values()), sk.f1_score(t, p, labels=order, average=None))
    # a label that never occurs scores zero_division
    close(
        M.recall(t, p, labels=["cat", "yak"], average=None, zero_division=1.0)["yak"],
        sk.recall_score(t, p, labels=["cat", "yak"], average=None, zero_division=1.0)[1],
    )


def test_zero_division_edge_cases() -> None:
    # nothing predicted positive and nothing truly positive: every ratio is 0/0
    t = p = [0, 0, 0]
    for zd in (0.0, 1.0):
        assert (
            M.precision(t, p, zero_division=zd) == sk.precision_score(t, p, zero_division=zd) == zd
        )
        assert M.f1(t, p, zero_division=zd) == sk.f1_score(t, p, zero_division=zd) == zd
    assert np.isnan(M.f1(t, p, zero_division=np.nan))
    # macro over classes where one is 0/0 with nan: the nan class drops out of the mean
    t2, p2 = [0, 1, 1, 2], [0, 1, 0, 1]
    close(
        M.precision(t2, p2, average="macro", zero_division=np.nan),
        sk.precision_score(t2, p2, average="macro", zero_division=np.nan),
    )


def scores_case(seed: int, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(2000 + seed)
    n = int(rng.integers(classes * 2, 80))
    t = np.r_[np.arange(classes), rng.integers(0, classes, n - classes)]  # every class present
    logits = rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[t]
    if seed % 2:
        logits = np.round(logits)  # many ties
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    w = rng.random(n) + 0.05 if seed % 3 == 2 else None
    return t, prob, w


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_score_metrics_match_sklearn(seed: int) -> None:
    t, prob, w = scores_case(seed, 2)
    s = prob[:, 1] if seed % 4 else np.round(prob[:, 1], 1)  # coarse scores: heavy ties
    close(M.roc_auc(t, s, sample_weight=w), sk.roc_auc_score(t, s, sample_weight=w))
    close(
        M.average_precision(t, s, sample_weight=w),
        sk.average_precision_score(t, s, sample_weight=w),
    )
    close(M.pr_auc(t, s), sk.average_precision_score(t, s))
    for ours, ref in zip(
        M.roc_curve(t, s, sample_weight=w), sk.roc_curve(t, s, sample_weight=w), strict=True
    ):
        close(ours, ref)
    for ours, ref in zip(
        M.precision_recall_curve(t, s), sk.precision_recall_curve(t, s), strict=True
    ):
        close(ours, ref)
    close(M.log_loss(t, s, sample_weight=w), sk.log_loss(t, y_proba=s, sample_weight=w))
    close(M.log_loss(t, prob, normalize=False), sk.log_loss(t, y_proba=prob, normalize=False))
    close(M.brier_score(t, s, sample_weight=w), sk.brier_score_loss(t, s, sample_weight=w))
    for strategy in ("uniform", "quantile"):
        for n_bins in (3, 5, 10):
            for ours, ref in zip(
                M.calibration_curve(t, s, n_bins=n_bins, strategy=strategy),
                skcal.calibration_curve(t, s, n_bins=n_bins, strategy=strategy),
                strict=True,
            ):
                close(ours, ref)


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_score_metrics_match_sklearn(seed: int) -> None:
    k = 3 + seed % 3
    t, prob, w = scores_case(seed, k)
    for avg in ("macro", "weighted", "micro"):
        close(
            M.roc_auc(t, prob, average=avg, sample_weight=w),
            sk.roc_auc_score(t, prob, multi_class="ovr", average=avg, sample_weight=w),
        )
        close(
            M.average_precision(t, prob, average=avg, sample_weight=w),
            sk.average_precision_score(t, prob, average=avg, sample_weight=w),
        )
    per = M.roc_auc(t, prob, average=None)
    close(list(per.values()), sk.roc_auc_score(t, prob, multi_class="ovr", average=None))
    close(M.log_loss(t, prob, sample_weight=w), sk.log_loss(t, y_proba=prob, sample_weight=w))
    close(M.brier_score(t, prob), sk.brier_score_loss(t, prob, labels=np.arange(k)))
    names = np.array(list("abcdefg"))[:k]
    close(M.roc_auc(names[t], prob), sk.roc_auc_score(names[t], prob, multi_class="ovr"))
    close(
        M.log_loss(names[t], prob, labels=names), sk.log_loss(names[t], y_proba=prob, labels=names)
    )


def test_string_binary_labels_and_pos_label() -> None:
    t = np.array(["ham", "spam", "spam", "ham", "spam", "ham"])
    s = np.array([0.1, 0.8, 0.4, 0.35, 0.9, 0.6])
    # the greater label ("spam") is positive, as label_binarize has it
    close(M.roc_auc(t, s), sk.roc_auc_score(t, s))
    close(M.average_precision(t, s), sk.average_precision_score(t, s, pos_label="spam"))
    close(
        M.average_precision(t, 1 - s, pos_label="ham"),
        sk.average_precision_score(t, 1 - s, pos_label="ham"),
    )
    close(M.brier_score(t, s), sk.brier_score_loss(t, s, pos_label="spam"))
    close(M.log_loss(t, s), sk.log_loss(t, y_proba=s))


def test_log_loss_clips_like_sklearn() -> None:
    t = [0, 1, 1, 0]
    p = [0.0, 1.0, 0.0, 1.0]  # two certain mistakes: clipped, not infinite
    close(M.log_loss(t, p), sk.log_loss(t, y_proba=p))
    assert np.isfinite(M.log_loss(t, p))


def test_expected_calibration_error() -> None:
    t = np.array([0, 0, 1, 1, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.7, 0.9, 0.8, 0.3, 0.6, 0.95])
    true, pred = skcal.calibration_curve(t, p, n_bins=5)
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 6)[1:-1], p), minlength=5)
    expected = float((counts[counts > 0] / len(t) * np.abs(true - pred)).sum())
    close(M.expected_calibration_error(t, p, n_bins=5), expected)
    assert M.expected_calibration_error([0, 1, 1, 0], [0.0, 1.0, 1.0, 0.0]) == 0.0
    correct, conf = M.top_label_calibration_inputs(
        [0, 2, 1], [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]]
    )
    assert correct.tolist() == [1, 1, 0] and conf.tolist() == [0.7, 0.8, 0.5]


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(3000 + seed)
    n = int(rng.integers(2, 60))
    shape = (n,) if seed % 3 else (n, 3)
    t = rng.normal(size=shape) * 10
    if seed % 7 == 0:
        t[: n // 2] = 0.0  # zero targets: MAPE's eps matters
    p = t + rng.normal(size=shape)
    w = rng.random(n) + 0.1 if seed % 2 else None
    for mo in ("uniform_average", "raw_values"):
        close(
            M.mse(t, p, sample_weight=w, multioutput=mo),
            sk.mean_squared_error(t, p, sample_weight=w, multioutput=mo),
        )
        close(
            M.rmse(t, p, sample_weight=w, multioutput=mo),
            sk.root_mean_squared_error(t, p, sample_weight=w, multioutput=mo),
        )
        close(
            M.mae(t, p, sample_weight=w, multioutput=mo),
            sk.mean_absolute_error(t, p, sample_weight=w, multioutput=mo),
        )
        close(
            M.r2(t, p, sample_weight=w, multioutput=mo),
            sk.r2_score(t, p, sample_weight=w, multioutput=mo),
        )
        np.testing.assert_allclose(
            M.mape(t, p, sample_weight=w, multioutput=mo),
            sk.mean_absolute_percentage_error(t, p, sample_weight=w, multioutput=mo),
            rtol=1e-9,
        )


def test_r2_constant_target() -> None:
    assert (
        M.r2([3.0, 3.0, 3.0], [3.0, 3.0, 3.0])
        == sk.r2_score([3.0, 3.0, 3.0], [3.0, 3.0, 3.0])
        == 1.0
    )
    assert (
        M.r2([3.0, 3.0, 3.0], [3.0, 2.0, 3.0])
        == sk.r2_score([3.0, 3.0, 3.0], [3.0, 2.0, 3.0])
        == 0.0
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: M.accuracy([], []), "empty"),
        (lambda: M.accuracy([1, 0], [1]), "same length"),
        (lambda: M.accuracy("abc", "abd"), "not a single string"),
        (lambda: M.f1([0.5, 1.0], [1, 0]), "continuous"),
        (lambda: M.f1([0, 1, 2], [0, 1, 2]), "average='binary'"),
        (lambda: M.f1(["a", "b"], ["a", "b"]), "pos_label"),
        (lambda: M.f1([0, 1], ["a", 1]), "mixes strings and numbers"),
        (lambda: M.f1([0, 1], [0, 1], average="samples"), "average must be one of"),
        (lambda: M.f1([0, 1], [0, 1], zero_division="warn"), "zero_division"),
        (lambda: M.accuracy([0, 1], [0, 1], sample_weight=[1, -1]), "negative"),
        (lambda: M.confusion_matrix([0, 1], [0, 1], labels=[5]), "at least one of labels"),
        (lambda: M.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]), "only one class"),
        (lambda: M.roc_auc([0, 1], [0.2, np.nan]), "NaN"),
        (lambda: M.roc_auc([0, 1, 2], [0.1, 0.2, 0.3]), "one column per class"),
        (lambda: M.roc_auc([0, 1, 2], [[1, 1, 1]] * 3), "sum to 1"),
        (lambda: M.average_precision([0, 0], [0.3, 0.4]), "no positive sample"),
        (lambda: M.log_loss([0, 0], [0.1, 0.2]), "only one label"),
        (lambda: M.log_loss([0, 1], [[0.5, 0.6], [0.5, 0.5]]), "sum to 1"),
        (lambda: M.log_loss([0, 1], [1.2, 0.3]), r"\[0, 1\]"),
        (lambda: M.calibration_curve([0, 1], [0.2, 0.3], strategy="even"), "strategy"),
        (lambda: M.calibration_curve([0, 1], [0.2, 0.3], n_bins=0), "n_bins"),
        (lambda: M.rmse([1.0, 2.0], [[1.0], [2.0], [3.0]]), "same shape"),
        (lambda: M.r2([1.0], [1.0]), "two samples"),
        (lambda: M.mae(["a"], ["b"]), "numbers"),
    ],
)
def test_bad_input_is_invalid_argument(call: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        call()


def test_metrics_do_not_import_sklearn() -> None:
    code = (
        "import sys, numpy as np\n"
        "from opsloop.evaluation import metrics as M\n"
        "M.f1([0,1,1],[0,1,0]); M.roc_auc([0,1,1],[.1,.8,.4]); M.log_loss([0,1],[.2,.7]); M.r2([1.,2.],[1.,2.5])\n"
        "M.get_metric('f1_macro')([0,1],[0,1])\n"
        "print(sorted(m for m in ('sklearn','torch','transformers','sacrebleu','rouge_score') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
