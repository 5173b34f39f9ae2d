"""PEFT adapters (LoRA and friends) on a registered base model.

A version holds the adapter (``adapter_config.json`` + safetensors weights)
and ``base_model``: the ``models:/NAME/VERSION`` of the transformers model it
was trained on (pinned at registration, even when registered with an alias).
Loading loads the base, applies the adapter and merges it into the weights,
so ``LoadedCausalLM.model`` is a plain transformers model.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors._base import LoadContext, LoadedCausalLM, ModelDescriptor, hub_offline
from opsloop.registry.flavors._common import (
    library_versions,
    prepare_folder,
    require_files,
    write_descriptor,
)


def save_peft(
    peft_model: Any,
    path: str | os.PathLike[str],
    *,
    base_model: str,
    model_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Save an adapter; ``base_model`` names its base (``models:/NAME/VERSION`` or a local model folder)."""
    if not isinstance(base_model, str) or not base_model:
        raise InvalidArgument("base_model must be a models:/ URI or a saved model folder")
    folder = prepare_folder(path, overwrite=overwrite)
    peft_model.save_pretrained(str(folder), safe_serialization=True)
    write_descriptor(
        folder,
        "peft",
        None,
        {
            "base_model": base_model,
            "model_id": model_id or folder.name,
            "task": "text-generation",
            "library_versions": library_versions("peft", "transformers", "torch"),
        },
    )
    return folder


def describe(files: list[str], options: dict[str, Any]) -> ModelDescriptor:
    base = options.pop("base_model", None)
    return ModelDescriptor(
        "peft",
        None,
        {
            "base_model": base,
            "model_id": options.pop("model_id", "adapter"),
            "task": "text-generation",
            **options,
        },
    )


def validate(files: list[str], desc: ModelDescriptor) -> None:
    require_files(files, ["adapter_config.json"], "peft")
    if not any(f.endswith(".safetensors") for f in files):
        raise InvalidArgument("a peft adapter version must hold its weights as .safetensors")


def load(path: Path, desc: ModelDescriptor, ctx: LoadContext) -> LoadedCausalLM:
    base_ref = desc.metadata.get("base_model")
    if not isinstance(base_ref, str) or not base_ref:
        raise InvalidArgument("this adapter names no base_model")
    if ctx.load_ref is None:
        raise InvalidArgument(
            "a peft adapter loads through load_model (it resolves the base model)"
        )
    base = ctx.load_ref(base_ref)
    if not isinstance(base, LoadedCausalLM):
        raise InvalidArgument(f"base model {base_ref!r} is not a causal language model")
    hub_offline()

    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapted = PeftModel.from_pretrained(base.model, str(path), is_trainable=False)
        merged = adapted.merge_and_unload()
    meta = {**desc.metadata, "base_model_id": base.model_id}
    return LoadedCausalLM(
        merged,
        base.tokenizer,
        model_id=str(desc.metadata.get("model_id") or path.name),
        flavor="peft",
        signature=desc.signature,
        metadata=meta,
        path=path,
    )
