"""``opsloop gc``: artifact blobs no row references are removed, and only those.

Real databases (SQLite and PostgreSQL), real stores (a local folder and an
S3-compatible moto server), real writer processes (one SIGKILLed between
storing its blob and committing its row, others committing while gc deletes).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import opsloop
from opsloop.cli import app
from opsloop.errors import InvalidArgument
from opsloop.registry import Registry
from opsloop.rooms import load_all_tables
from opsloop.settings import Settings
from opsloop.store import (
    ArtifactStore,
    Database,
    LocalArtifactStore,
    blob_ref_columns,
    collect_garbage,
    open_artifact_store,
)
from opsloop.store._gc import digests_in
from opsloop.tracking.tables import artifacts
from tests._procs import LineReader, kill, start_script
from tests.conftest import fresh_pg_database
from tests.test_registry import saved_model

try:  # the S3 side needs boto3 and moto; the local side runs without them
    from tests.test_s3_artifacts import BUCKET, s3_endpoint  # noqa: F401 (a fixture)
except pytest.skip.Exception:
    BUCKET = ""

METADATA = load_all_tables()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Env:
    settings: Settings
    db: Database
    store: ArtifactStore
    kind: str

    def client(self) -> opsloop.Client:
        return opsloop.Client(settings=self.settings)

    def age(self, digest: str, seconds: float) -> None:
        """Make a blob look written ``seconds`` ago (local: its mtime; S3: wait)."""
        if isinstance(self.store, LocalArtifactStore):
            t = time.time() - seconds
            os.utime(self.store._path(digest), (t, t))
        else:
            st = self.store.stat(digest)
            assert st is not None
            time.sleep(max(0.0, st.modified + seconds + 1.05 - time.time()))

    def gc(self, **kw: Any) -> Any:
        return collect_garbage(self.db, self.store, METADATA, **kw)


class _nullctx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


@pytest.fixture(params=["sqlite-local", "postgres-local", "sqlite-s3", "postgres-s3"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    db_kind, store_kind = request.param.split("-")
    if db_kind == "postgres":
        request.applymarker(pytest.mark.postgres)
    extra: dict[str, Any] = {}
    if store_kind == "s3":
        if not BUCKET:
            pytest.skip("S3 tests need boto3 and moto")
        endpoint = request.getfixturevalue("s3_endpoint")
        extra = {
            "artifact_uri": f"s3://{BUCKET}/gc/{request.node.name}",
            "s3_endpoint_url": endpoint,
        }
    with fresh_pg_database() if db_kind == "postgres" else _nullctx() as pg:
        settings = Settings(home=tmp_path / "home", database_url=pg, **extra)
        opsloop.Client(settings=settings).close()  # creates the schema
        db = Database(settings.resolved_database_url)
        store = open_artifact_store(
            settings.resolved_artifact_uri, endpoint_url=settings.s3_endpoint_url
        )
        try:
            yield Env(settings, db, store, request.param)
        finally:
            db.dispose()


def test_blob_references_are_declared_on_the_tables() -> None:
    cols = {f"{c.table.name}.{c.name}" for c in blob_ref_columns(METADATA)}
    assert {
        "artifacts.digest",
        "dataset_versions.storage_json",
        "model_versions.manifest_json",
    } <= cols


def test_gc_removes_only_what_no_row_references(env: Env, tmp_path: Path) -> None:
    with env.client() as c:
        run = c.create_run(experiment_name="gc")
        c.log_text(run.id, "first model", "model.txt")
        c.log_text(run.id, "second model", "model.txt")  # replaces: the first is garbage
        c.log_text(run.id, "shared bytes", "shared.txt")
        gone = c.create_run(experiment_name="gc")
        c.log_text(gone.id, "only in a purged run", "x.txt")
        c.log_text(gone.id, "shared bytes", "also-shared.txt")  # still named by `run`
        c.delete_run(gone.id, purge=True)
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "a.md").write_text("# a dataset file\n")
        ds = c.datasets.create("handbook", docs, kind="documents")
        reg = Registry(c)
        keep_v = reg.register("m", saved_model(tmp_path, scale=2.0))
        drop_v = reg.register("m", saved_model(tmp_path, scale=3.0))
        reg.delete_version("m", drop_v.version)
    stray = env.store.put_bytes(b"a blob nothing ever named")

    garbage = {
        _digest(b"first model"),
        _digest(b"only in a purged run"),
        stray.digest,
        *(e.digest for e in drop_v.files.values()),
    } - {e.digest for e in keep_v.files.values()}  # the descriptor may be shared
    kept = {
        _digest(b"second model"),
        _digest(b"shared bytes"),
        *(e.digest for e in keep_v.files.values()),
        *digests_in(ds.storage),
    }
    assert len(set(digests_in(ds.storage))) >= 2  # the file and the chunks table
    every = {b.digest for b in env.store.iter_blobs()}
    assert garbage | kept <= every and not garbage & kept

    # Everything is young: nothing to remove at the default grace period.
    report = env.gc()
    assert report.dry_run and report.garbage == [] and report.young == len(every - kept)
    assert report.referenced == len(every) - report.young
    assert set(report.columns) >= {"artifacts.digest", "model_versions.manifest_json"}

    # A dry run lists what would go, with the bytes, and removes nothing.
    report = env.gc(min_age_s=0)
    assert {b.digest for b in report.garbage} == garbage
    assert report.garbage_bytes == sum(
        b.size for b in env.store.iter_blobs() if b.digest in garbage
    )
    assert {b.digest for b in env.store.iter_blobs()} == every

    report = env.gc(min_age_s=0, delete=True)
    assert {b.digest for b in report.deleted} == garbage and report.kept == []
    assert {b.digest for b in env.store.iter_blobs()} == every - garbage
    # What is referenced still reads back, through every room.
    with env.client() as c:
        assert c.read_artifact(run.id, "model.txt") == b"second model"
        assert c.read_artifact(run.id, "shared.txt") == b"shared bytes"
        assert Registry(c).load("models:/m/1").predict([{"x": 2.0}]) == [4.0]
    for d in kept:
        assert _digest(env.store.read_bytes(d)) == d
    assert env.gc(min_age_s=0, delete=True).deleted == []


def test_new_tables_are_covered_by_declaring_them(env: Env) -> None:
    """gc finds the reference columns in the MetaData: a new room's table only declares them."""
    md = sa.MetaData()
    t = sa.Table(
        "gc_test_room",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("blob", sa.String(71), info={"blob_ref": True}),
        sa.Column("doc", sa.JSON, info={"blob_ref": True}),
        sa.Column("note", sa.String(200)),  # a digest here is not a reference
    )
    md.create_all(env.db.engine)
    a, b, n = (env.store.put_bytes(x).digest for x in (b"in a column", b"in a doc", b"in a note"))
    with env.db.write() as conn:
        conn.execute(t.insert().values(id=1, blob=a, doc={"files": [{"digest": b}]}, note=n))
    report = collect_garbage(env.db, env.store, md, min_age_s=0)
    assert {x.digest for x in report.garbage} == {n}
    assert report.columns == ["gc_test_room.blob", "gc_test_room.doc"]
    with pytest.raises(InvalidArgument):
        collect_garbage(env.db, env.store, sa.MetaData(), min_age_s=0)  # nothing declared
    with pytest.raises(InvalidArgument):
        collect_garbage(env.db, env.store, md, min_age_s=-1)


