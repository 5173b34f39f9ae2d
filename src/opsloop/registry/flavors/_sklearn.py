"""scikit-learn models saved with skops, never pickle.

Trust model: a ``.skops`` file names the types it needs. skops itself trusts
only plain scikit-learn/numpy building blocks; any other type (including some
scikit-learn internals such as ``sklearn.tree._tree.Tree``) must be trusted
by name by whoever loads the model: ``load_model(uri, trusted_types=[...])``.
The list found at save time is kept in the metadata as ``untrusted_types``
for review, but it never grants trust by itself: a descriptor can be edited,
so only the caller's list counts.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument, PermissionDenied
from opsloop.registry.flavors._base import LoadContext, LoadedModel, ModelDescriptor
from opsloop.registry.flavors._common import (
    library_versions,
    model_files,
    prepare_folder,
    require_files,
    resolve_signature,
    write_descriptor,
)
from opsloop.registry.flavors._signature import Signature, to_columns

MODEL_FILE = "model.skops"


def _jsonable(values: Any) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]


def sklearn_metadata(model: Any, model_file: str, untrusted: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "model_file": model_file,
        "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
        "untrusted_types": untrusted,
        "library_versions": library_versions("scikit-learn", "skops", "numpy"),
    }
    classes = getattr(model, "classes_", None)
    if classes is not None and hasattr(model, "predict_proba"):
        meta["task"] = "classifier"
        meta["classes"] = _jsonable(classes)
    elif hasattr(model, "predict"):
        meta["task"] = "regressor" if classes is None else "classifier"
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        meta["feature_names"] = [str(n) for n in names]
    return meta


def save_sklearn(
    model: Any,
    path: str | os.PathLike[str],
    *,
    signature: Signature | dict[str, Any] | None = None,
    input_example: Any = None,
    overwrite: bool = False,
) -> Path:
    """Save a fitted estimator (or pipeline) with skops into a model folder.

    Without ``signature``, one is inferred from ``input_example`` and the
    model's predictions on it.
    """
    import skops.io as sio

    folder = prepare_folder(path, overwrite=overwrite)
    out = None
    if signature is None and input_example is not None:
        out = _call(model.predict, _example_matrix(input_example, model))
    sig = resolve_signature(signature, input_example, out)
    sio.dump(model, folder / MODEL_FILE)
    untrusted = sorted(sio.get_untrusted_types(file=folder / MODEL_FILE))
    write_descriptor(folder, "sklearn", sig, sklearn_metadata(model, MODEL_FILE, untrusted))
    return folder


def _example_matrix(example: Any, model: Any) -> Any:
    if hasattr(example, "ndim") or hasattr(example, "columns"):
        return example
    cols, _ = to_columns(example)
    return _matrix(cols, list(cols), None, model)


def describe(files: list[str], options: dict[str, Any]) -> ModelDescriptor:
    skops_files = [f for f in model_files(files) if f.endswith(".skops")]
    name = options.pop("model_file", None) or (skops_files[0] if len(skops_files) == 1 else None)
    if name is None:
        raise InvalidArgument(
            "an sklearn model version needs exactly one .skops file (or options model_file=...)",
            details={"skops_files": skops_files},
        )
    return ModelDescriptor("sklearn", None, {"model_file": name, **options})


def validate(files: list[str], desc: ModelDescriptor) -> None:
    require_files(files, [str(desc.metadata.get("model_file", MODEL_FILE))], "sklearn")


def check_trust(file: Path, trusted: list[str]) -> list[str]:
    """The file's non-default types, after checking the caller trusts every one of them."""
    import skops.io as sio

    try:
        needed = sorted(sio.get_untrusted_types(file=file))
    except Exception as exc:
        raise InvalidArgument(f"{file.name} is not a readable skops file: {exc}") from exc
    refused = [t for t in needed if t not in set(trusted)]
    if refused:
        head = (
            f"refusing to load {file.name}: it holds types that are not trusted: {refused}. "
            "Review them; if you trust them, "
        )
        flags = " ".join(f"--trust {t}" for t in refused)
        raise PermissionDenied(
            head + f"pass trusted_types={refused!r}",
            # The command line words the same refusal with its own option.
            details={"untrusted_types": refused, "cli_message": head + f"add {flags}"},
        )
    return needed


