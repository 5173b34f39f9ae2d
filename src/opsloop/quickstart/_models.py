"""The sweep: model families trained epoch by epoch, so every run has learning curves.

- ``sgd``: logistic regression by SGD, one ``partial_fit`` pass per epoch.
- ``mlp``: a small neural network, one ``partial_fit`` pass per epoch.
- ``gbdt``: gradient boosting; an "epoch" is one boosting stage, read back with
  ``staged_predict_proba``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opsloop.quickstart._data import Dataset


@dataclass(frozen=True)
class TrialConfig:
    """One point of the sweep: a model family, its hyperparameters and its epoch count."""

    family: str
    epochs: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A short readable run name, e.g. ``mlp-64x32-lr0.003``."""
        p = self.params
        if self.family == "sgd":
            return f"sgd-{p['penalty']}-a{p['alpha']:g}"
        if self.family == "mlp":
            hidden = "x".join(str(h) for h in p["hidden_layer_sizes"])
            return f"mlp-{hidden}-lr{p['learning_rate_init']:g}"
        return f"gbdt-d{p['max_depth']}-lr{p['learning_rate']:g}-n{self.epochs}"

    def loggable_params(self) -> dict[str, Any]:
        """The params as logged on the run (tuples made readable)."""
        out: dict[str, Any] = {"model": self.family, "epochs": self.epochs}
        for k, v in self.params.items():
            out[k] = "x".join(str(i) for i in v) if isinstance(v, tuple) else v
        return out


# Interleaved by family so that any prefix of the sweep (``--trials N``) covers
# as many families as it can.
SWEEP: list[TrialConfig] = [
    TrialConfig("sgd", 30, {"alpha": 1e-4, "penalty": "l2"}),
    TrialConfig(
        "mlp", 40, {"hidden_layer_sizes": (32,), "learning_rate_init": 1e-3, "alpha": 1e-4}
    ),
    TrialConfig("gbdt", 80, {"learning_rate": 0.1, "max_depth": 2, "subsample": 1.0}),
    TrialConfig("sgd", 30, {"alpha": 1e-2, "penalty": "l2"}),
    TrialConfig(
        "mlp", 40, {"hidden_layer_sizes": (64, 32), "learning_rate_init": 3e-3, "alpha": 1e-4}
    ),
    TrialConfig("gbdt", 120, {"learning_rate": 0.05, "max_depth": 3, "subsample": 0.8}),
    TrialConfig("sgd", 30, {"alpha": 1e-3, "penalty": "elasticnet"}),
    TrialConfig(
        "mlp", 40, {"hidden_layer_sizes": (16,), "learning_rate_init": 1e-2, "alpha": 1e-3}
    ),
    TrialConfig("gbdt", 60, {"learning_rate": 0.2, "max_depth": 1, "subsample": 1.0}),
    TrialConfig("sgd", 30, {"alpha": 1e-5, "penalty": "l1"}),
    TrialConfig(
        "mlp", 40, {"hidden_layer_sizes": (128,), "learning_rate_init": 3e-4, "alpha": 1e-4}
    ),
    TrialConfig("gbdt", 100, {"learning_rate": 0.1, "max_depth": 4, "subsample": 0.7}),
]
DEFAULT_TRIALS = 8


@dataclass
class Epoch:
    """Class-1 probabilities after one epoch, for the train and validation parts."""

    epoch: int
    train_proba: Any
    val_proba: Any


class Trainer:
    """Trains one config; iterate ``epochs()`` for predictions after each epoch.

    ``model`` is the fitted estimator once ``epochs()`` is exhausted.
    """

    def __init__(self, config: TrialConfig, data: Dataset, seed: int) -> None:
        self.config = config
        self.data = data
        self.seed = seed
        self.model: Any = None

    def epochs(self) -> Iterator[Epoch]:
        if self.config.family == "gbdt":
            return self._gbdt()
        return self._incremental()

    def _incremental(self) -> Iterator[Epoch]:
        import numpy as np

        cfg, data = self.config, self.data
        if cfg.family == "sgd":
            from sklearn.linear_model import SGDClassifier

            self.model = SGDClassifier(loss="log_loss", random_state=self.seed, **cfg.params)
        elif cfg.family == "mlp":
            from sklearn.neural_network import MLPClassifier

            self.model = MLPClassifier(random_state=self.seed, batch_size=32, **cfg.params)
        else:
            raise ValueError(f"unknown model family {cfg.family!r}")
        classes = np.unique(data.y_train)
        rng = np.random.default_rng(self.seed)
        for epoch in range(1, cfg.epochs + 1):
            # One shuffled pass over the training data per epoch.
            order = rng.permutation(len(data.y_train))
            self.model.partial_fit(data.X_train[order], data.y_train[order], classes=classes)
            yield Epoch(
                epoch,
                self.model.predict_proba(data.X_train)[:, 1],
                self.model.predict_proba(data.X_val)[:, 1],
            )

    def _gbdt(self) -> Iterator[Epoch]:
        from sklearn.ensemble import GradientBoostingClassifier

        cfg, data = self.config, self.data
        self.model = GradientBoostingClassifier(
            n_estimators=cfg.epochs, random_state=self.seed, **cfg.params
        )
        self.model.fit(data.X_train, data.y_train)
        stages = zip(
            self.model.staged_predict_proba(data.X_train),
            self.model.staged_predict_proba(data.X_val),
            strict=True,
        )
        for epoch, (p_train, p_val) in enumerate(stages, start=1):
            yield Epoch(epoch, p_train[:, 1], p_val[:, 1])


def feature_weights(model: Any, config: TrialConfig, data: Dataset) -> list[dict[str, Any]]:
    """Per-feature weights, largest first: importances, coefficients or input-layer weights."""
    import numpy as np

    if config.family == "gbdt":
        kind, values = "importance", np.asarray(model.feature_importances_)
        signed = None
    elif config.family == "sgd":
        kind, signed = "abs_coefficient", np.asarray(model.coef_[0])
        values = np.abs(signed)
    else:
        # Mean absolute weight leaving each input: a cheap look at what the network uses.
        kind, values = "mean_abs_input_weight", np.abs(model.coefs_[0]).mean(axis=1)
        signed = None
    rows = []
    for i in np.argsort(-values):
        row: dict[str, Any] = {"feature": data.feature_names[i], kind: float(values[i])}
        if signed is not None:
            row["coefficient"] = float(signed[i])
        rows.append(row)
    return rows
