"""Model formats ("flavors"): save a model into a folder, load it back behind one API.

Every flavor writes ``opsloop-model.json`` (flavor, signature, metadata) next
to its files and never uses pickle. Heavy libraries load only when a save or
load function of their flavor is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsloop.registry.flavors._base import (
        DESCRIPTOR_FILE,
        FLAVORS,
        GENERATION_DEFAULTS,
        GenerationResult,
        LoadContext,
        LoadedCausalLM,
        LoadedEmbedder,
        LoadedModel,
        ModelDescriptor,
        flavor_module,
    )
    from opsloop.registry.flavors._boosting import save_lightgbm, save_xgboost
    from opsloop.registry.flavors._common import prepare_folder, write_descriptor
    from opsloop.registry.flavors._embeddings import save_sentence_transformer
    from opsloop.registry.flavors._peft import save_peft
    from opsloop.registry.flavors._pyfunc import PyfuncContext, PythonModel, save_pyfunc
    from opsloop.registry.flavors._signature import (
        ColumnSpec,
        Signature,
        infer_signature,
        validate_input,
    )
    from opsloop.registry.flavors._sklearn import save_sklearn
    from opsloop.registry.flavors._transformers import save_gguf, save_transformers

_LAZY = {
    "DESCRIPTOR_FILE": "_base",
    "FLAVORS": "_base",
    "GENERATION_DEFAULTS": "_base",
    "GenerationResult": "_base",
    "LoadedCausalLM": "_base",
    "LoadedEmbedder": "_base",
    "LoadedModel": "_base",
    "ModelDescriptor": "_base",
    "LoadContext": "_base",
    "flavor_module": "_base",
    "prepare_folder": "_common",
    "write_descriptor": "_common",
    "validate_input": "_signature",
    "ColumnSpec": "_signature",
    "Signature": "_signature",
    "infer_signature": "_signature",
    "save_sklearn": "_sklearn",
    "save_xgboost": "_boosting",
    "save_lightgbm": "_boosting",
    "save_pyfunc": "_pyfunc",
    "PythonModel": "_pyfunc",
    "PyfuncContext": "_pyfunc",
    "save_transformers": "_transformers",
    "save_gguf": "_transformers",
    "save_peft": "_peft",
    "save_sentence_transformer": "_embeddings",
}

__all__ = [
    "DESCRIPTOR_FILE",
    "FLAVORS",
    "GENERATION_DEFAULTS",
    "ColumnSpec",
    "GenerationResult",
    "LoadContext",
    "LoadedCausalLM",
    "LoadedEmbedder",
    "LoadedModel",
    "ModelDescriptor",
    "PyfuncContext",
    "PythonModel",
    "Signature",
    "flavor_module",
    "infer_signature",
    "prepare_folder",
    "save_gguf",
    "save_lightgbm",
    "save_peft",
    "save_pyfunc",
    "save_sentence_transformer",
    "save_sklearn",
    "save_transformers",
    "save_xgboost",
    "validate_input",
    "write_descriptor",
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'opsloop.registry.flavors' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"opsloop.registry.flavors.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
