"""The quickstart's data: scikit-learn's bundled breast-cancer set, split and scaled.

The data ships inside scikit-learn, so the quickstart needs no download.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opsloop.errors import InvalidArgument

DATASET_NAME = "sklearn.breast_cancer"


@dataclass(frozen=True)
class Dataset:
    """A standardised train/validation split of a binary classification problem."""

    name: str
    feature_names: list[str]
    class_names: list[str]
    X_train: Any
    y_train: Any
    X_val: Any
    y_val: Any
    scaler: Any = None  # fitted on the train part; served models include it
    X_val_raw: Any = None  # validation features before scaling, as a client sends them

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (sizes and class balance) for the sweep's parent run."""
        import numpy as np

        return {
            "name": self.name,
            "n_train": len(self.y_train),
            "n_val": len(self.y_val),
            "n_features": self.n_features,
            "classes": self.class_names,
            "train_class_counts": np.bincount(self.y_train).tolist(),
            "val_class_counts": np.bincount(self.y_val).tolist(),
        }


def require_sklearn() -> None:
    """Raise a clear error when the ``quickstart`` extra is not installed."""
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise InvalidArgument(
            "the quickstart trains scikit-learn models: pip install 'opsloop[quickstart]'"
        ) from exc


def load_dataset(seed: int = 0, val_fraction: float = 0.25) -> Dataset:
    """Load, split (stratified) and standardise the data; the scaler sees only the train part."""
    require_sklearn()
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    raw = load_breast_cancer()
    X_train, X_val, y_train, y_val = train_test_split(
        raw.data, raw.target, test_size=val_fraction, random_state=seed, stratify=raw.target
    )
    scaler = StandardScaler().fit(X_train)
    return Dataset(
        name=DATASET_NAME,
        feature_names=[str(f) for f in raw.feature_names],
        class_names=[str(c) for c in raw.target_names],
        X_train=scaler.transform(X_train),
        y_train=y_train,
        X_val=scaler.transform(X_val),
        y_val=y_val,
        scaler=scaler,
        X_val_raw=X_val,
    )
