"""Generic Python-function models, without pickle.

A pyfunc model is a *reference* to a class in installed code
(``"package.module:ClassName"``), plus a folder of artifacts and a JSON config.
Loading imports that module, builds the class with no arguments, calls
``load_context(context)`` (artifacts and config) if it has one, and calls
``predict`` per request.

Trust model: nothing from the registry is executed as code. The stored
version holds only the import path, data files and JSON; the code that runs
is the code installed in the loading environment, so loading a pyfunc model
trusts exactly what installing that package trusted. The referenced object
must be a class defining ``predict``. Keep model code in a versioned package
(pin it in the environment that serves the model).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors._base import LoadContext, LoadedModel, ModelDescriptor
from opsloop.registry.flavors._common import prepare_folder, resolve_signature, write_descriptor
from opsloop.registry.flavors._signature import Signature, to_columns

_REF_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
ARTIFACTS_DIR = "artifacts"


@dataclass
class PyfuncContext:
    """What ``load_context`` receives: artifact paths by name, the config, the model folder."""

    artifacts: dict[str, Path] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


class PythonModel:
    """Optional base class for pyfunc models.

    ``predict(data)`` gets records (a list of dicts, one per row) when
    ``input_format = "records"`` (the default) or columns (a dict of lists)
    with ``input_format = "columns"``, already checked against the signature,
    and returns one output per row.
    """

    input_format: str = "records"

    def load_context(self, context: PyfuncContext) -> None:
        """Read artifacts and config once, at load time."""

    def predict(self, data: Any) -> list[Any]:
        raise NotImplementedError


def class_ref(python_model: str | type) -> str:
    """``module:QualName`` for a class (or a checked reference string)."""
    if isinstance(python_model, str):
        ref = python_model
    elif inspect.isclass(python_model):
        ref = f"{python_model.__module__}:{python_model.__qualname__}"
        if python_model.__module__ == "__main__" or "<locals>" in python_model.__qualname__:
            raise InvalidArgument(
                f"{python_model.__qualname__} is defined in __main__ or inside a function; "
                "pyfunc models must live in an importable module"
            )
    else:
        raise InvalidArgument("python_model must be a class or a 'module:ClassName' string")
    if not _REF_RE.match(ref):
        raise InvalidArgument(f"python_model {ref!r} must look like 'package.module:ClassName'")
    return ref


def save_pyfunc(
    path: str | os.PathLike[str],
    python_model: str | type,
    *,
    artifacts: dict[str, str | os.PathLike[str]] | None = None,
    config: dict[str, Any] | None = None,
    signature: Signature | dict[str, Any] | None = None,
    input_example: Any = None,
    output_example: Any = None,
    overwrite: bool = False,
) -> Path:
    """Save a pyfunc model folder: the class reference, copies of ``artifacts``, and ``config``."""

    ref = class_ref(python_model)
    cfg = dict(config or {})
    try:
        json.dumps(cfg)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"pyfunc config must be JSON-serialisable: {exc}") from exc
    folder = prepare_folder(path, overwrite=overwrite)
    stored: dict[str, str] = {}
    for name, src in (artifacts or {}).items():
        if not re.fullmatch(r"[\w.\-]{1,128}", name):
            raise InvalidArgument(f"artifact name {name!r} may hold letters, digits, '_', '-', '.'")
        s = Path(src)
        dest = folder / ARTIFACTS_DIR / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, dest / s.name)
            stored[name] = f"{ARTIFACTS_DIR}/{name}/{s.name}"
        elif s.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, dest / s.name)
            stored[name] = f"{ARTIFACTS_DIR}/{name}/{s.name}"
        else:
            raise InvalidArgument(f"artifact {name!r}: {s} does not exist")
    sig = resolve_signature(signature, input_example, output_example)
    write_descriptor(
        folder, "pyfunc", sig, {"python_model": ref, "config": cfg, "artifacts": stored}
    )
    return folder


def describe(files: list[str], options: dict[str, Any]) -> ModelDescriptor:
    ref = options.pop("python_model", None)
    if not ref:
        raise InvalidArgument(
            "a pyfunc version needs options python_model='package.module:ClassName'"
        )
    return ModelDescriptor(
        "pyfunc",
        None,
        {
            "python_model": class_ref(str(ref)),
            "config": options.pop("config", {}),
            "artifacts": {},
            **options,
        },
    )


def validate(files: list[str], desc: ModelDescriptor) -> None:
    class_ref(str(desc.metadata.get("python_model", "")))
    arts = desc.metadata.get("artifacts") or {}
    if not isinstance(arts, dict):
        raise InvalidArgument("pyfunc metadata 'artifacts' must be an object")
    for name, rel in arts.items():
        if not any(f == rel or f.startswith(f"{rel}/") for f in files):
            raise InvalidArgument(
                f"pyfunc artifact {name!r} ({rel}) is not among the version's files"
            )


def import_class(ref: str) -> type:
    module_name, _, qual = class_ref(ref).partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(
            f"cannot import {module_name!r} for pyfunc model {ref!r}: install the package "
            f"that provides it ({exc})",
            details={"python_model": ref},
        ) from exc
    for part in qual.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise InvalidArgument(f"{module_name!r} has no {qual!r}", details={"python_model": ref})
    if not inspect.isclass(obj) or not callable(getattr(obj, "predict", None)):
        raise InvalidArgument(f"pyfunc model {ref!r} must be a class with a predict method")
    return obj


def load(path: Path, desc: ModelDescriptor, ctx: LoadContext) -> LoadedModel:
    ref = str(desc.metadata.get("python_model", ""))
    cls = import_class(ref)
    root = path.resolve()
    arts: dict[str, Path] = {}
    for name, rel in (desc.metadata.get("artifacts") or {}).items():
        p = (root / rel).resolve()
        if not p.is_relative_to(root):
            raise InvalidArgument(f"pyfunc artifact {name!r} points outside the model folder")
        arts[name] = p
    model = cls()
    context = PyfuncContext(arts, dict(desc.metadata.get("config") or {}), path)
    if callable(getattr(model, "load_context", None)):
        model.load_context(context)
    return LoadedPyfunc(model, desc, path)


class LoadedPyfunc(LoadedModel):
    def __init__(self, model: Any, desc: ModelDescriptor, path: Path) -> None:
        super().__init__("pyfunc", desc.signature, desc.metadata, path=path)
        self.model = model
        self.supports_proba = callable(getattr(model, "predict_proba", None))

    def _arg(self, columns: dict[str, list[Any]], n: int) -> Any:
        if getattr(self.model, "input_format", "records") == "columns":
            return columns
        names = list(columns)
        return [{k: columns[k][i] for k in names} for i in range(n)]

    def _predict(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        return list(self.model.predict(self._arg(columns, n)))

    def _predict_proba(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        return list(self.model.predict_proba(self._arg(columns, n)))


__all__ = ["PyfuncContext", "PythonModel", "save_pyfunc", "to_columns"]
