"""Building a version: one streaming pass that checks, profiles, hashes and writes Parquet.

The builder works on the client side (embedded or remote): it reads the
source batch by batch, casts each batch to the canonical schema, checks the
record kind and the validation rules, feeds the profiler and the content
hasher, and appends the batch to a Parquet file in a private work folder.
Memory holds one row group (``ROW_GROUP_ROWS`` rows) plus the bounded
profile sketches, whatever the size of the input. Nothing reaches the store
until the whole input has been read and accepted: a rejected or malformed
input leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.datasets._arrow import canonical_schema, require_pyarrow, to_canonical
from opsloop.datasets._digest import ContentHasher
from opsloop.datasets._kinds import KindChecker
from opsloop.datasets._profile import Profiler
from opsloop.datasets._rules import Rule, ValidationFailed, load_rules
from opsloop.datasets._sources import RestartRead, Source, arrow_type, cast_columns
from opsloop.datasets._validate import Validator
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

ROW_GROUP_ROWS = 65_536
PROCESS_ROWS = 32_768
ROW_GROUP_BYTES = 64 << 20
ON_ERROR = ("reject", "flag")

# progress(rows_done, bytes_done or None, bytes_total or None)
Progress = Callable[[int, int | None, int | None], None]


@dataclass
class LocalBlob:
    """A file this version stores: ``role`` is ``data``, ``chunks`` or ``file``."""

    role: str
    path: Path
    digest: str
    size: int
    name: str | None = None


@dataclass
class BuiltVersion:
    """Everything a version is, ready to store: metadata plus local files."""

    kind: str
    format: str
    content_digest: str
    row_count: int
    schema: list[dict[str, Any]]
    profile: dict[str, Any]
    sample: dict[str, Any]
    validation: dict[str, Any] | None
    status: str
    blobs: list[LocalBlob]
    workdir: Path | None = None
    storage_extra: dict[str, Any] = field(default_factory=dict)

    def storage(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.storage_extra)
        files = []
        for b in self.blobs:
            entry = {"digest": b.digest, "size": b.size}
            if b.role == "file":
                files.append({"path": b.name, **entry})
            else:
                out[b.role] = entry
        if files:
            out["files"] = files
        return out

    @property
    def size_bytes(self) -> int:
        return sum(b.size for b in self.blobs)

    def manifest(
        self,
        *,
        message: str = "",
        parent_version_id: str | None = None,
        derivation: str = "",
    ) -> dict[str, Any]:
        """The version's metadata as the REST API takes it."""
        return {
            "kind": self.kind,
            "format": self.format,
            "content_digest": self.content_digest,
            "row_count": self.row_count,
            "size_bytes": self.size_bytes,
            "columns": self.schema,
            "profile": self.profile,
            "sample": self.sample,
            "validation": self.validation,
            "status": self.status,
            "storage": self.storage(),
            "message": message,
            "parent_version_id": parent_version_id,
            "derivation": derivation,
        }

    def cleanup(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return "sha256:" + h.hexdigest(), size


def make_workdir(parent: Path | None) -> Path:
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="opsloop-dataset-", dir=parent))


def check_on_error(on_error: Any) -> str:
    if on_error not in ON_ERROR:
        raise InvalidArgument(f"on_error must be 'reject' or 'flag', got {on_error!r}")
    return str(on_error)


