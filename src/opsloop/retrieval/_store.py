"""An index's folder: a SQLite file for ids, texts and metadata, append-only vector files.

``<home>/indexes/<name>/``::

    index.sqlite          state (dim, metric, committed row count, file names,
                          IVF settings, generation), items, kv (metadata index)
    vectors-<tag>.f32     float32 rows, row-major, appended in rid order
    lists-<tag>.i32       the IVF list of each row (once the index is trained)
    centroids-<tag>.npy   the IVF centroids
    lock                  flock: one writer at a time, across processes

The SQLite commit is the commit point. A writer appends vectors past the
committed row count, fsyncs them, then commits the new count with the rows'
ids and metadata in one transaction; bytes past the committed count (a writer
killed mid-add) are never read and are cut off by the next writer. A rebuild
writes new files under new names and switches to them in one commit; files no
state names are removed by the next writer. Readers take no lock: a read
transaction sees one consistent state, and rows below its count never change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    import numpy.typing as npt

FORMAT = 1
METRICS = ("cosine", "l2")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DATA_FILE = re.compile(r"^(vectors|lists|centroids)-[0-9a-f]+\.(f32|i32|npy)$")
DB_FILE = "index.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS items (
    iid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    rid INTEGER NOT NULL,
    text TEXT,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_rid ON items (rid);
CREATE TABLE IF NOT EXISTS kv (iid INTEGER NOT NULL, key TEXT NOT NULL, t INTEGER NOT NULL, v);
CREATE INDEX IF NOT EXISTS kv_key ON kv (key, t, v);
CREATE INDEX IF NOT EXISTS kv_iid ON kv (iid);
"""


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument(
            f"index name {name!r} must be 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def indexes_root(home: str | os.PathLike[str] | None) -> Path:
    if home is None:
        from opsloop.settings import Settings  # lazy: loads pydantic_settings

        home = Settings().home
    return Path(home).expanduser() / "indexes"


def new_tag() -> str:
    return f"{int(time.time() * 1000):x}{secrets.token_hex(4)}"


class FileLock:
    """An exclusive ``flock`` on a file, re-entrant within one object, safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mu = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._mu:
            if self._depth == 0:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None


def connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=120, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed rebuild must survive power loss, since it removes the old files.
    con.execute("PRAGMA synchronous=FULL")
    return con


@contextlib.contextmanager
def transaction(con: sqlite3.Connection, *, write: bool) -> Iterator[sqlite3.Connection]:
    con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def read_state(con: sqlite3.Connection) -> dict[str, Any]:
    return {k: v for k, v in con.execute("SELECT key, value FROM state")}


def write_state(con: sqlite3.Connection, **values: Any) -> None:
    con.executemany(
        "INSERT INTO state (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(values.items()),
    )


def init_folder(
    folder: Path, *, dim: int | None, metric: str | None, ann_threshold: int | None
) -> None:
    """Create the index folder and its database (idempotent, safe against a racing creator)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = connect(folder / DB_FILE)
    try:
        with transaction(con, write=True):
            # One statement at a time: executescript would commit the open transaction.
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            if not read_state(con):
                write_state(
                    con,
                    format=FORMAT,
                    dim=dim,
                    metric=metric or "cosine",
                    n_rows=0,
                    next_iid=1,
                    generation=0,
                    vectors_file=f"vectors-{new_tag()}.f32",
                    lists_file=None,
                    centroids_file=None,
                    nprobe=None,
                    trained_n=0,
                    ann_threshold=ann_threshold or 10_000,
                    dropped=0,
                    created_at=int(time.time() * 1000),
                )
    finally:
        con.close()


def check_state(state: dict[str, Any], name: str) -> None:
    if not state:
        raise NotFound(f"vector index {name!r} does not exist")
    if state.get("dropped"):
        raise NotFound(f"vector index {name!r} was dropped")
    if int(state.get("format", 0)) > FORMAT:
        raise InvalidArgument(
            f"vector index {name!r} has format {state['format']}, newer than this opsloop reads"
        )


# ---------------------------------------------------------------- data files


def read_rows(path: Path, dtype: Any, count: int, width: int = 1) -> Any:
    """The first ``count`` committed rows of an append-only file."""
    import numpy as np

    if count == 0:
        shape: tuple[int, ...] = (0, width) if width > 1 else (0,)
        return np.empty(shape, dtype=dtype)
    data = np.fromfile(path, dtype=dtype, count=count * width)
    if len(data) < count * width:
        raise InvalidArgument(
            f"{path.name} holds {len(data) // width} rows but the index committed {count}: "
            "the file was truncated outside opsloop"
        )
    return data.reshape(count, width) if width > 1 else data


def read_rows_from(path: Path, dtype: Any, start: int, count: int, width: int) -> Any:
    """Rows ``start .. start+count`` of an append-only file."""
    import numpy as np

    itemsize = np.dtype(dtype).itemsize
    with open(path, "rb") as fh:
        fh.seek(start * width * itemsize)
        data = np.frombuffer(fh.read(count * width * itemsize), dtype=dtype)
    if len(data) < count * width:
        raise InvalidArgument(f"{path.name} is shorter than the rows the index committed")
    return data.reshape(count, width) if width > 1 else data


def append_rows(path: Path, committed_bytes: int, data: npt.NDArray[Any]) -> None:
    """Cut the file to its committed length (a killed writer's leftovers), append, fsync."""
    with open(path, "a+b") as fh:
        fh.truncate(committed_bytes)
        fh.write(data.tobytes())
        fh.flush()
        os.fsync(fh.fileno())


def write_new(path: Path, data: npt.NDArray[Any]) -> None:
    """A new data file, complete and on disk before any state names it."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        if path.suffix == ".npy":
            import numpy as np

            np.save(fh, data, allow_pickle=False)
        else:
            fh.write(data.tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_unreferenced(folder: Path, state: dict[str, Any]) -> None:
    """Data files no state names: a killed rebuild's output, or files a rebuild replaced."""
    keep = {state.get("vectors_file"), state.get("lists_file"), state.get("centroids_file")}
    for p in folder.iterdir():
        name = p.name
        stale_tmp = name.startswith(".") and name.endswith(".tmp")
        if (stale_tmp or _DATA_FILE.match(name)) and name not in keep:
            with contextlib.suppress(OSError):
                p.unlink()


def dumps_metadata(md: Any, where: str) -> str:
    try:
        return json.dumps(md, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{where} is not JSON-serialisable: {exc}") from None


def folder_size(folder: Path) -> int:
    total = 0
    for p in folder.iterdir():
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total
