"""``load_model``: from a ``models:/`` URI or a saved-model folder to a ready ``LoadedModel``.

Registry versions are immutable, so their files are copied (embedded) or
downloaded (remote) once into ``<cache_dir>/versions/<key>/``, where the key
is derived from the version's file digests: two homes or servers holding the
same content share one cache entry, and different content never collides.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, HasContext, context_of
from opsloop.errors import InvalidArgument
from opsloop.registry import _names as N
from opsloop.registry._backend import registry_backend
from opsloop.registry.flavors._base import LoadContext, LoadedModel, ModelDescriptor, flavor_module
from opsloop.settings import Settings

if TYPE_CHECKING:
    from opsloop.registry.entities import ModelVersion

COMPLETE = ".opsloop-complete"


def default_cache_dir(client: Context | HasContext | None = None) -> Path:
    """``<home>/cache/models`` of the client's settings (or the default settings)."""
    settings = context_of(client).settings if client is not None else Settings()
    return Path(settings.home) / "cache" / "models"


def manifest_key(mv: ModelVersion) -> str:
    h = hashlib.sha256()
    for path, entry in sorted(mv.files.items()):
        h.update(f"{path}\0{entry.digest}\n".encode())
    return h.hexdigest()[:40]


def materialize(mv: ModelVersion, cache_dir: Path, fetch: Callable[[str, str, Path], None]) -> Path:
    """A folder holding the version's files; ``fetch(path, digest, target)`` writes one file."""
    target = cache_dir / "versions" / manifest_key(mv)
    if (target / COMPLETE).is_file():
        return target
    tmp = cache_dir / "versions" / f".tmp-{uuid.uuid4().hex}"
    try:
        for rel, entry in sorted(mv.files.items()):
            dest = (tmp / rel).resolve()
            if not dest.is_relative_to(tmp.resolve()):
                raise InvalidArgument(f"file path {rel!r} leaves the model folder")
            dest.parent.mkdir(parents=True, exist_ok=True)
            fetch(rel, entry.digest, dest)
        (tmp / COMPLETE).write_text(mv.id)
        try:
            os.replace(tmp, target)
        except OSError:
            # Another loader finished the same content first: use theirs.
            if not (target / COMPLETE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_model(
    uri: str | os.PathLike[str],
    *,
    client: Context | HasContext | None = None,
    trusted_types: list[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
) -> LoadedModel:
    """Load a model for prediction.

    ``uri``: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/NAME``
    (the latest version) or a local saved-model folder. ``client`` is the
    registry to resolve ``models:/`` URIs against (default: ``opsloop.Client()``).
    ``trusted_types``: type names the caller trusts in files that name types
    (skops); anything else is refused with ``PermissionDenied``. ``cache_dir``:
    where version files and converted GGUF weights are kept (default
    ``<home>/cache/models``). ``device``: ``cpu``/``cuda``; default CUDA when available.
    """
    trusted = _check_trusted(trusted_types)
    mv: ModelVersion | None = None
    digests: dict[str, str] = {}
    text = os.fspath(uri)
    if N.is_model_uri(text):
        backend = registry_backend(context_of(client))
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(client)
        version = backend.resolve(text)
        folder = materialize(
            version,
            cache,
            lambda rel, digest, target: backend.fetch_file(version, rel, digest, target),
        )
        mv = version
        digests = {p: e.digest for p, e in mv.files.items()}
    else:
        folder = Path(text)
        if not folder.is_dir():
            raise InvalidArgument(
                f"{text!r} is neither a models:/ URI nor a saved model folder",
                details={"uri": text},
            )
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(client)
    desc = ModelDescriptor.read(folder)
    if mv is not None and desc.flavor != mv.flavor:
        raise InvalidArgument(
            f"version files say flavor {desc.flavor!r}, the registry {mv.flavor!r}"
        )

    def load_ref(ref: str) -> LoadedModel:
        return load_model(ref, client=client, trusted_types=trusted, cache_dir=cache, device=device)

    ctx = LoadContext(
        trusted_types=trusted,
        cache_dir=cache,
        device=device,
        client=client,
        digests=digests,
        load_ref=load_ref,
    )
    loaded: LoadedModel = flavor_module(desc.flavor).load(folder, desc, ctx)
    loaded.uri = text
    loaded.version = mv
    return loaded


def _check_trusted(trusted_types: Any) -> list[str]:
    if trusted_types is None:
        return []
    if isinstance(trusted_types, str) or not all(isinstance(t, str) for t in trusted_types):
        raise InvalidArgument("trusted_types must be a list of type names (strings)")
    return list(trusted_types)