class ParquetSink:
    """Appends canonical batches to a Parquet file in row groups of about ``ROW_GROUP_ROWS``."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.writer = pq.ParquetWriter(str(path), schema, compression="zstd")
        self.schema = schema
        self._buf: list[pa.RecordBatch] = []
        self._rows = 0
        self._bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self._buf.append(batch)
        self._rows += batch.num_rows
        self._bytes += batch.nbytes
        if self._rows >= ROW_GROUP_ROWS or self._bytes >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            pa = require_pyarrow()
            self.writer.write_table(
                pa.Table.from_batches(self._buf, schema=self.schema), row_group_size=1 << 30
            )
            self._buf, self._rows, self._bytes = [], 0, 0

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()


def build_version(
    source: Source,
    *,
    kind: str = "tabular",
    rules: Any = None,
    on_error: str = "reject",
    column_types: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    work_parent: Path | None = None,
    max_examples: int = 20,
) -> BuiltVersion:
    """Read ``source`` once (twice when its types need a full scan) into a ``BuiltVersion``.

    Raises ``ValidationFailed`` when rules fail and ``on_error="reject"``, and
    ``InvalidArgument`` for malformed or empty input; then nothing is kept.
    """
    check_on_error(on_error)
    rule_list: list[Rule] = load_rules(rules)
    types = {k: arrow_type(v) for k, v in (column_types or {}).items()}
    while True:
        workdir = make_workdir(work_parent)
        try:
            built = _build_once(
                source, kind, rule_list, on_error, types, progress, workdir, max_examples
            )
            built.workdir = workdir
            return built
        except RestartRead as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            if not source.adapt(exc.action):
                raise InvalidArgument(f"cannot read {source.description}: {exc}") from exc
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise


def _build_once(
    source: Source,
    kind: str,
    rules: list[Rule],
    on_error: str,
    types: Mapping[str, pa.DataType],
    progress: Progress | None,
    workdir: Path,
    max_examples: int,
) -> BuiltVersion:
    checker = KindChecker(kind)
    schema: pa.Schema | None = None
    sink: ParquetSink | None = None
    hasher = profiler = validator = None
    path = workdir / "data.parquet"
    rows = 0
    try:
        for raw in _coalesce(source.batches()):
            raw = checker.apply(cast_columns(raw, types))
            if schema is None:
                schema = canonical_schema(raw.schema)
                sink = ParquetSink(path, schema)
                hasher = ContentHasher(schema)
                profiler = Profiler(schema)
                validator = Validator(rules, schema, max_examples=max_examples)
            batch = to_canonical(raw, schema)
            if batch.num_rows == 0:
                continue
            assert sink is not None and hasher and profiler and validator
            validator.check(batch)
            profiler.update(batch)
            hasher.update(batch)
            sink.write(batch)
            rows += batch.num_rows
            if progress is not None:
                progress(rows, source.position(), source.total_bytes)
    finally:
        if sink is not None:
            sink.close()
    checker.finish()
    if schema is None or rows == 0 or hasher is None or profiler is None or validator is None:
        raise InvalidArgument(f"{source.description} holds no rows: nothing to store")
    report = validator.report() if rules else None
    status = "valid"
    if report is not None:
        report["on_error"] = on_error
        if not report["passed"]:
            if on_error == "reject":
                raise ValidationFailed(_summary(report), report)
            status = "flagged"
    profile = profiler.result()
    nulls = {c["name"]: c["nulls"] for c in profile["columns"]}
    digest, size = sha256_file(path)
    return BuiltVersion(
        kind=kind,
        format="parquet",
        content_digest=hasher.digest(),
        row_count=rows,
        schema=[
            {"name": f.name, "type": str(f.type), "nullable": nulls[f.name] > 0} for f in schema
        ],
        profile=profile,
        sample=profiler.sample(),
        validation=report,
        status=status,
        blobs=[LocalBlob("data", path, digest, size)],
    )


def _coalesce(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches of at least ``PROCESS_ROWS`` rows (but the last): readers cut small blocks to
    bound memory, and each batch costs a fixed overhead in the profile and checks."""
    arrow = require_pyarrow()
    buf: list[pa.RecordBatch] = []
    rows = 0
    for b in batches:
        if buf and not b.schema.equals(buf[0].schema):
            yield _concat(arrow, buf)
            buf, rows = [], 0
        buf.append(b)
        rows += b.num_rows
        if rows >= PROCESS_ROWS:
            yield _concat(arrow, buf)
            buf, rows = [], 0
    if buf:
        yield _concat(arrow, buf)


def _concat(arrow: Any, buf: list[pa.RecordBatch]) -> pa.RecordBatch:
    return buf[0] if len(buf) == 1 else arrow.concat_batches(buf)


def _summary(report: dict[str, Any]) -> str:
    broken = [r for r in report["rules"] if r["violations"]]
    parts = [f"{r['name']}: {r['violations']}" for r in broken[:5]]
    more = f" and {len(broken) - 5} more rules" if len(broken) > 5 else ""
    return (
        f"validation failed: {report['total_violations']} violation(s) of "
        f"{len(broken)} rule(s) ({'; '.join(parts)}{more}); nothing was stored"
    )
