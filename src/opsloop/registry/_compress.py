"""Compression: int8 weight quantisation of a registered language model, as a new version.

``quantize_model(client, "models:/NAME/3")`` loads that version (a
``transformers`` causal LM: Hugging Face safetensors or GGUF), stores its
Linear weights as int8 (``opsloop.registry.flavors._int8``) and registers
the result as the next version of ``NAME`` (or of ``name=``), tagged with
what it was made from. The new version loads with ``load_model``, serves with
``opsloop serve`` and answers as a ``models:/`` provider, on the CPU.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from opsloop.core import Context, context_of
from opsloop.errors import InvalidArgument
from opsloop.registry._client import Registry
from opsloop.registry._loading import load_model
from opsloop.registry._names import parse_model_uri
from opsloop.registry.entities import ModelVersion
from opsloop.registry.flavors._base import LoadedCausalLM

__all__ = ["quantize_model"]


def quantize_model(
    client: Any,
    source: str,
    *,
    name: str | None = None,
    alias: str | None = None,
    description: str | None = None,
    cache_dir: str | Path | None = None,
    smooth_alpha: float | None = 0.5,
) -> ModelVersion:
    """Register an int8-quantised copy of language model ``source`` (a ``models:/`` URI).

    ``name``: the registered model to add it to (default: the source's).
    ``alias``: moved to the new version. ``smooth_alpha``: SmoothQuant's
    migration strength (0 to 1, exclusive) folded in before quantising, or
    ``None`` for plain per-channel int8. Refuses models that are not causal
    LMs of the ``transformers`` flavor, or already int8.
    """
    ctx: Context = context_of(client)
    reg = ctx.room(Registry)
    if not isinstance(source, str) or not source.startswith("models:/"):
        raise InvalidArgument(
            f"the model to quantise is a models:/ URI, got {source!r}", details={"source": source}
        )
    parse_model_uri(source)
    if smooth_alpha is not None and (
        isinstance(smooth_alpha, bool)
        or not isinstance(smooth_alpha, int | float)
        or not 0.0 < smooth_alpha < 1.0
    ):
        raise InvalidArgument(
            f"smooth_alpha is between 0 and 1 (exclusive), got {smooth_alpha!r}",
            details={"smooth_alpha": repr(smooth_alpha)},
        )
    mv = reg.resolve(source)
    flavor, fmt = mv.flavor, mv.metadata.get("format")
    if flavor != "transformers":
        raise InvalidArgument(
            f"{source} is a {flavor} model; int8 quantisation takes a transformers language model",
            details={"source": source, "flavor": flavor},
        )
    if fmt == "int8":
        raise InvalidArgument(f"{source} is already int8", details={"source": source})
    lm = load_model(mv.uri, client=ctx, cache_dir=cache_dir, device="cpu")
    if not isinstance(lm, LoadedCausalLM) or lm.metadata.get("format") == "int8":
        raise InvalidArgument(
            f"{source} is not a float transformers language model "
            f"({getattr(lm, 'flavor', type(lm).__name__)}, {lm.metadata.get('format')})",
            details={"source": source},
        )
    from opsloop.registry.flavors._int8 import save_int8  # lazy: torch, safetensors

    origin = mv.uri
    with tempfile.TemporaryDirectory(prefix="opsloop-int8-") as tmp:
        folder = save_int8(
            lm,
            Path(tmp) / "model",
            extra_metadata={"quantized_from": origin},
            smooth_alpha=smooth_alpha,
        )
        new = reg.register(
            name or mv.name,
            folder,
            description=description or f"int8 weights of {origin}",
            tags={"opsloop.quantized_from": origin, "opsloop.quantization": "int8"},
        )
    if alias:
        reg.set_alias(new.name, alias, new.version)
    return new
