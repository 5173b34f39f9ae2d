"""Garbage collection of artifact blobs: remove the blobs no row references.

Which columns reference blobs is declared next to the tables, on the column:
``sa.Column("digest", ..., info={"blob_ref": True})``. A string column holds a
digest; a JSON column holds digests anywhere inside it (every
``sha256:<64 hex>`` string counts). ``collect_garbage`` finds the columns in the
``MetaData`` it is given, so a new room's tables are covered by declaring them.

Safe while writers run. A writer stores a blob, then commits the row naming it
a moment later; in between, the blob is unreferenced. So:

1. only blobs not written for ``min_age_s`` are candidates (a blob's age
   restarts whenever its bytes are stored again, ``ArtifactStore.touch``);
2. the blobs are listed *before* the references are read, so a row committed
   during the scan names a blob that is either young or seen as referenced;
3. right before deleting, each batch of candidates is checked again against
   the database (in a fresh transaction) and the store deletes a blob only if
   it was still not written since the cutoff (``delete_if_older``).

A writer loses its blob only if it takes longer than ``min_age_s`` between
storing the blob and committing its row. With ``min_age_s=0`` there is no such
margin: run it only when nothing writes.

Leftovers of interrupted writes (``tmp/`` files and objects, open multipart
uploads) older than ``min_age_s`` are removed as well.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from opsloop.errors import InvalidArgument
from opsloop.store._artifacts import ArtifactStore, BlobStat, TempFile
from opsloop.store._engine import Database

BLOB_REF = "blob_ref"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_IN_CHUNK = 500  # digests per IN (...) list
DELETE_BATCH = 1000  # candidates checked again, then deleted, per batch

Progress = Callable[[str, int, int | None], None]
"""``progress(phase, done, total)``: phases ``listing``, ``checking``, ``deleting``."""


def blob_ref_columns(metadata: sa.MetaData) -> list[sa.Column[Any]]:
    """Every column declared ``info={"blob_ref": True}``, in a stable order."""
    return [
        c
        for t in sorted(metadata.tables.values(), key=lambda t: t.name)
        for c in t.columns
        if c.info.get(BLOB_REF)
    ]


def digests_in(value: Any) -> Iterator[str]:
    """Every ``sha256:<hex>`` digest in a column value (a string, or JSON at any depth)."""
    if isinstance(value, str):
        yield from _DIGEST.findall(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from digests_in(k)
            yield from digests_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from digests_in(v)


def referenced(
    conn: sa.Connection, columns: Sequence[sa.Column[Any]], digests: Collection[str]
) -> set[str]:
    """Which of ``digests`` some row of the ``columns`` names."""
    want = set(digests)
    found: set[str] = set()
    if not want:
        return found
    for col in columns:
        if isinstance(col.type, sa.JSON):
            # Digests can be anywhere in the document: read them all (versions tables).
            stmt = sa.select(col).execution_options(yield_per=1000)
            for (value,) in conn.execute(stmt):
                found.update(d for d in digests_in(value) if d in want)
        else:
            ordered = sorted(want - found)
            for i in range(0, len(ordered), _IN_CHUNK):
                chunk = ordered[i : i + _IN_CHUNK]
                found.update(
                    v for (v,) in conn.execute(sa.select(col).where(col.in_(chunk)).distinct())
                )
    return found & want


@dataclass
class GcReport:
    """What a collection found and, unless it was a dry run, removed."""

    min_age_s: float
    dry_run: bool
    columns: list[str] = field(default_factory=list)  # "table.column" searched for references
    blobs: int = 0  # stored, in all
    blob_bytes: int = 0
    referenced: int = 0
    young: int = 0  # unreferenced, but written within min_age_s: kept
    garbage: list[BlobStat] = field(default_factory=list)
    temp: list[TempFile] = field(default_factory=list)
    deleted: list[BlobStat] = field(default_factory=list)
    # garbage not removed after all: named by a row or written again by the last check
    # (or already gone)
    kept: list[BlobStat] = field(default_factory=list)
    deleted_temp: list[TempFile] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def garbage_bytes(self) -> int:
        return sum(b.size for b in self.garbage)

    @property
    def deleted_bytes(self) -> int:
        return sum(b.size for b in self.deleted)

    @property
    def temp_bytes(self) -> int:
        return sum(t.size for t in self.temp)

    def as_dict(self) -> dict[str, Any]:
        def blobs(items: Iterable[BlobStat]) -> list[dict[str, Any]]:
            return [{"digest": b.digest, "size": b.size, "modified": b.modified} for b in items]

        return {
            "dry_run": self.dry_run,
            "min_age_s": self.min_age_s,
            "columns": self.columns,
            "blobs": self.blobs,
            "blob_bytes": self.blob_bytes,
            "referenced": self.referenced,
            "young": self.young,
            "garbage": blobs(self.garbage),
            "garbage_bytes": self.garbage_bytes,
            "temp": [{"name": t.name, "size": t.size, "modified": t.modified} for t in self.temp],
            "temp_bytes": self.temp_bytes,
            "deleted": blobs(self.deleted),
            "deleted_bytes": self.deleted_bytes,
            "kept": blobs(self.kept),
            "deleted_temp": [t.name for t in self.deleted_temp],
            "seconds": self.seconds,
        }


def collect_garbage(
    db: Database,
    store: ArtifactStore,
    metadata: sa.MetaData,
    *,
    min_age_s: float = 3600.0,
    delete: bool = False,
    progress: Progress | None = None,
) -> GcReport:
    """Find (and with ``delete=True`` remove) the blobs no row references.

    A dry run by default: the report lists what would go. See the module
    docstring for why this is safe with writers running.
    """
    if (
        isinstance(min_age_s, bool)
        or not isinstance(min_age_s, int | float)
        or not math.isfinite(min_age_s)
        or min_age_s < 0
    ):
        raise InvalidArgument(f"min_age_s must be a number of seconds >= 0, got {min_age_s!r}")
    columns = blob_ref_columns(metadata)
    if not columns:
        raise InvalidArgument(
            "no column is declared as a blob reference (info={'blob_ref': True}): "
            "refusing to treat every blob as garbage"
        )
    tick = progress or (lambda phase, done, total: None)
    started = time.monotonic()
    report = GcReport(
        min_age_s=float(min_age_s),
        dry_run=not delete,
        columns=[f"{c.table.name}.{c.name}" for c in columns],
    )

    # 1. The store first, the references after (see the module docstring).
    cutoff = time.time() - min_age_s
    listed: list[BlobStat] = []
    for blob in store.iter_blobs():
        listed.append(blob)
        report.blob_bytes += blob.size
        if len(listed) % 1000 == 0:
            tick("listing", len(listed), None)
    report.blobs = len(listed)
    tick("listing", report.blobs, report.blobs)
    report.temp = [t for t in store.iter_temp() if t.modified < cutoff]

    # 2. Which blobs no row names; of those, the ones not written for min_age_s.
    tick("checking", 0, report.blobs)
    with db.read() as conn:
        refs = referenced(conn, columns, [b.digest for b in listed])
    tick("checking", report.blobs, report.blobs)
    report.referenced = len(refs)
    for blob in listed:
        if blob.digest in refs:
            continue
        if blob.modified < cutoff:
            report.garbage.append(blob)
        else:
            report.young += 1
    if not delete:
        report.seconds = time.monotonic() - started
        return report

    # 3. Check each batch again right before deleting it.
    total = len(report.garbage)
    tick("deleting", 0, total)
    done = 0
    for i in range(0, total, DELETE_BATCH):
        batch = report.garbage[i : i + DELETE_BATCH]
        cutoff = time.time() - min_age_s
        with db.read() as conn:
            now_referenced = referenced(conn, columns, [b.digest for b in batch])
        for blob in batch:
            if blob.digest not in now_referenced and store.delete_if_older(blob.digest, cutoff):
                report.deleted.append(blob)
            else:
                report.kept.append(blob)
            done += 1
            if done % 100 == 0:
                tick("deleting", done, total)
    cutoff = time.time() - min_age_s
    for t in report.temp:
        if t.modified < cutoff:
            store.delete_temp(t.name)
            report.deleted_temp.append(t)
    tick("deleting", total, total)
    report.seconds = time.monotonic() - started
    return report
