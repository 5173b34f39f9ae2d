"""Where a served model comes from: a ``models:/`` URI, a provider spec, a folder, or an object.

Every model spec that ``opsloop.llm.get_provider`` opens in this process
serves too: ``local:smollm2``, ``local:gemma3``, ``local:minilm``, a ``.gguf``
file (with or without ``local:``) and a saved-model folder.

A source answers two questions, both blocking (the server calls them from a
worker thread): which version is current (``resolve``, cheap, polled for
alias moves) and the loaded model for a resolved version (``load``, slow).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context
from opsloop.errors import InvalidArgument
from opsloop.llm import check_local
from opsloop.registry import parse_model_uri

if TYPE_CHECKING:
    from opsloop.registry import Registry
    from opsloop.serving._options import ServeOptions
    from opsloop.settings import Settings

__all__ = ["ModelSource", "Resolved", "source_for"]


@dataclass(frozen=True)
class Resolved:
    """One concrete version a source names: ``key`` changes exactly when another model must load."""

    key: str
    name: str
    version: int | None = None
    flavor: str | None = None
    uri: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


class ModelSource:
    """Base class: a fixed model (``watchable`` False); subclasses may follow a moving alias."""

    watchable = False

    def describe(self) -> str:
        raise NotImplementedError

    def resolve(self) -> Resolved:
        raise NotImplementedError

    def load(self, resolved: Resolved) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds (a registry client)."""


class ObjectSource(ModelSource):
    """A model object given in code (a ``LoadedModel`` or anything with the same methods)."""

    def __init__(self, model: Any, name: str | None = None) -> None:
        self._model = model
        self._name = name or getattr(model, "model_id", None) or "model"

    def describe(self) -> str:
        return f"<{type(self._model).__name__}>"

    def resolve(self) -> Resolved:
        return Resolved(
            key=f"object:{id(self._model)}",
            name=str(self._name),
            flavor=getattr(self._model, "flavor", None),
            uri=str(getattr(self._model, "uri", "") or ""),
        )

    def load(self, resolved: Resolved) -> Any:
        return self._model


class FolderSource(ModelSource):
    """A saved-model folder (``opsloop-model.json`` plus the flavor's files)."""

    def __init__(self, path: Path, options: ServeOptions) -> None:
        if not path.is_dir():
            raise InvalidArgument(
                f"{path} is not a model opsloop can serve: give local:smollm2, local:gemma3, "
                "local:minilm, a .gguf file, a models:/ URI or a saved model folder",
                details={"target": str(path)},
            )
        self._path = path.resolve()
        self._options = options

    def describe(self) -> str:
        return str(self._path)

    def resolve(self) -> Resolved:
        return Resolved(key=f"folder:{self._path}", name=self._path.name, uri=str(self._path))

    def load(self, resolved: Resolved) -> Any:
        from opsloop.registry import load_model  # lazy: loads sqlalchemy

        return load_model(
            self._path,
            trusted_types=self._options.trusted_types or None,
            cache_dir=self._options.cache_dir,
            device=self._options.device,
        )


class LocalSpecSource(ModelSource):
    """A bundled model (``local:smollm2``) or a ``.gguf`` file, loaded in place."""

    def __init__(self, spec: str, settings: Settings, options: ServeOptions) -> None:
        target = spec.removeprefix("local:")
        self._kind = check_local(target)  # InvalidArgument for a name nobody knows
        self._spec = spec if self._kind == "bundled" else str(Path(target).expanduser().resolve())
        self._settings = settings
        self._options = options

    def describe(self) -> str:
        return self._spec

    def resolve(self) -> Resolved:
        name = self._spec.removeprefix("local:")
        if self._kind == "gguf":
            name = Path(self._spec).name.removesuffix(".gguf")
        return Resolved(
            key=f"spec:{self._spec}",
            name=name,
            flavor="transformers" if self._kind == "gguf" else None,
            uri=self._spec,
        )

    def load(self, resolved: Resolved) -> Any:
        from opsloop.llm import load_local_model  # lazy: loads torch

        return load_local_model(
            self._spec,
            settings=self._settings,
            cache_dir=self._options.cache_dir,
            device=self._options.device,
        )


class RegistrySource(ModelSource):
    """``models:/NAME@ALIAS`` (watched: a moved alias loads the new version), ``/VERSION`` or latest."""

    def __init__(self, uri: str, settings: Settings, options: ServeOptions) -> None:
        self._ref = parse_model_uri(uri)
        self._uri = uri
        self._settings = settings
        self._options = options
        self._context: Context | None = None
        self._lock = threading.Lock()
        # A fixed version never moves; an alias or "latest" may.
        self.watchable = self._ref.version is None

    def describe(self) -> str:
        return self._uri

    def _registry(self) -> Registry:
        from opsloop.registry import Registry  # lazy: loads sqlalchemy and httpx

        with self._lock:
            if self._context is None:
                self._context = Context(self._settings)
            return self._context.room(Registry)

    def resolve(self) -> Resolved:
        mv = self._registry().resolve(self._uri)
        return Resolved(
            key=mv.id,
            name=mv.name,
            version=mv.version,
            flavor=mv.flavor,
            uri=mv.uri,
            extra={"alias": self._ref.alias, "requested_uri": self._uri},
        )

    def load(self, resolved: Resolved) -> Any:
        # Load the exact version resolved, so a move during loading cannot mix versions.
        return self._registry().load(
            resolved.uri,
            trusted_types=self._options.trusted_types or None,
            cache_dir=self._options.cache_dir,
            device=self._options.device,
        )

    def close(self) -> None:
        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            context.close()


def source_for(target: Any, settings: Settings, options: ServeOptions) -> ModelSource:
    """The source for ``target``: a ``models:/`` URI, a ``local:`` spec, a ``.gguf`` file,
    a folder path, a ``ModelSource`` or a model object."""
    if isinstance(target, ModelSource):
        return target
    if isinstance(target, str) and target.startswith("models:/"):
        return RegistrySource(target, settings, options)
    if isinstance(target, str) and target.startswith("local:"):
        inner = target.removeprefix("local:")
        if inner.startswith("models:/"):
            return RegistrySource(inner, settings, options)
        if Path(inner).expanduser().is_dir():
            return FolderSource(Path(inner).expanduser(), options)
        return LocalSpecSource(target, settings, options)
    if isinstance(target, str) and target.startswith("openai:"):
        raise InvalidArgument(
            f"{target} is a remote endpoint, not a model this process can load: serve "
            "local:NAME, a .gguf file, a models:/ URI or a saved model folder",
            details={"target": target},
        )
    if isinstance(target, str | os.PathLike):
        path = Path(target).expanduser()
        if path.is_file() and path.suffix.lower() == ".gguf":
            return LocalSpecSource(os.fspath(path), settings, options)
        return FolderSource(path, options)
    if any(hasattr(target, m) for m in ("predict", "embed", "apply_chat_template")):
        return ObjectSource(target, options.model_name)
    raise InvalidArgument(
        f"cannot serve {type(target).__name__}: give a models:/ URI, a saved model folder "
        "or a loaded model"
    )
