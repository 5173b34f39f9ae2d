"""xgboost and lightgbm models in their own text formats (no pickle); used only when installed.

xgboost models are saved as ``model.json`` (``save_model``) and loaded into
the scikit-learn wrapper class recorded at save time, chosen from a fixed
list; lightgbm boosters are saved as ``model.txt``. Neither format can run
code when loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors._base import LoadContext, LoadedModel, ModelDescriptor
from opsloop.registry.flavors._common import (
    library_versions,
    model_files,
    prepare_folder,
    require_files,
    resolve_signature,
    write_descriptor,
)
from opsloop.registry.flavors._signature import Signature
from opsloop.registry.flavors._sklearn import LoadedEstimator, _call, _jsonable

_XGB_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRanker", "Booster")
_FILES = {"xgboost": "model.json", "lightgbm": "model.txt"}


def save_xgboost(
    model: Any,
    path: str | os.PathLike[str],
    *,
    signature: Signature | dict[str, Any] | None = None,
    input_example: Any = None,
    overwrite: bool = False,
) -> Path:
    """Save an xgboost model (sklearn wrapper or ``Booster``) as ``model.json``."""
    cls = type(model).__name__
    if cls not in _XGB_CLASSES:
        raise InvalidArgument(f"save_xgboost takes one of {_XGB_CLASSES}, got {cls}")
    folder = prepare_folder(path, overwrite=overwrite)
    out = (
        _call(model.predict, input_example)
        if signature is None and input_example is not None and cls != "Booster"
        else None
    )
    model.save_model(str(folder / _FILES["xgboost"]))
    meta: dict[str, Any] = {
        "model_file": _FILES["xgboost"],
        "model_class": cls,
        "library_versions": library_versions("xgboost", "numpy"),
    }
    if getattr(model, "classes_", None) is not None:
        meta["task"], meta["classes"] = "classifier", _jsonable(model.classes_)
    write_descriptor(folder, "xgboost", resolve_signature(signature, input_example, out), meta)
    return folder


def save_lightgbm(
    model: Any,
    path: str | os.PathLike[str],
    *,
    signature: Signature | dict[str, Any] | None = None,
    input_example: Any = None,
    overwrite: bool = False,
) -> Path:
    """Save a lightgbm model (sklearn wrapper or ``Booster``) as ``model.txt``."""
    folder = prepare_folder(path, overwrite=overwrite)
    booster = getattr(model, "booster_", model)
    out = (
        _call(model.predict, input_example)
        if signature is None and input_example is not None
        else None
    )
    booster.save_model(str(folder / _FILES["lightgbm"]))
    meta: dict[str, Any] = {
        "model_file": _FILES["lightgbm"],
        "model_class": type(model).__name__,
        "library_versions": library_versions("lightgbm", "numpy"),
    }
    if getattr(model, "classes_", None) is not None:
        meta["task"], meta["classes"] = "classifier", _jsonable(model.classes_)
    write_descriptor(folder, "lightgbm", resolve_signature(signature, input_example, out), meta)
    return folder


def describe(files: list[str], options: dict[str, Any]) -> ModelDescriptor:
    mf = model_files(files)
    if "model.json" in mf or any(f.endswith(".ubj") for f in mf):
        name = options.pop("model_file", None) or ("model.json" if "model.json" in mf else mf[0])
        return ModelDescriptor(
            "xgboost", None, {"model_file": name, "model_class": "Booster", **options}
        )
    name = options.pop("model_file", None) or ("model.txt" if "model.txt" in mf else None)
    if name is None:
        raise InvalidArgument(
            "a boosting model version needs model.json (xgboost) or model.txt (lightgbm)"
        )
    return ModelDescriptor(
        "lightgbm", None, {"model_file": name, "model_class": "Booster", **options}
    )


def validate(files: list[str], desc: ModelDescriptor) -> None:
    require_files(files, [str(desc.metadata.get("model_file", _FILES[desc.flavor]))], desc.flavor)


def load(path: Path, desc: ModelDescriptor, ctx: LoadContext) -> LoadedModel:
    file = str(path / str(desc.metadata.get("model_file", _FILES[desc.flavor])))
    cls = str(desc.metadata.get("model_class", "Booster"))
    if desc.flavor == "xgboost":
        try:
            import xgboost
        except ImportError as exc:
            raise InvalidArgument("this model needs xgboost: pip install xgboost") from exc
        if cls not in _XGB_CLASSES:
            raise InvalidArgument(f"unknown xgboost model class {cls!r}")
        model = getattr(xgboost, cls)()
        model.load_model(file)
        if cls == "Booster":
            return LoadedBooster(model, desc, path)
        return LoadedEstimator(model, "xgboost", desc, path)
    try:
        import lightgbm
    except ImportError as exc:
        raise InvalidArgument("this model needs lightgbm: pip install lightgbm") from exc
    return LoadedBooster(lightgbm.Booster(model_file=file), desc, path)


class LoadedBooster(LoadedEstimator):
    """A raw booster: ``predict`` gives its raw output (probabilities for binary objectives)."""

    def __init__(self, model: Any, desc: ModelDescriptor, path: Path) -> None:
        super().__init__(model, desc.flavor, desc, path)
        self.supports_proba = False

    def _predict(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        x = self._x(columns)
        if self.flavor == "xgboost":
            import xgboost

            x = xgboost.DMatrix(x)
        out: list[Any] = _call(self.model.predict, x).tolist()
        return out
