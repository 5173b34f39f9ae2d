"""Registry: models, prompts and pipelines as versioned, aliased artifacts with lineage and cards.

Load any registered or saved model with one call::

    from opsloop.registry import load_model
    model = load_model("models:/churn@champion")          # or models:/churn/3, a folder
    model.predict([{"age": 41, "plan": "pro"}])

Save models with ``opsloop.registry.flavors`` (``save_sklearn``, ``save_pyfunc``,
``save_gguf``, ``save_transformers``, ``save_peft``, ``save_sentence_transformer``)
and register them with ``Registry(client).register(name, source)``.
``quantize_model(client, "models:/llm/2")`` registers an int8 copy of a language model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.registry._bundled import bundled_embedder, bundled_gguf
    from opsloop.registry._client import Registry
    from opsloop.registry._compress import quantize_model
    from opsloop.registry._hooks import (
        ALIAS_DELETE,
        ALIAS_MOVE,
        AliasDelete,
        AliasDeleteCheck,
        AliasMove,
        AliasMoveCheck,
        MoveCheck,
        VersionRef,
    )
    from opsloop.registry._loading import default_cache_dir, load_model
    from opsloop.registry._names import check_alias, check_model_name, parse_model_uri, version_ref
    from opsloop.registry._service import RegistryService
    from opsloop.registry.entities import (
        CardFields,
        DatasetLineage,
        FileEntry,
        LineageDataset,
        LineageModelVersion,
        LineageRun,
        ModelAlias,
        ModelCard,
        ModelVersion,
        RegisteredModel,
        RegistryEvent,
        VersionLineage,
    )
    from opsloop.registry.flavors._base import (
        GenerationResult,
        LoadedCausalLM,
        LoadedEmbedder,
        LoadedModel,
    )
    from opsloop.registry.flavors._pyfunc import PyfuncContext, PythonModel
    from opsloop.registry.flavors._signature import ColumnSpec, Signature, infer_signature

_LAZY = {
    "bundled_embedder": "opsloop.registry._bundled",
    "bundled_gguf": "opsloop.registry._bundled",
    "Registry": "opsloop.registry._client",
    "load_model": "opsloop.registry._loading",
    "quantize_model": "opsloop.registry._compress",
    "default_cache_dir": "opsloop.registry._loading",
    "parse_model_uri": "opsloop.registry._names",
    "ALIAS_MOVE": "opsloop.registry._hooks",
    "ALIAS_DELETE": "opsloop.registry._hooks",
    "AliasDelete": "opsloop.registry._hooks",
    "AliasDeleteCheck": "opsloop.registry._hooks",
    "MoveCheck": "opsloop.registry._hooks",
    "AliasMove": "opsloop.registry._hooks",
    "AliasMoveCheck": "opsloop.registry._hooks",
    "VersionRef": "opsloop.registry._hooks",
    "check_alias": "opsloop.registry._names",
    "check_model_name": "opsloop.registry._names",
    "version_ref": "opsloop.registry._names",
    "RegistryService": "opsloop.registry._service",
    "GenerationResult": "opsloop.registry.flavors._base",
    "LoadedCausalLM": "opsloop.registry.flavors._base",
    "LoadedEmbedder": "opsloop.registry.flavors._base",
    "LoadedModel": "opsloop.registry.flavors._base",
    "PyfuncContext": "opsloop.registry.flavors._pyfunc",
    "PythonModel": "opsloop.registry.flavors._pyfunc",
    "ColumnSpec": "opsloop.registry.flavors._signature",
    "Signature": "opsloop.registry.flavors._signature",
    "infer_signature": "opsloop.registry.flavors._signature",
}
_LAZY.update(
    {
        n: "opsloop.registry.entities"
        for n in (
            "CardFields",
            "DatasetLineage",
            "FileEntry",
            "LineageDataset",
            "LineageModelVersion",
            "LineageRun",
            "ModelAlias",
            "ModelCard",
            "ModelVersion",
            "RegisteredModel",
            "RegistryEvent",
            "VersionLineage",
        )
    }
)

__all__ = [
    "ALIAS_DELETE",
    "ALIAS_MOVE",
    "AliasDelete",
    "AliasDeleteCheck",
    "AliasMove",
    "AliasMoveCheck",
    "CardFields",
    "ColumnSpec",
    "DatasetLineage",
    "FileEntry",
    "GenerationResult",
    "LineageDataset",
    "LineageModelVersion",
    "LineageRun",
    "LoadedCausalLM",
    "LoadedEmbedder",
    "LoadedModel",
    "ModelAlias",
    "ModelCard",
    "ModelVersion",
    "MoveCheck",
    "PyfuncContext",
    "PythonModel",
    "RegisteredModel",
    "Registry",
    "RegistryEvent",
    "RegistryService",
    "Signature",
    "VersionLineage",
    "VersionRef",
    "bundled_embedder",
    "bundled_gguf",
    "check_alias",
    "check_model_name",
    "default_cache_dir",
    "infer_signature",
    "load_model",
    "parse_model_uri",
    "quantize_model",
    "version_ref",
]


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
