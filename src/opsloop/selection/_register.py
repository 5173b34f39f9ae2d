"""Registering the chosen candidate as a model version, with the evidence on its tags and card.

- ``local:smollm2`` / ``local:gemma3``: the bundled GGUF in a saved-model
  folder (``save_gguf``), flavor ``transformers``.
- ``models:/NAME@ALIAS``: under the same name, the alias ``selected`` moves
  to that version; under another name, a new version with the same files
  (blobs are content-addressed, so nothing is stored twice).
- an OpenAI-compatible endpoint: a pyfunc version holding only the base URL,
  model name and the *name* of the secret with the API key
  (``opsloop.selection._endpoint.EndpointModel``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, context_of
from opsloop.errors import InvalidArgument
from opsloop.registry import Registry
from opsloop.registry.flavors import save_pyfunc
from opsloop.selection._candidates import CandidateSpec, bundled_folder, parse_candidate
from opsloop.selection._endpoint import ENDPOINT_SIGNATURE
from opsloop.selection._types import LeaderboardRow

if TYPE_CHECKING:
    from opsloop.registry.entities import ModelVersion
    from opsloop.tracking import Tracking

SELECTED_ALIAS = "selected"


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def evidence_tags(row: LeaderboardRow, run_id: str | None, metric: str) -> dict[str, str]:
    return {
        "selection.run_id": run_id or "",
        "selection.candidate_run_id": row.run_id or "",
        "selection.candidate": row.candidate,
        "selection.metric": metric,
        "selection.quality": _fmt(row.quality),
        "selection.p50_latency_ms": _fmt(row.p50_latency_ms),
        "selection.p95_latency_ms": _fmt(row.p95_latency_ms),
        "selection.tokens_per_s": _fmt(row.tokens_per_s),
        "selection.cost_per_1k_usd": _fmt(row.cost_per_1k_usd),
        "selection.memory_mb": _fmt(row.memory_mb),
    }


def card_notes(row: LeaderboardRow, run_id: str | None, reason: str, prompt: str) -> str:
    lines = [
        f"Chosen by model selection run `{run_id}`: {reason}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| candidate | `{row.candidate}` |",
        f"| quality | {_fmt(row.quality)}"
        + (
            f" (95% CI {row.quality_ci[0]:.3g} to {row.quality_ci[1]:.3g})"
            if row.quality_ci
            else ""
        )
        + " |",
    ]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in row.metrics.items()]
    lines += [
        f"| p50 / p95 latency (ms) | {_fmt(row.p50_latency_ms)} / {_fmt(row.p95_latency_ms)} |",
        f"| output tokens/s | {_fmt(row.tokens_per_s)} |",
        f"| cost per 1,000 requests (USD) | {_fmt(row.cost_per_1k_usd)} |",
        f"| memory (MB) | {_fmt(row.memory_mb)} |",
        f"| errors | {row.errors} of {row.examples} |",
        "",
        f"Prompt: `{prompt[:300]}`",
    ]
    return "\n".join(lines)


def spec_of(candidate: CandidateSpec) -> CandidateSpec:
    """A provider object's own spec, so it can be registered like the string it came from."""
    if candidate.kind != "provider":
        return candidate
    p = candidate.provider_obj
    spec = getattr(p, "spec", None)
    if not isinstance(spec, str):
        raise InvalidArgument("cannot register a provider object that has no spec")
    parsed = parse_candidate(spec)
    if parsed.kind == "openai" and parsed.base_url is None:
        url = getattr(p, "base_url", None)
        parsed = CandidateSpec(parsed.label, "openai", parsed.target, base_url=url and str(url))
    return parsed


def register_choice(
    client: Tracking | Context,
    candidate: CandidateSpec,
    row: LeaderboardRow,
    *,
    name: str,
    selection_run_id: str | None,
    metric: str,
    reason: str,
    prompt: str,
    cache_dir: Path,
    max_tokens: int,
    endpoint_secret: str | None,
) -> tuple[ModelVersion, str]:
    """The registered (or aliased) version and its ``models:/`` URI."""
    ctx = context_of(client)
    reg = ctx.room(Registry)
    c = spec_of(candidate)
    tags = evidence_tags(row, selection_run_id, metric)
    description = f"Chosen by model selection: {reason}"
    uri: str
    if c.kind == "models":
        src = reg.resolve(c.target)
        if src.name == name:
            reg.set_alias(name, SELECTED_ALIAS, src.version)
            for k, v in tags.items():
                reg.set_version_tag(name, src.version, k, v)
            mv = reg.get_version(name, src.version)
            uri = f"models:/{name}@{SELECTED_ALIAS}"
        else:
            with tempfile.TemporaryDirectory(prefix="opsloop-select-") as tmp:
                folder = reg.download(src.name, src.version, Path(tmp) / "model")
                mv = reg.register(
                    name, folder, description=description, tags=tags, run_id=row.run_id
                )
            uri = f"models:/{name}/{mv.version}"
    elif c.kind == "local":
        folder = bundled_folder(c.target, cache_dir)
        mv = reg.register(name, folder, description=description, tags=tags, run_id=row.run_id)
        uri = f"models:/{name}/{mv.version}"
    elif c.kind == "openai":
        if not c.base_url:
            base = ctx.settings.llm_base_url
            if not base:
                raise InvalidArgument(f"cannot register {c.label!r}: its base URL is unknown")
            c = CandidateSpec(c.label, c.kind, c.target, base_url=base)
        config = {
            "base_url": c.base_url,
            "model": c.target,
            "api_key_secret": endpoint_secret,
            "max_tokens": max_tokens,
        }
        with tempfile.TemporaryDirectory(prefix="opsloop-select-") as tmp:
            folder = save_pyfunc(
                Path(tmp) / "endpoint",
                "opsloop.selection._endpoint:EndpointModel",
                config=config,
                signature=ENDPOINT_SIGNATURE,
            )
            mv = reg.register(
                name,
                folder,
                description=description,
                tags={**tags, "selection.endpoint": f"{c.target}@{c.base_url}"},
                run_id=row.run_id,
            )
        uri = f"models:/{name}/{mv.version}"
    else:  # pragma: no cover - spec_of leaves only the kinds above
        raise InvalidArgument(f"cannot register candidate {c.label!r}")
    reg.update_card(
        mv.name,
        mv.version,
        fields={
            "evaluation_notes": card_notes(row, selection_run_id, reason, prompt),
            "extra": {k: v for k, v in tags.items() if v},
        },
    )
    return mv, uri
