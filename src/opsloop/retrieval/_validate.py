"""Input checks for the vector index: everything is checked before anything is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument
from opsloop.retrieval._filter import check_key, kv_rows
from opsloop.retrieval._store import dumps_metadata

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MAX_ID_LEN = 512
MAX_K = 10_000


def check_ids(ids: object, *, unique: bool) -> list[str]:
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise InvalidArgument("ids must be a list of strings")
    out = list(ids)
    for i, v in enumerate(out):
        if not isinstance(v, str) or not v:
            raise InvalidArgument(f"ids[{i}] must be a non-empty string, got {v!r}")
        if len(v) > MAX_ID_LEN:
            raise InvalidArgument(f"ids[{i}] is over {MAX_ID_LEN} characters")
    if unique and len(set(out)) != len(out):
        seen: set[str] = set()
        for v in out:
            if v in seen:
                raise InvalidArgument(f"id {v!r} appears twice in one call", details={"id": v})
            seen.add(v)
    return out


def as_matrix(vectors: object, what: str) -> npt.NDArray[np.float32]:
    """A finite float32 matrix (a single vector becomes one row)."""
    import numpy as np

    try:
        # A value too big for float32 becomes infinity (refused below), not a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            x = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{what} must be numbers in a [n, dim] array: {exc}") from None
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise InvalidArgument(f"{what} must be a [n, dim] array, got {x.ndim} dimensions")
    if x.shape[1] == 0:
        raise InvalidArgument(f"{what} have no dimensions")
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise InvalidArgument(
            f"{what}[{bad}] holds NaN or infinity (or a value too big for float32)"
        )
    return np.ascontiguousarray(x)


def normalise(x: npt.NDArray[np.float32], what: str) -> npt.NDArray[np.float32]:
    import numpy as np

    # In float64: the squares of large float32 values overflow float32.
    norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    if (norms == 0).any():
        bad = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise InvalidArgument(f"{what}[{bad}] is all zeros: cosine needs a non-zero vector")
    out: npt.NDArray[np.float32] = (x / norms).astype(np.float32)
    return out


def check_metadata(metadata: object, n: int) -> list[tuple[str, list[tuple[str, int, Any]]]]:
    """``(json, kv rows)`` per item."""
    if metadata is None:
        return [("{}", [])] * n
    if isinstance(metadata, Mapping) or not isinstance(metadata, Sequence):
        raise InvalidArgument("metadata must be a list of objects, one per id")
    if len(metadata) != n:
        raise InvalidArgument(f"metadata has {len(metadata)} entries for {n} ids")
    out = []
    for i, md in enumerate(metadata):
        if md is None:
            md = {}
        if not isinstance(md, Mapping):
            raise InvalidArgument(f"metadata[{i}] must be an object, got {type(md).__name__}")
        for key in md:
            check_key(key, f"metadata[{i}]")
        rows = list(kv_rows(md))
        out.append((dumps_metadata(dict(md), f"metadata[{i}]"), rows))
    return out


def check_texts(texts: object, n: int) -> list[str | None]:
    if texts is None:
        return [None] * n
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidArgument("texts must be a list of strings, one per id")
    if len(texts) != n:
        raise InvalidArgument(f"texts has {len(texts)} entries for {n} ids")
    for i, t in enumerate(texts):
        if t is not None and not isinstance(t, str):
            raise InvalidArgument(f"texts[{i}] must be a string or null")
    return list(texts)


def check_rows(
    ids: object, vectors: object, metadata: object, texts: object
) -> tuple[
    list[str],
    npt.NDArray[np.float32],
    list[tuple[str, list[tuple[str, int, Any]]]],
    list[str | None],
]:
    """An upsert's ids, vectors, metadata and texts, checked together (one vector per id)."""
    id_list = check_ids(ids, unique=True)
    x = as_matrix(vectors, "vectors")
    if len(x) != len(id_list):
        raise InvalidArgument(f"{len(x)} vectors for {len(id_list)} ids")
    return id_list, x, check_metadata(metadata, len(id_list)), check_texts(texts, len(id_list))


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidArgument(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


def check_nprobe(nprobe: object) -> int | None:
    if nprobe is None:
        return None
    if isinstance(nprobe, bool) or not isinstance(nprobe, int) or nprobe < 1:
        raise InvalidArgument(f"nprobe must be a positive integer, got {nprobe!r}")
    return nprobe


MAX_QUERY_LEN = 100_000


def check_query(query: object) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgument("the query must be a non-empty string")
    if len(query) > MAX_QUERY_LEN:
        raise InvalidArgument(f"the query is over {MAX_QUERY_LEN:,} characters")
    return query