def load(path: Path, desc: ModelDescriptor, ctx: LoadContext) -> LoadedModel:
    import skops.io as sio

    file = path / str(desc.metadata.get("model_file", MODEL_FILE))
    needed = check_trust(file, ctx.trusted_types)
    model = sio.load(file, trusted=needed)
    return LoadedEstimator(model, "sklearn", desc, path)


class LoadedEstimator(LoadedModel):
    """An estimator with ``predict`` (and ``predict_proba`` when it has one)."""

    def __init__(self, model: Any, flavor: str, desc: ModelDescriptor, path: Path) -> None:
        super().__init__(flavor, desc.signature, desc.metadata, path=path)
        self.model = model
        self.supports_proba = hasattr(model, "predict_proba")

    def _x(self, columns: dict[str, list[Any]]) -> Any:
        names = self.signature.input_names if self.signature else list(columns)
        return _matrix(columns, names, self.signature, self.model)

    def _predict(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        x = self._x(columns)
        fast = _forest_predict(self.model, x)
        out: list[Any] = (fast if fast is not None else _call(self.model.predict, x)).tolist()
        return out

    def _predict_proba(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        x = self._x(columns)
        fast = _forest_proba(self.model, x)
        out: list[Any] = (fast if fast is not None else _call(self.model.predict_proba, x)).tolist()
        return out


_FORESTS = {
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "RandomForestRegressor",
    "ExtraTreesRegressor",
}


def _forest_input(model: Any, x: Any) -> Any:
    """``x`` as the float32 matrix trees read, or None when the fast path does not apply."""
    import numpy as np

    if (
        type(model).__name__ not in _FORESTS
        or getattr(model, "n_outputs_", 2) != 1
        or not isinstance(x, np.ndarray)
        or x.ndim != 2
        or x.dtype.kind not in "biuf"
        or not hasattr(model, "estimators_")
    ):
        return None
    return np.ascontiguousarray(x, dtype=np.float32)


def _forest_proba(model: Any, x: Any) -> Any:
    """A forest classifier's probabilities, summed tree by tree without per-call dispatch.

    scikit-learn's own ``predict_proba`` does the same sum but spends milliseconds per
    call on validation and joblib dispatch; for a served model answering single rows
    that overhead, not the trees, is the cost. The result is the same array.
    """
    x32 = _forest_input(model, x)
    if x32 is None or not hasattr(model, "classes_"):
        return None
    total: Any = None
    for tree in model.estimators_:
        p = tree.predict_proba(x32, check_input=False)
        total = p if total is None else total + p
    return total / len(model.estimators_)


def _forest_predict(model: Any, x: Any) -> Any:
    import numpy as np

    x32 = _forest_input(model, x)
    if x32 is None:
        return None
    if hasattr(model, "classes_"):
        proba = _forest_proba(model, x)
        return model.classes_.take(np.argmax(proba, axis=1), axis=0)
    total: Any = None
    for tree in model.estimators_:
        p = tree.predict(x32, check_input=False)
        total = p if total is None else total + p
    return total / len(model.estimators_)


def _matrix(
    columns: dict[str, list[Any]], names: list[str], sig: Signature | None, model: Any
) -> Any:
    """The 2-D input an estimator expects, built from validated columns."""
    import numpy as np

    if sig is not None and len(sig.inputs) == 1 and sig.inputs[0].type == "tensor":
        return np.asarray(columns[names[0]])
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is not None:
        try:
            import pandas as pd  # a model fitted on a DataFrame selects columns by name

            return pd.DataFrame({k: columns[k] for k in names})
        except ImportError:
            pass
    arrays = [np.asarray(columns[k]) for k in names]
    if all(a.dtype.kind in "biuf" for a in arrays):
        return np.column_stack([a.astype(np.float64) for a in arrays])
    return np.column_stack([a.astype(object) for a in arrays])


def _call(fn: Any, x: Any) -> Any:
    import numpy as np

    with warnings.catch_warnings():
        # A model fitted on a DataFrame warns on arrays even with columns in the right order.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return np.asarray(fn(x))
