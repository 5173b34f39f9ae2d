"""Datasets over the wire and at the edges: streaming a big CSV in bounded memory, the REST
API's checks and error shape, the CLI, and the fluent lineage helper."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import opsloop
from opsloop.datasets import Datasets
from opsloop.server import create_app
from opsloop.settings import Settings
from tests.test_error_shape import assert_error_shape

pa = pytest.importorskip("pyarrow")
np = pytest.importorskip("numpy")


# ---------------------------------------------------------------- streaming


def test_big_csv_streams_in_batches_with_bounded_memory(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from opsloop.datasets import _build
    from opsloop.datasets._readers import CsvSource

    # Smaller row groups than the default, so a 300k-row file is many times what the
    # pipeline holds at once and the bound shows clearly in a fast test.
    monkeypatch.setattr(_build, "ROW_GROUP_ROWS", 16_384)
    monkeypatch.setattr(_build, "PROCESS_ROWS", 8_192)
    n = 300_000
    rng = np.random.default_rng(0)
    words = np.array(["lorem", "ipsum", "dolor", "sit", "amet", "elit", "sed", "do"])
    text = [" ".join(r) for r in words[rng.integers(0, 8, size=(n, 12))].tolist()]
    table = pa.table(
        {"id": np.arange(n), "x": rng.normal(size=n), "k": rng.integers(0, 50, n), "text": text}
    )
    big, small = tmp_path / "big.csv", tmp_path / "small.csv"
    pacsv.write_csv(table, str(big))
    pacsv.write_csv(table.slice(0, n // 3), str(small))
    whole = pacsv.read_csv(str(big)).nbytes  # what loading it whole holds in Arrow memory
    c = opsloop.Client(home=home)
    ds = Datasets(c)

    def build(path: Path, name: str) -> tuple[Any, list[int], list[int]]:
        batches: list[int] = []

        class Counting(CsvSource):
            def batches(self) -> Iterator[Any]:
                for b in super().batches():
                    batches.append(b.num_rows)
                    yield b

        base = pa.total_allocated_bytes()
        held: list[int] = []
        v = ds.create(
            name,
            Counting(path, block_size=256 << 10),
            progress=lambda rows, done, total: held.append(pa.total_allocated_bytes() - base),
        )
        return v, batches, held

    try:
        v, batches, held = build(big, "big")
        _, _, held_small = build(small, "small")
    finally:
        c.close()
    assert v.row_count == n and sum(batches) == n
    assert len(batches) >= 20 and max(batches) <= n // 10  # read block by block, never whole
    # Arrow's CSV reader keeps ~10 MB of blocks in flight; the rest is one row group.
    assert len(held) >= 20 and max(held) < 0.6 * whole, (max(held), whole)
    # Three times the rows, about the same memory: bounded by blocks and row groups.
    assert max(held) < 1.5 * max(held_small) + (1 << 20), (max(held), max(held_small))
    store = Path(home) / "artifacts"
    digest = v.storage["data"]["digest"].split(":")[1]
    blob = next(p for p in store.rglob(digest) if p.is_file())
    assert pq.ParquetFile(blob).metadata.num_row_groups >= 15
    prof = {c["name"]: c for c in v.profile["columns"]}
    assert prof["id"]["max"] == n - 1 and prof["k"]["distinct"] == 50


# ---------------------------------------------------------------- REST API


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    s = Settings(home=tmp_path / "srv")
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        yield c


def _built(tmp_path: Path, rows: list[dict[str, Any]]) -> Any:
    from opsloop.datasets._build import build_version
    from opsloop.datasets._readers import open_source

    return build_version(open_source(rows), work_parent=tmp_path / "work")


def test_blob_upload_checks_the_digest(api: TestClient) -> None:
    body = b"hello blobs"
    good = "sha256:" + hashlib.sha256(body).hexdigest()
    wrong = "sha256:" + "0" * 64
    err = assert_error_shape(
        api.put(f"/api/v1/blobs/{wrong}", content=body), 400, "INVALID_ARGUMENT"
    )
    assert err["details"]["actual"] == good
    assert api.head(f"/api/v1/blobs/{wrong}").status_code == 404
    assert api.post("/api/v1/blobs/missing", json={"digests": [good, wrong]}).json() == {
        "missing": [good, wrong]
    }
    r = api.put(f"/api/v1/blobs/{good}", content=body)
    assert r.status_code == 201 and r.json() == {"digest": good, "size": len(body)}
    assert api.head(f"/api/v1/blobs/{good}").status_code == 200
    assert api.get(f"/api/v1/blobs/{good}").content == body
    assert api.post("/api/v1/blobs/missing", json={"digests": [good]}).json() == {"missing": []}
    assert_error_shape(api.get("/api/v1/blobs/sha256:xyz"), 400, "INVALID_ARGUMENT")
    assert_error_shape(api.get(f"/api/v1/blobs/{wrong}"), 404, "NOT_FOUND")


def test_version_registration_checks_blobs(api: TestClient, tmp_path: Path) -> None:
    built = _built(tmp_path, [{"a": i, "b": str(i)} for i in range(10)])
    manifest = built.manifest(message="m")
    body = {"manifest": manifest, "created_by": "me"}
    err = assert_error_shape(api.post("/api/v1/datasets/t/versions", json=body), 400)
    assert err["details"]["missing"] == [manifest["storage"]["data"]["digest"]]
    assert_error_shape(api.get("/api/v1/datasets/t"), 404, "NOT_FOUND")  # nothing stored
    blob = built.blobs[0]
    assert (
        api.put(f"/api/v1/blobs/{blob.digest}", content=blob.path.read_bytes()).status_code == 201
    )
    lying = {**body, "manifest": {**manifest, "row_count": 11}}
    assert (
        "row count"
        in assert_error_shape(api.post("/api/v1/datasets/t/versions", json=lying), 400)["message"]
    )
    extra = {**body, "manifest": {**manifest, "surprise": 1}}
    assert_error_shape(api.post("/api/v1/datasets/t/versions", json=extra), 400, "INVALID_ARGUMENT")
    r = api.post("/api/v1/datasets/t/versions", json=body)
    assert r.status_code == 201 and r.json()["created"] is True
    v = r.json()["version"]
    assert (v["version"], v["row_count"], v["created_by"]) == (1, 10, "me")
    again = api.post("/api/v1/datasets/t/versions", json=body)
    assert again.status_code == 200 and again.json()["version"]["id"] == v["id"]
    other_kind = {**body, "manifest": {**manifest, "kind": "chat"}}
    assert_error_shape(api.post("/api/v1/datasets/t/versions", json=other_kind), 409, "CONFLICT")
    found = api.get(
        "/api/v1/datasets/t/versions", params={"content_digest": manifest["content_digest"]}
    )
    assert [x["id"] for x in found.json()["versions"]] == [v["id"]]
    assert api.get("/api/v1/datasets/t/versions/latest").json()["id"] == v["id"]
    assert api.get("/api/v1/dataset-versions/t@1/rows", params={"limit": 3}).json()["total"] == 10
    built.cleanup()


@pytest.mark.parametrize(
    ("method", "url", "kw", "status", "code"),
    [
        ("GET", "/api/v1/dataset-versions/nope@1", {}, 404, "NOT_FOUND"),
        ("GET", "/api/v1/dataset-versions/bad name@1", {}, 400, "INVALID_ARGUMENT"),
        ("GET", "/api/v1/dataset-versions/x@one", {}, 400, "INVALID_ARGUMENT"),
        ("GET", "/api/v1/datasets/x/versions/one", {}, 400, "INVALID_ARGUMENT"),
        (
            "GET",
            "/api/v1/dataset-versions/x@1/rows",
            {"params": {"limit": 10_001}},
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "POST",
            "/api/v1/datasets",
            {"json": {"name": "a", "kind": "video"}},
            400,
            "INVALID_ARGUMENT",
        ),
        ("POST", "/api/v1/datasets", {"json": {"name": "a b"}}, 400, "INVALID_ARGUMENT"),
        ("PATCH", "/api/v1/dataset-versions/x@1", {"json": {}}, 405, "METHOD_NOT_ALLOWED"),
        (
            "POST",
            "/api/v1/runs/" + "0" * 32 + "/inputs",
            {"json": {"dataset_version": "x"}},
            404,
            "NOT_FOUND",
        ),
        (
            "POST",
            "/api/v1/dataset-versions/x@1/splits",
            {"json": {"fractions": {}}},
            400,
            "INVALID_ARGUMENT",
        ),
    ],
)
def test_error_shape(
    api: TestClient, method: str, url: str, kw: dict[str, Any], status: int, code: str
) -> None:
    assert_error_shape(api.request(method, url, **kw), status, code)


# ---------------------------------------------------------------- CLI


def test_cli(home: Path, tmp_path: Path) -> None:
    from opsloop.datasets.cli import app

    csv = tmp_path / "p.csv"
    csv.write_text("id,age,city\n" + "".join(f"{i},{20 + i % 40},c{i % 4}\n" for i in range(100)))
    rules = tmp_path / "rules.yaml"
    rules.write_text("columns:\n  age: {max: 50}\n")
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, [*args, "--home", str(home)], env={"COLUMNS": "200"})

    r = run("create", "people", str(csv), "-m", "first")
    assert r.exit_code == 0, r.output
    assert "people@1" in r.output and "100 rows" in r.output
    r = run("create", "people", str(csv), "--rules", str(rules))
    assert (
        r.exit_code == 1
        and "DATASET_VALIDATION_FAILED" in r.output
        and "nothing was stored" in r.output
    )
    r = run(
        "create",
        "people",
        str(csv),
        "--rules",
        str(rules),
        "--on-error",
        "flag",
        "--type",
        "age=float",
    )
    assert r.exit_code == 0 and "people@2" in r.output and "flagged" in r.output
    assert "max(age)" in r.output or "range(age)" in r.output
    r = run("versions", "people")
    assert r.exit_code == 0 and "flagged" in r.output and "first" in r.output
    r = run("show", "people@1", "--profile", "--sample", "--validation")
    assert (
        r.exit_code == 0
        and "Profile" in r.output
        and "Sample" in r.output
        and "No validation" in r.output
    )
    shown = json.loads(run("show", "people@2", "--json").output)
    assert shown["status"] == "flagged" and shown["validation"]["total_violations"] == 18
    r = run("diff", "people@1", "people@2", "--key", "id")
    assert r.exit_code == 0 and "age: int64 → double" in r.output
    r = run(
        "split",
        "people@1",
        "--fractions",
        "train=0.8,test=0.2",
        "--seed",
        "1",
        "--stratify",
        "city",
    )
    assert r.exit_code == 0 and "people.train@1" in r.output and "80 rows" in r.output
    listed = json.loads(run("list", "--json").output)
    assert sorted(d["name"] for d in listed) == ["people", "people.test", "people.train"]
    r = run("lineage", "people@1")
    assert r.exit_code == 0 and "people.train@1" in r.output
    r = run("show", "nope@1")
    assert r.exit_code == 1 and "NOT_FOUND" in r.output
    r = run("split", "people@1", "--fractions", "train:0.8")
    assert r.exit_code == 1 and "name=fraction" in r.output


# ---------------------------------------------------------------- fluent


def test_fluent_log_input_uses_the_active_run(home: Path) -> None:
    import opsloop.datasets as od
    from opsloop.datasets import _fluent
    from opsloop.errors import InvalidArgument

    opsloop.set_tracking_uri(str(home))
    try:
        v = od.create("people", [{"a": 1}, {"a": 2}], message="fluent")
        assert od.get("people@1").id == v.id and od.load("people").num_rows == 2
        with pytest.raises(InvalidArgument, match="no active run"):
            od.log_input(v)
        with opsloop.start_run() as run:
            od.log_input("people@1", context="eval")
        inputs = _fluent.datasets().run_inputs(run.run_id)
        assert [(i.dataset_name, i.version, i.context) for i in inputs] == [("people", 1, "eval")]
    finally:
        opsloop.set_tracking_uri(None)
