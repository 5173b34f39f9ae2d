"""Loading a snapshot from an index's files, writing a rebuilt index's files, and hits."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.retrieval import _store as S
from opsloop.retrieval._kmeans import assign, default_nlist, tune_nprobe
from opsloop.retrieval._kmeans import train as kmeans
from opsloop.retrieval._search import Snapshot

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class SearchHit:
    """One search result: the item's id, its score, metadata and text.

    ``score`` is the cosine similarity for a ``cosine`` index (higher is
    closer) and the Euclidean distance for an ``l2`` index (lower is closer);
    hits come best first either way.
    """

    id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    text: str | None = None


def load_snapshot(
    folder: Path,
    con: sqlite3.Connection,
    state: dict[str, Any],
    snap: Snapshot | None,
    centroids: Any,
) -> Snapshot:
    """The snapshot of ``state``: ``snap`` brought up to date when only rows were appended
    and deleted since (the files are the same), else a fresh one read from the files."""
    import numpy as np

    gen, dim, n_rows = int(state["generation"]), int(state["dim"]), int(state["n_rows"])
    files = (state["vectors_file"], state["lists_file"], state["centroids_file"])
    live = np.fromiter((r for (r,) in con.execute("SELECT rid FROM items")), dtype=np.int64)
    if snap is not None and snap.files == files and n_rows >= snap.n_rows:
        start = snap.n_rows
        new = np.arange(start, n_rows, dtype=np.int64)
        if len(new):
            x = S.read_rows_from(folder / files[0], np.float32, start, len(new), dim)
            lists = None
            if files[1] is not None:
                lists = S.read_rows_from(folder / files[1], np.int32, start, len(new), 1)
            snap.append(new, x, lists)
        snap.set_alive(live)
        snap.masks.clear()
        snap.nprobe = int(state["nprobe"] or 1)
        snap.generation = gen
        return snap
    vectors = S.read_rows(folder / files[0], np.float32, n_rows, dim)
    live.sort()
    all_lists = None
    if files[1] is not None:
        all_lists = S.read_rows(folder / files[1], np.int32, n_rows)[live]
    return Snapshot(
        generation=gen,
        dim=dim,
        metric=str(state["metric"]),
        files=files,
        n_rows=n_rows,
        vectors=vectors[live],
        rids=live,
        lists=all_lists,
        centroids=centroids,
        nprobe=int(state["nprobe"] or 1),
    )


def write_rebuilt(
    folder: Path, state: dict[str, Any], rids: list[int], *, train: bool, nlist: int | None
) -> tuple[dict[str, str | None], Any, Any, Any, int | None]:
    """Write the live rows (in rid order) to new files, training IVF lists when asked:
    ``(file names, vectors, lists, centroids, nprobe)``. Nothing names the files yet."""
    import numpy as np

    dim, metric = int(state["dim"]), str(state["metric"])
    x = S.read_rows(folder / state["vectors_file"], np.float32, int(state["n_rows"]), dim)
    x = np.ascontiguousarray(x[np.asarray(rids, dtype=np.int64)])
    centroids = lists = None
    nprobe = None
    if train:
        centroids = kmeans(x, nlist or default_nlist(len(x)), metric)
        lists = assign(x, centroids, metric)
        nprobe = tune_nprobe(x, lists, centroids, metric)
    tag = S.new_tag()
    files: dict[str, str | None] = {
        "vectors_file": f"vectors-{tag}.f32",
        "lists_file": f"lists-{tag}.i32" if train else None,
        "centroids_file": f"centroids-{tag}.npy" if train else None,
    }
    S.write_new(folder / f"vectors-{tag}.f32", x)
    if lists is not None and centroids is not None:
        S.write_new(folder / f"lists-{tag}.i32", lists)
        S.write_new(folder / f"centroids-{tag}.npy", centroids)
    return files, x, lists, centroids, nprobe


def hits_for(
    con: sqlite3.Connection, sc: npt.NDArray[np.float32], rids: npt.NDArray[np.int64]
) -> list[list[SearchHit]]:
    """Search results (``sc`` are the hits' scores) with ids, metadata and texts read in one
    query."""
    import orjson

    wanted = sorted({r for r in rids.ravel().tolist() if r >= 0})
    if not wanted:
        return [[] for _ in range(len(rids))]
    if len(wanted) <= _BOUND_PARAMS:
        rows = con.execute(
            f"SELECT rid, id, text, metadata FROM items WHERE rid IN ({_MARKS[len(wanted)]})",
            wanted,
        )
    else:
        rows = con.execute(
            "SELECT rid, id, text, metadata FROM items WHERE rid IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),),
        )
    items = {rid: (id_, text, md) for rid, id_, text, md in rows}
    loads = orjson.loads
    out = []
    for row_rids, row_sc in zip(rids.tolist(), sc.tolist(), strict=True):
        hits = []
        for rid, s in zip(row_rids, row_sc, strict=True):
            item = items.get(rid) if rid >= 0 else None
            if item is None:
                continue
            hits.append(SearchHit(id=item[0], score=s, metadata=loads(item[2]), text=item[1]))
        out.append(hits)
    return out


_BOUND_PARAMS = 256
_MARKS = ["", *(",".join("?" * n) for n in range(1, _BOUND_PARAMS + 1))]
