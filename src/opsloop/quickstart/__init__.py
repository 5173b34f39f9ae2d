"""The quickstart: a real scikit-learn sweep tracked by opsloop, in well under a minute.

``run_quickstart(settings)`` trains a few model families (SGD logistic
regression, a small MLP, gradient boosting) on scikit-learn's bundled
breast-cancer data, epoch by epoch, into the ``quickstart`` experiment: one
parent run for the sweep, one child run per config, with params, per-epoch
metrics, artifacts and system metrics. scikit-learn is the ``quickstart``
extra and is imported only when the quickstart runs.

``docs_questions(split)`` is the docs question-answering task (train and
held-out questions written from opsloop's own docs), scored with
``DOCS_QUALITY_METRIC`` (``contains``), the quickstart's quality metric;
``run_docs_loop(client)`` closes the loop on it (``opsloop loop run``).
"""

from opsloop.quickstart._context import (
    EXPERIMENT_NAME,
    NullReporter,
    QuickstartContext,
    QuickstartResult,
    Reporter,
    TrialResult,
)
from opsloop.quickstart._evaluate import EPOCH_METRICS, RANK_METRIC
from opsloop.quickstart._loop import LOOP_MODEL, run_docs_loop
from opsloop.quickstart._models import DEFAULT_TRIALS, SWEEP, TrialConfig
from opsloop.quickstart._qa_data import DOCS_QUALITY_METRIC, docs_questions
from opsloop.quickstart._serve_model import serve_model_in_thread
from opsloop.quickstart._steps import DEFAULT_STEPS, Step, run_quickstart, select_trials

__all__ = [
    "DEFAULT_STEPS",
    "DEFAULT_TRIALS",
    "DOCS_QUALITY_METRIC",
    "EPOCH_METRICS",
    "EXPERIMENT_NAME",
    "LOOP_MODEL",
    "RANK_METRIC",
    "SWEEP",
    "NullReporter",
    "QuickstartContext",
    "QuickstartResult",
    "Reporter",
    "Step",
    "TrialConfig",
    "TrialResult",
    "docs_questions",
    "run_docs_loop",
    "run_quickstart",
    "select_trials",
    "serve_model_in_thread",
]
