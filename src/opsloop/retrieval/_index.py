"""``VectorIndex``: an embedded vector index persisted under ``<home>/indexes/<name>/``.

The search is FAISS's (``faiss.IndexIVFFlat``, see ``_search``). It is exact
below ``ann_threshold`` live vectors (10,000 by default). When an add takes
the index past it, the index trains an IVF quantizer (FAISS k-means over
about ``sqrt(n)`` lists) and tunes ``nprobe`` so recall@10 against exact
search is 0.97 on a sample of its own vectors; it trains again when it has
grown fourfold, and compacts when deleted rows outnumber live ones. Ids,
texts and metadata live in SQLite, vectors in append-only files: see
``_store`` for the files and why a killed writer damages nothing.
"""

from __future__ import annotations

import builtins
import json
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from opsloop.errors import InvalidArgument, NotFound
from opsloop.retrieval import _store as S
from opsloop.retrieval._index_search import SearchMixin
from opsloop.retrieval._kmeans import assign
from opsloop.retrieval._search import Snapshot
from opsloop.retrieval._snapshots import load_snapshot, write_rebuilt
from opsloop.retrieval._validate import (
    check_ids,
    check_rows,
    normalise,
)

if TYPE_CHECKING:
    import os
    import sqlite3

    import numpy as np
    import numpy.typing as npt

    from opsloop.retrieval._lance import LanceIndex

T = TypeVar("T")
_MIN_TRAIN = 256
BACKENDS = ("faiss", "lance")


def _settings_backend() -> tuple[str, str | None]:
    from opsloop.settings import Settings  # lazy: loads pydantic_settings

    s = Settings()
    return s.index_backend, s.index_uri


def _lance_in_use(home: str | os.PathLike[str] | None) -> bool:
    """Whether lance indexes may exist: the setting chooses lance, names a location, or
    the home holds a lance table (so lancedb is imported only where it is used)."""
    backend, uri = _settings_backend()
    if backend == "lance" or uri:
        return True
    root = S.indexes_root(home)
    return root.is_dir() and any(p.suffix == ".lance" for p in root.iterdir())


def _is_lance(name: str, home: str | os.PathLike[str] | None, backend: str | None) -> bool:
    """Whether ``name`` is (or is to be made) a lance index."""
    default, uri = _settings_backend()
    faiss = backend == "faiss" or (backend is None and default == "faiss" and not uri)
    if faiss and not (S.indexes_root(home) / f"{name}.lance").is_dir():
        return False
    if backend == "lance" or (backend is None and default == "lance"):
        return True
    from opsloop.retrieval._lance import lance_exists  # lazy: loads lancedb

    return lance_exists(name, home)


def _check_metric(metric: str | None) -> str | None:
    if metric is not None and metric not in S.METRICS:
        raise InvalidArgument(f"metric must be one of {S.METRICS}, got {metric!r}")
    return metric


def _check_threshold(ann_threshold: int | None) -> int | None:
    if ann_threshold is not None and (
        isinstance(ann_threshold, bool)
        or not isinstance(ann_threshold, int)
        or ann_threshold < _MIN_TRAIN
    ):
        raise InvalidArgument(f"ann_threshold must be an integer >= {_MIN_TRAIN}")
    return ann_threshold


def _check_dim(dim: int | None) -> int | None:
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise InvalidArgument(f"dim must be a positive integer, got {dim!r}")
    return dim