def test_rows_committed_or_blobs_rewritten_during_gc_are_kept(env: Env) -> None:
    """The last check happens right before deleting: a row committed after the scan, or a
    blob stored again, keeps its blob."""
    with env.client() as c:
        run = c.create_run(experiment_name="gc")
    named, rewritten, dropped = (
        env.store.put_bytes(x).digest for x in (b"named late", b"stored again", b"garbage")
    )
    for d in (named, rewritten, dropped):
        env.age(d, 5)

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase == "deleting" and done == 0:
            with env.db.write() as conn:
                conn.execute(
                    artifacts.insert().values(
                        run_id=run.id,
                        path="late.bin",
                        digest=named,
                        size=10,
                        media_type="application/octet-stream",
                        created_at=0,
                    )
                )
            env.store.put_bytes(b"stored again")  # a writer storing the same bytes

    report = env.gc(min_age_s=2, delete=True, progress=progress)
    assert {b.digest for b in report.garbage} == {named, rewritten, dropped}
    assert {b.digest for b in report.deleted} == {dropped}
    assert {b.digest for b in report.kept} == {named, rewritten}
    assert env.store.exists(named) and env.store.exists(rewritten)
    assert not env.store.exists(dropped)


# A writer that stores an artifact through ArtifactService (blob first, then the row),
# optionally stopping for good, or pausing, between the two.
WRITER = r"""
import io, json, os, sys, time
from opsloop.settings import Settings
from opsloop.store import Database, open_artifact_store
from opsloop.tracking import ArtifactService

cfg = json.loads(sys.argv[1])
s = Settings(**cfg["settings"])
db = Database(s.resolved_database_url)
store = open_artifact_store(s.resolved_artifact_uri, endpoint_url=s.s3_endpoint_url)
svc = ArtifactService(db, store)
write = db.write

def slow_write():
    # The blob is stored; the row is not committed yet.
    print("blob stored", flush=True)
    if cfg["pause"] is None:
        time.sleep(3600)  # the test SIGKILLs us here
    time.sleep(cfg["pause"])
    return write()

db.write = slow_write
for i, payload in enumerate(cfg["payloads"]):
    path = f"{cfg['name']}/f{i}.bin"
    info = svc.put_stream(cfg["run_id"], path, io.BytesIO(payload.encode()))
    print("committed", info.digest, flush=True)
print("done", flush=True)
"""


