"""``--model`` to a ``LoadedCausalLM``: a bundled GGUF (``local:smollm2``), a ``models:/`` URI or a folder."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import context_of
from opsloop.errors import InvalidArgument
from opsloop.registry import (
    LoadedCausalLM,
    Registry,
    bundled_gguf,
    default_cache_dir,
    load_model,
)
from opsloop.registry.flavors import DESCRIPTOR_FILE, save_gguf

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.tracking import Tracking

__all__ = ["BUNDLED_IDS", "check_benchmark_model", "load_benchmark_model"]

BUNDLED_IDS = {"smollm2": "SmolLM2-135M-Instruct", "gemma3": "gemma-3-270m"}


def _bundled_folder(name: str, cache: Path) -> Path:
    """A saved-model folder for a bundled GGUF, written once per cache."""
    folder = cache / "bundled" / name
    if (folder / DESCRIPTOR_FILE).is_file():
        return folder
    gguf = bundled_gguf(name, cache_dir=cache / "assembled")
    tmp = cache / "bundled" / f".tmp-{uuid.uuid4().hex}"
    try:
        save_gguf(gguf, tmp, model_id=BUNDLED_IDS[name])
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / DESCRIPTOR_FILE).is_file():  # another process won the race otherwise
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def check_benchmark_model(model: Any, *, client: Tracking | Context | None = None) -> None:
    """``model`` names something a benchmark can load, checked without loading it.

    A bundled name, an existing folder, or a ``models:/`` URI that resolves
    (with a client); ``InvalidArgument``/``NotFound`` naming it otherwise.
    """
    if isinstance(model, LoadedCausalLM):
        return
    if not isinstance(model, str | os.PathLike) or not str(model):
        raise InvalidArgument(
            "model must be local:smollm2, local:gemma3, a models:/ URI, a saved model folder "
            "or a LoadedCausalLM"
        )
    text = os.fspath(model)
    if text.startswith("local:"):
        name = text.removeprefix("local:")
        if name not in BUNDLED_IDS:
            raise InvalidArgument(
                f"unknown bundled model {name!r}; choose local:{' or local:'.join(BUNDLED_IDS)}",
                details={"model": text},
            )
    elif text.startswith("models:/"):
        if client is not None:
            context_of(client).room(Registry).resolve(text)
    elif not Path(text).expanduser().is_dir():
        raise InvalidArgument(
            f"unknown model {text!r}: use local:{', local:'.join(BUNDLED_IDS)}, "
            "a models:/ URI or a saved model folder",
            details={"model": text},
        )


def load_benchmark_model(
    model: Any,
    *,
    client: Tracking | Context | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
) -> tuple[LoadedCausalLM, str]:
    """The loaded model and the label results record for it."""
    check_benchmark_model(model)
    if isinstance(model, LoadedCausalLM):
        return model, model.uri or model.model_id
    text = os.fspath(model)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(client)
    source: str | Path = text
    if text.startswith("local:"):
        source = _bundled_folder(text.removeprefix("local:"), cache)
    lm = load_model(source, client=client, cache_dir=cache, device=device)
    if not isinstance(lm, LoadedCausalLM):
        raise InvalidArgument(
            f"{text} is a {lm.flavor} model; benchmarks need a causal language model",
            details={"model": text, "flavor": lm.flavor},
        )
    return lm, text