class VectorIndex(SearchMixin):
    """A named, persistent vector index; open it with ``VectorIndex.open(name)``."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.path = folder
        self._lock = S.FileLock(folder / "lock")
        self._mu = threading.RLock()
        self._con: sqlite3.Connection | None = S.connect(folder / S.DB_FILE)
        self._snap: Snapshot | None = None
        self._centroids: tuple[str, Any] | None = None

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        name: str,
        *,
        dim: int | None = None,
        home: str | os.PathLike[str] | None = None,
        metric: str | None = None,
        ann_threshold: int | None = None,
        create: bool = True,
        backend: str | None = None,
    ) -> VectorIndex | LanceIndex:
        """Open (by default creating) index ``name``.

        ``dim`` and ``metric`` (``"cosine"``, the default, or ``"l2"``) are fixed
        when the index is created; given for an existing index they must match.
        A new index without ``dim`` takes the dimension of its first vectors.
        ``ann_threshold``: live vectors from which search is approximate (IVF).
        ``backend``: ``"faiss"`` or ``"lance"`` for a new index (default: the
        ``index_backend`` setting); an existing index opens with its own.
        """
        S.check_name(name)
        if backend is not None and backend not in BACKENDS:
            raise InvalidArgument(f"backend must be one of {BACKENDS}, got {backend!r}")
        folder = S.indexes_root(home) / name
        if not (folder / S.DB_FILE).is_file() and _is_lance(name, home, backend):
            from opsloop.retrieval._lance import LanceIndex  # lazy: loads lancedb

            return LanceIndex.open(
                name,
                dim=_check_dim(dim),
                home=home,
                metric=_check_metric(metric),
                ann_threshold=_check_threshold(ann_threshold),
                create=create,
            )
        return cls._open_faiss(name, dim, home, metric, ann_threshold, create)

    @classmethod
    def _open_faiss(
        cls,
        name: str,
        dim: int | None,
        home: str | os.PathLike[str] | None,
        metric: str | None,
        ann_threshold: int | None,
        create: bool,
    ) -> VectorIndex:
        _check_metric(metric)
        _check_dim(dim)
        _check_threshold(ann_threshold)
        folder = S.indexes_root(home) / name
        if not create and not (folder / S.DB_FILE).is_file():
            raise NotFound(f"vector index {name!r} does not exist", details={"index": name})
        if create:
            # Under the lock, and every time: a racing creator may have made the database
            # file but not committed its tables yet.
            folder.mkdir(parents=True, exist_ok=True)
            with S.FileLock(folder / "lock").held():
                S.init_folder(folder, dim=dim, metric=metric, ann_threshold=ann_threshold)
        idx = cls(name, folder)
        try:
            idx._check_open(dim, metric, ann_threshold)
        except BaseException:
            idx.close()
            raise
        return idx

    def _check_open(self, dim: int | None, metric: str | None, ann_threshold: int | None) -> None:
        state = self._state()
        if metric is not None and metric != state["metric"]:
            raise InvalidArgument(
                f"vector index {self.name!r} uses metric {state['metric']!r}, not {metric!r}"
            )
        if dim is not None and state["dim"] is not None and dim != state["dim"]:
            raise InvalidArgument(
                f"vector index {self.name!r} holds {state['dim']}-dimensional vectors, not {dim}"
            )
        updates: dict[str, Any] = {}
        if dim is not None and state["dim"] is None:
            updates["dim"] = dim
        if ann_threshold is not None and ann_threshold != state["ann_threshold"]:
            updates["ann_threshold"] = ann_threshold
        if updates:
            self._write(lambda con, st: S.write_state(con, **updates))

    @staticmethod
    def list(home: str | os.PathLike[str] | None = None) -> builtins.list[str]:
        """Names of the indexes under ``home`` (and at ``index_uri``), of both backends."""
        root = S.indexes_root(home)
        names = set()
        if root.is_dir():
            names = {
                p.name
                for p in root.iterdir()
                if not p.name.startswith(".") and (p / S.DB_FILE).is_file()
            }
        if _lance_in_use(home):
            from opsloop.retrieval._lance import LanceIndex  # lazy: loads lancedb

            names.update(LanceIndex.list(home))
        return sorted(names)

    @staticmethod
    def drop(name: str, home: str | os.PathLike[str] | None = None) -> None:
        """Delete an index and its files; ``NotFound`` if there is none."""
        S.check_name(name)
        folder = S.indexes_root(home) / name
        if not (folder / S.DB_FILE).is_file():
            if _lance_in_use(home):
                from opsloop.retrieval._lance import LanceIndex  # lazy: loads lancedb

                LanceIndex.drop(name, home)
                return
            raise NotFound(f"vector index {name!r} does not exist", details={"index": name})
        with S.FileLock(folder / "lock").held():
            con = S.connect(folder / S.DB_FILE)
            try:
                with S.transaction(con, write=True):
                    # Handles still open elsewhere see this and answer NotFound.
                    S.write_state(con, dropped=1)
            finally:
                con.close()
            grave = folder.with_name(f".dropped-{name}-{S.new_tag()}")
            folder.rename(grave)
        shutil.rmtree(grave, ignore_errors=True)

    def close(self) -> None:
        with self._mu:
            if self._con is not None:
                self._con.close()
                self._con = None
            self._snap = None

    def __enter__(self) -> VectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VectorIndex({self.name!r}, path={str(self.path)!r})"

    # ------------------------------------------------------------------ properties

    def _conn(self) -> sqlite3.Connection:
        if self._con is None:
            raise InvalidArgument(f"vector index {self.name!r} is closed")
        return self._con

    def _state(self) -> dict[str, Any]:
        with self._mu:
            state = S.read_state(self._conn())
        S.check_state(state, self.name)
        return state

    @property
    def dim(self) -> int | None:
        d = self._state()["dim"]
        return None if d is None else int(d)

    @property
    def metric(self) -> str:
        return str(self._state()["metric"])

    def __len__(self) -> int:
        with self._mu:
            self._state()
            return int(self._conn().execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def __contains__(self, id: object) -> bool:
        if not isinstance(id, str):
            return False
        with self._mu:
            self._state()
            row = self._conn().execute("SELECT 1 FROM items WHERE id = ?", (id,)).fetchone()
        return row is not None

    def info(self) -> dict[str, Any]:
        """What the index holds and how it searches (for ``opsloop index info``)."""
        with self._mu:
            state = self._state()
            live = int(self._conn().execute("SELECT COUNT(*) FROM items").fetchone()[0])
        trained = state["centroids_file"] is not None
        nlist = None
        if trained:
            nlist = len(self._load_centroids(state))
        return {
            "name": self.name,
            "path": str(self.path),
            "dim": state["dim"],
            "metric": state["metric"],
            "count": live,
            "rows": int(state["n_rows"]),
            "deleted": int(state["n_rows"]) - live,
            "search": "ivf" if trained else "exact",
            "engine": "faiss",
            "nlist": nlist,
            "nprobe": state["nprobe"],
            "trained_on": int(state["trained_n"]) if trained else None,
            "ann_threshold": int(state["ann_threshold"]),
            "size_bytes": S.folder_size(self.path),
            "generation": int(state["generation"]),
            "created_at": int(state["created_at"]),
        }

    # ------------------------------------------------------------------ transactions

    def _write(self, fn: Callable[[sqlite3.Connection, dict[str, Any]], T]) -> T:
        """Run ``fn`` in a write transaction, holding the index's file lock."""
        with self._mu, self._lock.held():
            con = self._conn()
            with S.transaction(con, write=True):
                state = S.read_state(con)
                S.check_state(state, self.name)
                if self._snap is not None and self._snap.generation != state["generation"]:
                    self._snap = None  # another process wrote: reload on the next read
                return fn(con, state)

    def _read(self, fn: Callable[[sqlite3.Connection, Snapshot | None], T]) -> T:
        """Run ``fn`` in a read transaction with a snapshot of the same generation."""
        for attempt in range(5):
            with self._mu:
                con = self._conn()
                try:
                    with S.transaction(con, write=False):
                        state = S.read_state(con)
                        S.check_state(state, self.name)
                        return fn(con, self._fresh(con, state))
                except FileNotFoundError:
                    # A rebuild replaced the files between our state read and opening them.
                    self._snap = None
                    if attempt == 4:
                        raise
        raise AssertionError("unreachable")

    def _load_centroids(self, state: dict[str, Any]) -> Any:
        import numpy as np

        name = state["centroids_file"]
        if name is None:
            return None
        if self._centroids is None or self._centroids[0] != name:
            self._centroids = (name, np.load(self.path / name, allow_pickle=False))
        return self._centroids[1]

    def _fresh(self, con: sqlite3.Connection, state: dict[str, Any]) -> Snapshot | None:
        if state["dim"] is None:
            return None
        snap = self._snap
        if snap is not None and snap.generation == int(state["generation"]):
            return snap
        self._snap = load_snapshot(self.path, con, state, snap, self._load_centroids(state))
        return self._snap

    # ------------------------------------------------------------------ writing

    def add(
        self,
        ids: Sequence[str],
        vectors: Any,
        *,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str | None] | None = None,
    ) -> None:
        """Add vectors, or replace the ones whose id is already there (upsert), atomically."""
        import numpy as np

        id_list, x, mds, txts = check_rows(ids, vectors, metadata, texts)
        if not id_list:
            return

        def write(con: sqlite3.Connection, state: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
            dim = state["dim"]
            if dim is not None and x.shape[1] != dim:
                raise InvalidArgument(
                    f"vectors have {x.shape[1]} dimensions; index {self.name!r} holds {dim}",
                    details={"expected": dim, "got": int(x.shape[1])},
                )
            xs = normalise(x, "vectors") if state["metric"] == "cosine" else x
            n_rows, m = int(state["n_rows"]), len(id_list)
            centroids = self._load_centroids(state)
            lists = None if centroids is None else assign(xs, centroids, state["metric"])
            S.append_rows(self.path / state["vectors_file"], n_rows * xs.shape[1] * 4, xs)
            if lists is not None:
                S.append_rows(self.path / state["lists_file"], n_rows * 4, lists)
            old = self._remove(con, id_list)
            iid0 = int(state["next_iid"])
            con.executemany(
                "INSERT INTO items (iid, id, rid, text, metadata) VALUES (?, ?, ?, ?, ?)",
                [(iid0 + i, id_list[i], n_rows + i, txts[i], mds[i][0]) for i in range(m)],
            )
            con.executemany(
                "INSERT INTO kv (iid, key, t, v) VALUES (?, ?, ?, ?)",
                [(iid0 + i, *row) for i in range(m) for row in mds[i][1]],
            )
            S.write_state(
                con,
                dim=int(xs.shape[1]),
                n_rows=n_rows + m,
                next_iid=iid0 + m,
                generation=int(state["generation"]) + 1,
            )
            return np.arange(n_rows, n_rows + m, dtype=np.int64), xs, lists, old

        with self._mu, self._lock.held():
            rids, xs, lists, old = self._write(write)
            if self._snap is not None:
                self._snap.remove(old)
                self._snap.append(rids, xs, lists)
                self._snap.generation += 1
            self._maintain()

    def delete(self, ids: Sequence[str]) -> int:
        """Delete items by id; returns how many existed. Their rows are dropped at the next
        rebuild (which happens by itself once deleted rows outnumber live ones)."""
        id_list = check_ids(ids, unique=False)
        if not id_list:
            return 0

        def write(con: sqlite3.Connection, state: dict[str, Any]) -> Any:
            old = self._remove(con, id_list)
            if len(old):
                S.write_state(con, generation=int(state["generation"]) + 1)
            return old

        with self._mu, self._lock.held():
            old = self._write(write)
            if self._snap is not None and len(old):
                self._snap.remove(old)
                self._snap.generation += 1
            self._maintain()
        return len(old)

    @staticmethod
    def _remove(con: sqlite3.Connection, ids: builtins.list[str]) -> npt.NDArray[np.int64]:
        import numpy as np

        rows = con.execute(
            "SELECT iid, rid FROM items WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        ).fetchall()
        if rows:
            iids = json.dumps([r[0] for r in rows])
            con.execute("DELETE FROM kv WHERE iid IN (SELECT value FROM json_each(?))", (iids,))
            con.execute("DELETE FROM items WHERE iid IN (SELECT value FROM json_each(?))", (iids,))
        return np.array([r[1] for r in rows], dtype=np.int64)

    def _maintain(self) -> None:
        state = self._state()
        live = len(self)
        n_rows, threshold = int(state["n_rows"]), int(state["ann_threshold"])
        trained = state["centroids_file"] is not None
        if (
            (not trained and live >= threshold)
            or (trained and live >= 4 * int(state["trained_n"]))
            or (n_rows >= 1024 and n_rows - live > live)
        ):
            self.rebuild()

    def rebuild(self, *, train: bool | None = None, nlist: int | None = None) -> None:
        """Drop deleted rows from disk and (re)train the IVF quantizer.

        ``train``: None trains when the index holds at least ``ann_threshold``
        vectors; True trains whenever it holds at least 256; False goes back
        to exact search. ``nlist``: IVF lists (default about ``sqrt(n)``).
        """
        import numpy as np

        if nlist is not None and (isinstance(nlist, bool) or not isinstance(nlist, int)):
            raise InvalidArgument(f"nlist must be a positive integer, got {nlist!r}")
        with self._mu, self._lock.held():
            con = self._conn()
            state = self._state()
            rows = con.execute("SELECT iid, rid FROM items ORDER BY rid").fetchall()
            live = len(rows)
            if train is None:
                train = live >= int(state["ann_threshold"])
            if train and live < _MIN_TRAIN:
                raise InvalidArgument(
                    f"training the IVF quantizer needs at least {_MIN_TRAIN} vectors; "
                    f"index {self.name!r} holds {live}"
                )
            if nlist is not None and not 1 <= nlist <= live:
                raise InvalidArgument(f"nlist must be between 1 and {live}, got {nlist}")
            if state["dim"] is None:
                return
            dim, metric = int(state["dim"]), str(state["metric"])
            files, x, lists, centroids, nprobe = write_rebuilt(
                self.path, state, [r[1] for r in rows], train=train, nlist=nlist
            )
            generation = int(state["generation"]) + 1
            with S.transaction(con, write=True):
                con.executemany(
                    "UPDATE items SET rid = ? WHERE iid = ?",
                    [(i, r[0]) for i, r in enumerate(rows)],
                )
                S.write_state(
                    con,
                    **files,
                    n_rows=live,
                    nprobe=nprobe,
                    trained_n=live if train else 0,
                    generation=generation,
                )
                new_state = S.read_state(con)
            S.remove_unreferenced(self.path, new_state)
            self._snap = Snapshot(
                generation=generation,
                dim=dim,
                metric=metric,
                files=(files["vectors_file"], files["lists_file"], files["centroids_file"]),
                n_rows=live,
                vectors=x,
                rids=np.arange(live, dtype=np.int64),
                lists=lists,
                centroids=centroids,
                nprobe=nprobe or 1,
            )
            if centroids is not None:
                self._centroids = (str(files["centroids_file"]), centroids)


if TYPE_CHECKING:
    from typing import TypeAlias

    # What ``VectorIndex.open`` gives: a FAISS index or a LanceDB one (same methods).
    AnyIndex: TypeAlias = VectorIndex | LanceIndex