def _writer(
    env: Env, run_id: str, payloads: list[str], pause: float | None, name: str = "w"
) -> Any:
    settings = env.settings.model_dump(
        include={"home", "database_url", "artifact_uri", "s3_endpoint_url"}, mode="json"
    )
    cfg = {
        "settings": settings,
        "run_id": run_id,
        "payloads": payloads,
        "pause": pause,
        "name": name,
    }
    return start_script(WRITER, json.dumps(cfg))


def test_blob_of_a_writer_killed_before_its_commit(env: Env) -> None:
    with env.client() as c:
        run = c.create_run(experiment_name="gc")
    proc = _writer(env, run.id, ["model bytes the row never named"], pause=None)
    lines = LineReader(proc.stdout)  # type: ignore[arg-type]
    try:
        assert lines.next() == "blob stored"
    finally:
        kill(proc)  # SIGKILL between the blob and the row
    orphan = _digest(b"model bytes the row never named")
    assert env.store.exists(orphan)
    with env.client() as c:
        assert c.list_artifacts(run.id) == []

    # Younger than the grace period: left alone, and said so.
    report = env.gc(min_age_s=3600)
    assert orphan not in {b.digest for b in report.garbage} and report.young == 1
    report = env.gc(min_age_s=3600, delete=True)
    assert report.deleted == [] and env.store.exists(orphan)
    grace = 3.0
    assert orphan not in {b.digest for b in env.gc(min_age_s=grace).garbage}
    # Once older than the grace period, it is garbage.
    env.age(orphan, grace + 0.5)
    assert [b.digest for b in env.gc(min_age_s=grace).garbage] == [orphan]
    # With no grace period it is collected at once.
    fresh = env.store.put_bytes(b"another orphan").digest
    report = env.gc(min_age_s=0, delete=True)
    assert {b.digest for b in report.deleted} == {orphan, fresh}
    assert not env.store.exists(orphan) and not env.store.exists(fresh)


