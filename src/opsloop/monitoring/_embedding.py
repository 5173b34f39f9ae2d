"""Embedding drift monitors: MiniLM embeddings of an LLM app's texts against a reference.

A monitor of kind ``embedding`` embeds the reference texts (a text column of a
dataset version) and the texts of the window's logged rows (the prompts an LLM
server logged as ``inputs["prompt"]``, or its answers, ``text="output"``)
with the bundled all-MiniLM-L6-v2, and runs ``mmd_drift`` on them: the
window drifts when the permutation p-value is under 5% AND the MMD effect
reaches ``MMD_THRESHOLD`` (0.1), the calibration of ``_text`` (false alarms
under 5% at any window size). With ``threshold > 0`` the effect size is
compared with it instead.

The model is loaded once per process (``embedder()``) and the reference's
embeddings are kept for the texts they were made of (``_REF_CACHE``), so a
scheduler tick embeds only the window.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from opsloop.datasets import Datasets
from opsloop.errors import InvalidArgument
from opsloop.monitoring._text import MAX_ROWS, mmd_drift

if TYPE_CHECKING:
    import numpy as np

    from opsloop.core import Context

__all__ = ["embedder", "embedding_drift_report", "reference_texts", "window_texts"]

_LOCK = threading.Lock()
_EMBEDDER: list[Any] = []
_REF_CACHE: OrderedDict[str, Any] = OrderedDict()
_REF_CACHE_SIZE = 8


def embedder() -> Callable[[Sequence[str]], np.ndarray]:
    """The bundled MiniLM's ``embed``, loaded once per process (offline, from its package)."""
    with _LOCK:
        if not _EMBEDDER:
            from opsloop.retrieval import Embedder  # lazy: loads torch and transformers

            _EMBEDDER.append(Embedder.bundled())
        return _EMBEDDER[0].embed  # type: ignore[no-any-return]


def reference_texts(ctx: Context, reference: str, column: str | None) -> list[str]:
    """The texts of ``column`` of a dataset version (default: its first text column)."""
    table = Datasets(ctx).to_arrow(reference)
    if column is None:
        import pyarrow as pa  # lazy: kept out of `import opsloop`

        column = next(
            (
                f.name
                for f in table.schema
                if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            ),
            None,
        )
    if column is None or column not in table.column_names:
        raise InvalidArgument(
            f"the reference {reference!r} has no text column {column or ''!r}".replace(" ''", ""),
            details={"reference": reference, "column": column},
        )
    return [v for v in table.column(column).to_pylist() if isinstance(v, str) and v]


def window_texts(rows: Sequence[dict[str, Any]], source: str, column: str | None) -> list[str]:
    """The logged rows' texts: the prompt (or ``column``) of the inputs, or the output."""
    out = []
    for r in rows:
        if source == "output":
            v = r.get("output")
        else:
            inputs = r.get("inputs") or {}
            v = inputs.get(column) if column and column in inputs else inputs.get("prompt")
        if isinstance(v, str) and v:
            out.append(v)
    return out


def _reference_vectors(texts: list[str], embed: Callable[[Sequence[str]], Any]) -> Any:
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    with _LOCK:
        if key in _REF_CACHE:
            _REF_CACHE.move_to_end(key)
            return _REF_CACHE[key]
    vectors = embed(texts)
    with _LOCK:
        _REF_CACHE[key] = vectors
        while len(_REF_CACHE) > _REF_CACHE_SIZE:
            _REF_CACHE.popitem(last=False)
    return vectors


def _subsample(texts: list[str], seed: int) -> list[str]:
    if len(texts) <= MAX_ROWS:
        return texts
    import numpy as np  # lazy: kept out of `import opsloop`

    idx = np.random.default_rng(seed).choice(len(texts), MAX_ROWS, replace=False)
    return [texts[i] for i in sorted(idx)]


def embedding_drift_report(
    reference: list[str],
    current: list[str],
    *,
    embed: Callable[[Sequence[str]], Any] | None = None,
) -> dict[str, Any]:
    """``mmd_drift`` of the embedded texts (both sides subsampled to ``MAX_ROWS`` first)."""
    ref = _subsample(reference, 0)
    cur = _subsample(current, 1)
    if len(ref) < 30 or len(cur) < 30:  # no decision: the model is not even loaded
        return mmd_drift([[0.0]] * len(ref), [[0.0]] * len(cur))
    embed = embed or embedder()
    report = mmd_drift(_reference_vectors(ref, embed), embed(cur))
    report["n_reference"], report["n_current"] = len(reference), len(current)
    report["embedder"] = "all-MiniLM-L6-v2"
    return report
