"""int8 weight quantisation of a causal LM: saved as int8 safetensors, run with int8 matmuls on CPU.

Every ``torch.nn.Linear`` weight (the decoder's projections and the output
head) is stored as int8 with one float32 scale per output row (symmetric,
per channel: ``w ≈ q * scale``); everything else (embeddings, norms, biases)
stays as it was. Saved, a version is a Hugging Face folder with
``model-int8.safetensors`` instead of the float weights (``format: int8`` in
the transformers flavor's metadata), so no pickle is involved. Loaded, the
model is built from its config, the float tensors are loaded, and each Linear
becomes torch's dynamically quantised Linear
(``torch.ao.nn.quantized.dynamic.Linear``) holding the stored int8 weights,
its activations quantised per token at run time. That runs on CPU only.

Before quantising, SmoothQuant scales (``_smooth``) are folded into a copy of
the float weights, so the per-call activation scale is not set by a few
outlier channels; ``smooth_alpha=None`` quantises the weights as they are.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import functools
import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors._base import LoadContext, LoadedCausalLM, hub_offline
from opsloop.registry.flavors._common import library_versions, prepare_folder, write_descriptor
from opsloop.registry.flavors._smooth import smooth

WEIGHTS_FILE = "model-int8.safetensors"
_Q, _SCALE = ".int8", ".scale"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # torch marks its quantised tensor types deprecated; that is the library's notice, not ours.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _linear_names(model: Any) -> list[str]:
    import torch

    return [n for n, m in model.named_modules() if type(m) is torch.nn.Linear]


def quantize_weight(w: Any) -> tuple[Any, Any]:
    """``(q, scale)``: int8 ``[out, in]`` and float32 ``[out]`` with ``w ≈ q * scale[:, None]``."""
    import torch

    w = w.detach().float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def save_int8(
    lm: LoadedCausalLM,
    path: str | os.PathLike[str],
    *,
    extra_metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
    smooth_alpha: float | None = 0.5,
) -> Path:
    """Save ``lm`` with int8 Linear weights as a ``transformers`` model folder (``format: int8``).

    ``smooth_alpha``: SmoothQuant's migration strength in (0, 1), applied to a
    copy of the weights first (``lm`` is left as it was); ``None``: no smoothing.
    """
    import torch
    from safetensors.torch import save_file

    if smooth_alpha is not None and not 0.0 < smooth_alpha < 1.0:
        raise InvalidArgument(
            f"smooth_alpha is between 0 and 1 (exclusive), got {smooth_alpha}",
            details={"smooth_alpha": smooth_alpha},
        )
    model = lm.model
    linear = _linear_names(model)
    if not linear:
        raise InvalidArgument(f"{lm.model_id} has no Linear layers to quantise")
    if any(p.is_meta for p in model.parameters()):
        raise InvalidArgument(f"{lm.model_id} has weights on the meta device")
    smoothing: dict[str, Any] | None = None
    if smooth_alpha is not None:
        model = copy.deepcopy(model).float().eval()
        smoothing = smooth(model, lm.tokenizer, alpha=smooth_alpha).as_metadata()
    folder = prepare_folder(path, overwrite=overwrite)
    modules = dict(model.named_modules())
    tensors: dict[str, Any] = {}
    quantised = {f"{n}.weight" for n in linear}
    for n in linear:
        q, scale = quantize_weight(modules[n].weight)
        tensors[f"{n}.weight{_Q}"] = q.contiguous()
        tensors[f"{n}.weight{_SCALE}"] = scale.contiguous()
    seen: set[int] = set()
    for key, t in model.state_dict().items():
        if key in quantised or not isinstance(t, torch.Tensor):
            continue
        ptr = t.data_ptr()
        if ptr in seen and t.numel() > 0:  # a tied tensor: the config re-ties it on load
            continue
        seen.add(ptr)
        tensors[key] = t.detach().to("cpu").contiguous().clone()
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    model.config.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    write_descriptor(
        folder,
        "transformers",
        lm.signature,
        {
            **(extra_metadata or {}),
            "format": "int8",
            "model_id": lm.model_id,
            "task": "text-generation",
            "quantization": {
                "method": "int8 weights, per output channel, symmetric; dynamic int8 "
                "activations, per token",
                "layers": "torch.nn.Linear",
                "count": len(linear),
                "smoothing": smoothing,
            },
            "library_versions": library_versions("transformers", "torch", "safetensors"),
        },
    )
    return folder


def load_int8(folder: Path, ctx: LoadContext) -> tuple[Any, Any]:
    """Model (eval, CPU, dynamically quantised Linear layers) and tokenizer of an int8 folder."""
    hub_offline()
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if ctx.device not in (None, "cpu"):
        raise InvalidArgument(
            f"an int8 model runs on the CPU only, not on {ctx.device!r}",
            details={"device": ctx.device},
        )
    with _quiet():
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        model: Any = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    stored = load_file(str(folder / WEIGHTS_FILE))
    floats = {k: v for k, v in stored.items() if not k.endswith((_Q, _SCALE))}
    missing = set(_linear_names(model)) - {
        k[: -len(".weight" + _Q)] for k in stored if k.endswith(_Q)
    }
    if missing:
        raise InvalidArgument(
            f"{folder / WEIGHTS_FILE} lacks int8 weights for {sorted(missing)[:3]}",
            details={"missing": sorted(missing)[:20]},
        )
    model.load_state_dict(floats, strict=False)
    model.tie_weights()
    model.eval()
    modules = dict(model.named_modules())
    cls = _per_token_linear()
    with _quiet():
        for name in _linear_names(model):
            lin = modules[name]
            q, scale = stored[f"{name}.weight{_Q}"], stored[f"{name}.weight{_SCALE}"]
            qw = torch._make_per_channel_quantized_tensor(
                q, scale.double(), torch.zeros(q.shape[0], dtype=torch.long), 0
            )
            new = cls(lin.in_features, lin.out_features, bias_=False, dtype=torch.qint8)
            new.set_weight_bias(qw, None)
            new.float_bias = None if lin.bias is None else lin.bias.detach().clone()
            parent, _, child = name.rpartition(".")
            setattr(modules[parent] if parent else model, child, new)
    del modules, stored, floats
    _give_back_freed_memory()
    return model, tok


def _give_back_freed_memory() -> None:
    """Hand the float weights just replaced back to the OS: glibc keeps freed heap pages in
    the process (the load's resident set halves on SmolLM2); a no-op elsewhere."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@functools.cache
def _per_token_linear() -> type:
    """torch's dynamically quantised Linear with activations quantised per token.

    The kernel picks one activation scale per call, over every row of the input,
    and a few tokens of a prompt (the first above all) carry activations far
    larger than the rest: one scale for all of them flattens the others. Each row
    is divided by its own largest magnitude first and the output rows multiplied
    back (a Linear is row-wise, so this is exact in float): the kernel's one
    scale is then every row's own. The bias is added after, in float.
    """
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    class PerTokenInt8Linear(DynamicLinear):
        float_bias: Any = None

        def forward(self, x: Any) -> Any:
            peak = x.abs().amax(-1, keepdim=True).clamp(min=1e-6)
            y = super().forward(x / peak) * peak  # type: ignore[no-untyped-call]
            return y if self.float_bias is None else y + self.float_bias

    return PerTokenInt8Linear


def weight_bytes(model: Any) -> int:
    """Bytes the model's weights take in memory, int8 packed weights counted as int8."""
    import torch

    total, seen = 0, set()

    def add(t: Any) -> None:
        nonlocal total
        if isinstance(t, torch.Tensor):
            key = (t.data_ptr(), t.numel()) if not t.is_quantized else id(t)
            if key in seen:
                return
            seen.add(key)
            total += t.numel() * t.element_size()
        elif isinstance(t, tuple | list):
            for x in t:
                add(x)

    with _quiet():
        for v in model.state_dict().values():
            add(v)
    return total
