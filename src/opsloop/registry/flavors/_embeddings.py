"""Sentence-embedding models with sentence-transformers (weights as safetensors)."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors._base import (
    LoadContext,
    LoadedEmbedder,
    ModelDescriptor,
    embedding_dimension,
    hub_offline,
)
from opsloop.registry.flavors._common import (
    library_versions,
    model_files,
    prepare_folder,
    require_files,
    write_descriptor,
)

_LIBS = ("sentence-transformers", "transformers", "torch")


def save_sentence_transformer(
    model: Any,
    path: str | os.PathLike[str],
    *,
    model_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a ``SentenceTransformer`` (or copy a saved one's folder) into a model folder."""
    folder = prepare_folder(path, overwrite=overwrite)
    if isinstance(model, str | os.PathLike):
        src = Path(model)
        if not (src / "modules.json").is_file():
            raise InvalidArgument(
                f"{src} is not a saved sentence-transformers model (no modules.json)"
            )
        shutil.rmtree(folder)
        shutil.copytree(
            src, folder, ignore=shutil.ignore_patterns(".git*", "*.bin", "*.pt", "*.pkl")
        )
        mid = model_id or src.name
        dim = None
    else:
        model.save(str(folder), safe_serialization=True)
        mid = model_id or folder.name
        dim = embedding_dimension(model)
    meta: dict[str, Any] = {
        "model_id": mid,
        "task": "embedding",
        "library_versions": library_versions(*_LIBS),
    }
    if dim is not None:
        meta["dimension"] = dim
    write_descriptor(folder, "sentence_transformers", None, meta)
    return folder


def describe(files: list[str], options: dict[str, Any]) -> ModelDescriptor:
    if "modules.json" not in model_files(files):
        raise InvalidArgument(
            "a sentence_transformers version needs a saved model folder (modules.json)"
        )
    return ModelDescriptor(
        "sentence_transformers",
        None,
        {
            "model_id": options.pop("model_id", "embedder"),
            "task": "embedding",
            **options,
        },
    )


def validate(files: list[str], desc: ModelDescriptor) -> None:
    require_files(files, ["modules.json"], "sentence_transformers")
    if any(f.endswith((".bin", ".pt", ".pkl", ".pickle")) for f in files):
        raise InvalidArgument(
            "a sentence_transformers version must not hold pickle-based weights (.bin/.pt/.pkl); "
            "save it with safetensors"
        )


def load(path: Path, desc: ModelDescriptor, ctx: LoadContext) -> LoadedEmbedder:
    hub_offline()

    from sentence_transformers import SentenceTransformer

    device = ctx.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    return LoadedEmbedder(
        model,
        model_id=str(desc.metadata.get("model_id") or path.name),
        signature=desc.signature,
        metadata=desc.metadata,
        path=path,
    )