def test_writers_committing_during_gc_never_lose_their_blob(env: Env) -> None:
    """Writers store blobs and commit their rows 0.3 s later while gc deletes in a loop;
    some store bytes of an old garbage blob again. Every committed row's blob survives."""
    with env.client() as c:
        run = c.create_run(experiment_name="gc")
    old = [env.store.put_bytes(f"old garbage {i}".encode()).digest for i in range(6)]
    for d in old:
        env.age(d, 10)
    payloads = [
        [f"writer {w} blob {i}" if i % 3 else f"old garbage {w * 3 + i // 3}" for i in range(6)]
        for w in range(2)
    ]
    procs = [_writer(env, run.id, p, pause=0.3, name=f"w{w}") for w, p in enumerate(payloads)]
    readers = [LineReader(p.stdout) for p in procs]  # type: ignore[arg-type]
    deleted: set[str] = set()
    try:
        deadline = time.monotonic() + 120
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            report = env.gc(min_age_s=2, delete=True)
            deleted.update(b.digest for b in report.deleted)
        for p in procs:
            assert p.wait(timeout=60) == 0, p.stderr.read() if p.stderr else ""
    finally:
        for p in procs:
            kill(p)
    committed = [
        line.split()[1] for r in readers for line in r.rest() if line.startswith("committed")
    ]
    assert len(committed) == 12
    with env.db.read() as conn:
        rows = {r.path: r.digest for r in conn.execute(sa.select(artifacts))}
    assert len(rows) == 12 and set(rows.values()) == set(committed)
    for digest in set(committed):
        assert env.store.exists(digest), digest  # never lost
    # Old garbage stored again by a writer is named now (whether gc removed it before the
    # writer stored it again or not); the old garbage nobody stored again went.
    named_old = {d for d in old if d in set(rows.values())}
    assert named_old == {old[0], old[1], old[3], old[4]}
    final = env.gc(min_age_s=0, delete=True)
    assert {b.digest for b in final.deleted} | deleted >= {old[2], old[5]}
    assert not env.store.exists(old[2]) and not env.store.exists(old[5])
    for digest in rows.values():
        assert _digest(env.store.read_bytes(digest)) == digest  # every row reads back


# ---------------------------------------------------------------- CLI


def _cli(*args: str, env: dict[str, str] | None = None) -> Any:
    clean = {k: "" for k in os.environ if k.startswith("OPSLOOP_")}
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **clean, **(env or {})})


def test_cli_dry_run_then_yes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with opsloop.Client(home=home) as c:
        run = c.create_run(experiment_name="gc")
        c.log_text(run.id, "old", "a.txt")
        c.log_text(run.id, "new", "a.txt")
    store = LocalArtifactStore(home / "artifacts")
    (home / "artifacts" / "tmp").mkdir(exist_ok=True)
    leftover = home / "artifacts" / "tmp" / "upload-crashed"
    leftover.write_bytes(b"half a blob")
    old = _digest(b"old")

    r = _cli("gc", "--home", str(home))
    assert r.exit_code == 0, r.output
    assert "nothing to remove" in r.stdout and "1 unreferenced blob(s)" in r.stdout

    r = _cli("gc", "--home", str(home), "--min-age", "0")
    assert r.exit_code == 0, r.output
    assert old in r.stdout and "would remove 1 blob(s), 3 B" in r.stdout and "--yes" in r.stdout
    assert "1 leftover temporary file(s)" in r.stdout
    assert store.exists(old) and leftover.exists()

    r = _cli("gc", "--home", str(home), "--min-age", "0", "--json")
    data = json.loads(r.stdout)
    assert data["dry_run"] is True and [g["digest"] for g in data["garbage"]] == [old]
    assert data["garbage_bytes"] == 3 and data["temp"][0]["name"] == "upload-crashed"

    r = _cli("gc", "--home", str(home), "--min-age", "0", "--yes")
    assert r.exit_code == 0, r.output
    assert "removed 1 blob(s), 3 B" in r.stdout
    assert not store.exists(old) and not leftover.exists()
    assert store.exists(_digest(b"new"))


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--min-age", "soon"], "INVALID_ARGUMENT", "--min-age"),
        (["--min-age", "-1h"], "INVALID_ARGUMENT", "--min-age"),
        (["--show", "-1"], "INVALID_ARGUMENT", "--show"),
        (["--artifact-uri", "ftp://x/y"], "INVALID_ARGUMENT", "unsupported artifact URI"),
    ],
)
def test_cli_errors(tmp_path: Path, args: list[str], code: str, fragment: str) -> None:
    home = tmp_path / "home"
    opsloop.Client(home=home).close()
    r = _cli("gc", "--home", str(home), *args)
    assert r.exit_code == 1, r.output
    assert f"error [{code}]:" in r.stderr and fragment in r.stderr
    assert "Traceback" not in r.output


def test_cli_refuses_a_server(tmp_path: Path) -> None:
    r = _cli("--tracking-uri", "http://127.0.0.1:9", "gc")
    assert r.exit_code == 1 and "error [INVALID_ARGUMENT]:" in r.stderr
    assert "not through a server" in r.stderr
