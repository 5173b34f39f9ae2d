"""SmoothQuant before int8: move activation outliers into the weights, exactly, before quantising.

Dynamic int8 quantises each Linear's input with one scale per call. A few input
channels of a small LM's MLP (the ``down_proj`` input above all) carry values
a hundred times larger than the rest, so one scale flattens everything else:
on SmolLM2-135M that alone took a reference paragraph's mean token NLL from
2.07 (float32) to 3.49. SmoothQuant (Xiao et al., 2023) divides each such
input channel by ``s_j = max|x_j|^a / max|W_:,j|^(1-a)`` and multiplies the
Linear's weight column by the same ``s_j``: the float model computes the same
function, and the activations the int8 kernel sees are flat. The division is
folded into whatever produces the input:

- ``mlp.up_proj`` rows for ``mlp.down_proj`` (the gated MLP multiplies
  ``act(gate(x)) * up(x)`` elementwise, so scaling ``up`` row ``j`` scales
  input ``j`` of ``down``);
- ``input_layernorm.weight`` for ``self_attn.{q,k,v}_proj``;
- ``post_attention_layernorm.weight`` for ``mlp.{gate,up}_proj``.

``max|x_j|`` comes from a forward pass over a few shipped calibration texts.
Each kind of fold is checked the same way: the smoothed float model must give
the calibration logits it gave before (to ``_TOLERANCE``), or that fold is
undone: an architecture whose norm is not ``weight * normalised`` (Gemma's
``1 + weight``) keeps its norms as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Varied on purpose: prose, code, a chat turn, numbers; short, so the pass is cheap.
CALIBRATION_TEXTS = (
    "Photosynthesis is the process by which green plants use sunlight, water and carbon "
    "dioxide to make glucose and release oxygen into the air.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # prints 5",
    "User: How do I reset my password?\nAssistant: Open Settings, choose Security, then "
    "select Reset password and follow the link sent to your email.",
    "Shares fell 3.2% on Tuesday as investors weighed rising interest rates, slowing growth "
    "and a weaker outlook for the second quarter of 2024.",
    "The capital of Japan is Tokyo. The capital of Italy is Rome. The largest ocean on Earth "
    "is the Pacific Ocean.",
    "Le chat dort sur le canapé pendant que la pluie tombe doucement sur la ville.",
)
_TOLERANCE = 2e-3  # relative change of the calibration logits a fold may make (float rounding)


@dataclass
class Smoothing:
    """What ``smooth`` did: the exponent, and which folds it applied or undid."""

    alpha: float
    applied: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)
    layers: int = 0
    max_logit_change: float = 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "method": "SmoothQuant",
            "alpha": self.alpha,
            "folds": self.applied,
            "folds_undone": self.undone,
            "layers": self.layers,
            "calibration_texts": len(CALIBRATION_TEXTS),
            "max_relative_logit_change": round(self.max_logit_change, 6),
        }


def _linear(m: Any) -> bool:
    import torch

    return type(m) is torch.nn.Linear


def _folds(layer: Any) -> dict[str, tuple[Any, list[Any]]]:
    """``kind -> (producer, consumers)`` for the folds this decoder layer supports."""
    folds: dict[str, tuple[Any, list[Any]]] = {}
    mlp: Any = getattr(layer, "mlp", None)
    attn: Any = getattr(layer, "self_attn", None)
    up: Any = getattr(mlp, "up_proj", None)
    down: Any = getattr(mlp, "down_proj", None)
    gate: Any = getattr(mlp, "gate_proj", None)
    if _linear(up) and _linear(down) and up.out_features == down.in_features:
        folds["down_proj"] = (up, [down])
    qkv: list[Any] = [getattr(attn, n, None) for n in ("q_proj", "k_proj", "v_proj")]
    norm = getattr(layer, "input_layernorm", None)
    if all(_linear(x) for x in qkv) and _norm(norm, qkv[0].in_features):
        folds["qkv_proj"] = (norm, qkv)
    norm = getattr(layer, "post_attention_layernorm", None)
    if _linear(gate) and _linear(up) and _norm(norm, gate.in_features):
        folds["gate_up_proj"] = (norm, [gate, up])
    return folds


def _norm(norm: Any, width: int) -> bool:
    w = getattr(norm, "weight", None)
    return w is not None and getattr(w, "ndim", 0) == 1 and w.shape[0] == width


def _layers(model: Any) -> list[Any]:
    return [m for m in model.modules() if _folds(m)]


def smooth(model: Any, tokenizer: Any, *, alpha: float = 0.5) -> Smoothing:
    """Fold SmoothQuant scales into ``model`` in place (float32, CPU); what it did."""
    import torch

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha is in (0, 1), got {alpha}")
    layers = _layers(model)
    report = Smoothing(alpha=alpha, layers=len(layers))
    if not layers:
        return report
    batches = [tokenizer(t, return_tensors="pt").input_ids for t in CALIBRATION_TEXTS]
    amax: dict[tuple[int, str], Any] = {}
    hooks = []

    def watch(key: tuple[int, str]) -> Any:
        def hook(_mod: Any, args: tuple[Any, ...]) -> None:
            x = args[0].detach()
            a = x.abs().reshape(-1, x.shape[-1]).amax(0).float()
            amax[key] = torch.maximum(amax[key], a) if key in amax else a

        return hook

    for i, layer in enumerate(layers):
        for kind, (_producer, consumers) in _folds(layer).items():
            hooks.append(consumers[0].register_forward_pre_hook(watch((i, kind))))

    def logits() -> list[Any]:
        with torch.no_grad():
            return [model(ids).logits.float() for ids in batches]

    try:
        reference = logits()
    finally:
        for h in hooks:
            h.remove()
    kinds = sorted({k for layer in layers for k in _folds(layer)})
    with torch.no_grad():
        for kind in kinds:
            saved: list[tuple[Any, Any]] = []
            for i, layer in enumerate(layers):
                fold = _folds(layer).get(kind)
                if fold is None or (i, kind) not in amax:
                    continue
                producer, consumers = fold
                wmax = torch.stack([c.weight.abs().amax(0) for c in consumers]).amax(0)
                x = amax[(i, kind)].clamp(min=1e-5)
                s = (x.pow(alpha) / wmax.float().clamp(min=1e-5).pow(1 - alpha)).clamp(1e-5, 1e5)
                for p in [producer, *consumers]:
                    saved.append((p.weight, p.weight.detach().clone()))
                w = producer.weight
                w.div_(s.to(w.dtype)[:, None] if w.ndim == 2 else s.to(w.dtype))
                for c in consumers:
                    c.weight.mul_(s.to(c.weight.dtype)[None, :])
            change = max(
                float(((new - ref).abs().max() / ref.abs().max().clamp(min=1e-6)).item())
                for new, ref in zip(logits(), reference, strict=True)
            )
            if change <= _TOLERANCE:
                report.applied.append(kind)
                report.max_logit_change = max(report.max_logit_change, change)
            else:  # not a pure scaling in this architecture: put the weights back
                for param, before in saved:
                    param.copy_(before)
                report.undone.append(kind)
    return report
