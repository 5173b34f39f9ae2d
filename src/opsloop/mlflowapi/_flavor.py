"""The ``mlflow`` model flavor: an MLflow model folder (an ``MLmodel`` file and its files).

What ``create-model-version`` registers through the MLflow API. opsloop keeps
the files and their lineage and serves them back to MLflow clients
(``mlflow.pyfunc.load_model("models:/NAME/VERSION")`` against the server);
it does not load MLflow models itself, since that needs the ``mlflow``
package and each flavor's libraries, so ``load`` says how to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors import LoadContext, LoadedModel, ModelDescriptor

__all__ = ["MLMODEL", "describe", "load", "validate"]

MLMODEL = "MLmodel"


def describe(files: list[str], options: dict[str, Any]) -> ModelDescriptor:
    if MLMODEL not in files:
        raise InvalidArgument(
            f"an MLflow model version needs an {MLMODEL} file at its root; got {sorted(files)[:20]}"
        )
    return ModelDescriptor("mlflow", None, {"mlmodel_file": MLMODEL, **options})


def validate(files: list[str], desc: ModelDescriptor) -> None:
    if MLMODEL not in files:
        raise InvalidArgument(f"the MLflow model version lacks its {MLMODEL} file")


def load(path: Path, desc: ModelDescriptor, ctx: LoadContext) -> LoadedModel:
    raise InvalidArgument(
        "this version is an MLflow model: load it with the mlflow client pointed at the "
        "opsloop server (MLFLOW_TRACKING_URI=http://<server>; "
        "mlflow.pyfunc.load_model('models:/NAME/VERSION')), or download its files with "
        "`opsloop models download`",
        details={"path": str(path)},
    )
