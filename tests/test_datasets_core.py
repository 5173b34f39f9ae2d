"""Datasets contract: the same behaviour embedded and remote, on SQLite and PostgreSQL.

Every test here runs four times (``ds`` is parametrised like tests/test_contract.py).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

import opsloop
from opsloop.datasets import Datasets, Rule, ValidationFailed
from opsloop.errors import Conflict, InvalidArgument, NotFound
from tests.conftest import BackendEnv

pa = pytest.importorskip("pyarrow")


@pytest.fixture
def client(backend: BackendEnv) -> opsloop.Client:
    """The client on each of the four backends (the shared ``backend`` fixture)."""
    return backend.client


@pytest.fixture
def ds(client: opsloop.Client) -> Datasets:
    return Datasets(client)


ROWS = [
    {"id": i, "age": 20 + i % 50, "country": ["FR", "DE", "US"][i % 3], "score": i / 10}
    for i in range(200)
]


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    cols = list(rows[0])
    lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------- content addressing


def test_same_content_same_version_across_formats(ds: Datasets, tmp_path: Path) -> None:
    v1 = ds.create("people", write_csv(tmp_path / "p.csv", ROWS), message="from csv")
    assert (v1.version, v1.row_count, v1.status, v1.message) == (1, 200, "valid", "from csv")
    assert [c.name for c in v1.columns] == ["id", "age", "country", "score"]
    assert [c.type for c in v1.columns] == ["int64", "int64", "string", "double"]
    # Same rows and types from JSONL, from records and from Parquet: the same version.
    v2 = ds.create("people", write_jsonl(tmp_path / "p.jsonl", ROWS), message="other message")
    v3 = ds.create("people", ROWS)
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "p.parquet")
    v4 = ds.create("people", tmp_path / "p.parquet")
    assert v1.id == v2.id == v3.id == v4.id
    assert v1.content_digest == v4.content_digest
    assert ds.get("people@latest").message == "from csv"  # the stored version is unchanged
    assert len(ds.versions("people")) == 1
    # Different content: a new version with the next number.
    v5 = ds.create("people", ROWS[:-1], message="one row less")
    assert (v5.version, v5.row_count) != (1, 200) and v5.id != v1.id
    assert [v.version for v in ds.versions("people")] == [1, 2]
    assert ds.get("people").id == v5.id
    assert ds.get(v1.id).version == 1
    assert ds.get_dataset("people").version_count == 2


def test_versions_are_immutable_and_read_back_exactly(ds: Datasets, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", ROWS)
    v = ds.create("people", path)
    path.write_text("id\n1\n")  # the source changing does not touch the stored version
    table = ds.to_arrow(v)
    assert table.to_pylist() == ROWS
    assert ds.to_arrow("people@1", columns=["id"]).column_names == ["id"]
    assert sum(b.num_rows for b in ds.iter_batches(v, batch_size=64)) == 200
    assert next(ds.iter_rows(v)) == ROWS[0]
    assert ds.head(v, 3) == ROWS[:3]
    sample = ds.sample(v, 5, seed=1)
    assert len(sample) == 5 and all(r in ROWS for r in sample)
    assert ds.sample(v, 5, seed=1) == sample
    page = ds.rows(v, offset=195, limit=10, columns=["id", "country"])
    assert page.total == 200 and [r["id"] for r in page.rows] == [195, 196, 197, 198, 199]
    assert set(page.rows[0]) == {"id", "country"}
    with pytest.raises(InvalidArgument):
        ds.rows(v, columns=["nope"])
    # Profile and sample are stored with the version.
    got = ds.get("people@1")
    assert got.profile["row_count"] == 200 and got.sample["rows"][0] == ROWS[0]
    assert got.validation is None
    with pytest.raises(NotFound):
        ds.get("people@9")
    with pytest.raises(NotFound):
        ds.get("nobody@1")
    with pytest.raises(InvalidArgument):
        ds.get("people@x")


def test_kind_is_fixed_per_dataset(ds: Datasets) -> None:
    ds.create("t", [{"a": 1}])
    with pytest.raises(Conflict):
        ds.create("t", [{"prompt": "p"}], kind="prompt_response")
    with pytest.raises(InvalidArgument):
        ds.create("bad name!", [{"a": 1}])


# ---------------------------------------------------------------- validation


def _nothing_stored(ds: Datasets, name: str) -> None:
    with pytest.raises(NotFound):
        ds.get_dataset(name)


def test_validation_reject_stores_nothing(ds: Datasets) -> None:
    rows = [dict(r) for r in ROWS]
    rows[3]["age"] = -1
    rows[7]["age"] = 500
    rows[9]["country"] = "XX"
    with pytest.raises(ValidationFailed) as ei:
        ds.create(
            "people",
            rows,
            rules={
                "columns": {
                    "age": {"min": 0, "max": 120},
                    "country": {"allowed": ["FR", "DE", "US"]},
                }
            },
        )
    err = ei.value
    assert err.code == "DATASET_VALIDATION_FAILED" and isinstance(err, InvalidArgument)
    by = {r["name"]: r for r in err.report["rules"]}
    assert by["range(age)"]["violations"] == 2
    assert [(e["row"], e["value"]) for e in by["range(age)"]["examples"]] == [(3, -1), (7, 500)]
    assert [(e["row"], e["value"]) for e in by["allowed(country)"]["examples"]] == [(9, "XX")]
    assert err.report["passed"] is False and err.report["total_violations"] == 3
    _nothing_stored(ds, "people")
    assert ds.list() == []


def test_validation_flag_stores_with_report(ds: Datasets) -> None:
    rows = [dict(r) for r in ROWS]
    rows[5]["id"] = 4  # a duplicate id
    rows[6]["country"] = None
    v = ds.create(
        "people",
        rows,
        rules=[Rule.unique("id"), Rule.not_null("country"), Rule.range("score", min=0)],
        on_error="flag",
    )
    assert v.status == "flagged"
    rep = ds.get(v.id).validation
    assert rep is not None and rep["passed"] is False and rep["on_error"] == "flag"
    by = {r["rule"]: r for r in rep["rules"]}
    assert by["unique"]["examples"] == [{"row": 5, "value": 4}]
    assert by["not_null"]["examples"] == [{"row": 6, "value": None}]
    assert by["range"]["violations"] == 0
    # Passing rules store a valid version with the (passed) report.
    ok = ds.create("clean", ROWS, rules=[Rule.unique("id")])
    assert ok.status == "valid" and ok.validation is not None and ok.validation["passed"]


# ---------------------------------------------------------------- splits, diff


def test_split_deterministic_and_stratified(ds: Datasets) -> None:
    v = ds.create("people", ROWS)
    parts = ds.split(v, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=3, stratify="country")
    assert set(parts) == {"train", "val", "test"}
    assert {p.dataset_name for p in parts.values()} == {"people.train", "people.val", "people.test"}
    for name, p in parts.items():
        assert p.parent_version_id == v.id
        assert f"split {name} of people@1" in p.derivation and "seed=3" in p.derivation
    tables = {k: ds.to_arrow(p).to_pylist() for k, p in parts.items()}
    ids = [r["id"] for rows in tables.values() for r in rows]
    assert sorted(ids) == list(range(200))  # disjoint, and together the whole
    # Stratified: each country keeps its 70/15/15 share (counts rounded per country).
    for country in ("FR", "DE", "US"):
        total = sum(r["country"] == country for r in ROWS)
        n_train = sum(r["country"] == country for r in tables["train"])
        assert abs(n_train - 0.7 * total) < 1
    # Rows keep their original order inside a split.
    assert [r["id"] for r in tables["train"]] == sorted(r["id"] for r in tables["train"])
    again = ds.split(
        "people@1", {"train": 0.7, "val": 0.15, "test": 0.15}, seed=3, stratify="country"
    )
    assert {k: p.id for k, p in again.items()} == {k: p.id for k, p in parts.items()}
    other = ds.split("people@1", {"train": 0.7, "val": 0.15, "test": 0.15}, seed=4)
    assert other["train"].id != parts["train"].id and other["train"].version == 2
    assert {c.id for c in ds.children(v)} >= {p.id for p in parts.values()}
    with pytest.raises(InvalidArgument):
        ds.split(v, {"a": 0.5, "b": 0.6})
    with pytest.raises(InvalidArgument):
        ds.split(v, {"a": 1.0}, stratify="nope")


def test_diff_by_key_and_by_content(ds: Datasets) -> None:
    base = ds.create("people", ROWS)
    rows = [dict(r) for r in ROWS if r["id"] not in (0, 1)]  # 2 removed
    rows[10]["age"] = 99  # 1 changed (id 12)
    rows.append({"id": 500, "age": 30, "country": "FR", "score": 1.0})  # 1 added
    new = ds.create("people", rows)
    d = ds.diff(base, new, key="id")
    assert d.rows == {
        "before": 200,
        "after": 199,
        "added": 1,
        "removed": 2,
        "changed": 1,
        "unchanged": 197,
    }
    assert d.examples["added"][0]["values"]["id"] == 500
    assert sorted(e["values"]["id"] for e in d.examples["removed"]) == [0, 1]
    ch = d.examples["changed"][0]
    assert (ch["key"], ch["columns"], ch["before"]["age"], ch["after"]["age"]) == (
        12,
        ["age"],
        32,
        99,
    )
    by_content = ds.diff("people@1", "people@2")
    assert (by_content.rows["added"], by_content.rows["removed"], by_content.rows["changed"]) == (
        2,
        3,
        0,
    )
    # Schema changes: a column added, one removed, one retyped.
    reshaped = [
        {"id": r["id"], "age": float(r["age"]), "country": r["country"], "extra": 1} for r in ROWS
    ]
    third = ds.create("people", reshaped)
    d3 = ds.diff(base, third, key="id")
    assert d3.schema_changes == {
        "added": ["extra"],
        "removed": ["score"],
        "retyped": [{"column": "age", "from": "int64", "to": "double"}],
    }
    with pytest.raises(InvalidArgument):
        ds.diff(base, third, key="country")  # not unique


# ---------------------------------------------------------------- lineage


def test_lineage_both_ways(client: opsloop.Client, ds: Datasets) -> None:
    v1 = ds.create("people", ROWS)
    v2 = ds.create("people", ROWS[:100])
    exp = client.create_experiment("lineage")
    r1 = client.create_run(exp.id, name="train-a")
    r2 = client.create_run(exp.id, name="train-b")
    ds.log_input(r1.id, v1, context="train")
    ds.log_input(r1.id, "people@2", context="eval")
    ds.log_input(r1.id, "people@2", context="eval")  # again: no duplicate
    ds.log_input(r2.id, v1.id)
    assert [(i.dataset_name, i.version, i.context) for i in ds.run_inputs(r1.id)] == [
        ("people", 1, "train"),
        ("people", 2, "eval"),
    ]
    runs = ds.version_runs("people@1")
    assert {(r.run_id, r.run_name, r.context) for r in runs} == {
        (r1.id, "train-a", "train"),
        (r2.id, "train-b", "train"),
    }
    assert [r.run_id for r in ds.version_runs(v2)] == [r1.id]
    with pytest.raises(NotFound):
        ds.log_input("0" * 32, v1)
    with pytest.raises(InvalidArgument):
        ds.log_input(r1.id, v1, context="bad context!")
    client.delete_run(r2.id)
    assert [r.run_id for r in ds.version_runs(v1)] == [r1.id]
    assert len(ds.version_runs(v1, include_deleted=True)) == 2


# ---------------------------------------------------------------- LLM kinds


def test_prompt_response_and_chat(ds: Datasets) -> None:
    v = ds.create(
        "qa",
        [
            {"prompt": "2+2?", "response": "4", "reference": "4", "metadata": {"src": "a", "n": 1}},
            {"prompt": "capital of France?", "response": None, "metadata": None},
        ],
        kind="prompt_response",
    )
    assert v.kind == "prompt_response"
    rows = ds.to_arrow(v).to_pylist()
    assert json.loads(rows[0]["metadata"]) == {"n": 1, "src": "a"} and rows[1]["metadata"] is None
    with pytest.raises(InvalidArgument) as ei:
        ds.create("qa", [{"prompt": "a"}, {"prompt": None}], kind="prompt_response")
    assert ei.value.details["errors"][0]["row"] == 1
    chat = [
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
            ]
        },
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]},
    ]
    c = ds.create("chats", chat, kind="chat")
    assert ds.to_arrow(c).to_pylist() == chat
    bad = [
        *chat,
        {"messages": [{"role": "user", "content": "q"}, {"role": "wizard", "content": "z"}]},
    ]
    with pytest.raises(InvalidArgument) as ei:
        ds.create("chats", bad)
    err = ei.value.details["errors"][0]
    assert (err["row"], err["message_index"]) == (2, 1) and "wizard" in err["message"]
    with pytest.raises(InvalidArgument):
        ds.create("chats", [{"messages": []}])
    assert len(ds.versions("chats")) == 1


def test_documents_collection(ds: Datasets, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide.md").write_text(
        "# Guide\n\nIntro.\n\n## Install\n\n" + "word " * 60 + "\n\n```\n# not a heading\n```\n\n"
        "### From source\n\nClone it.\n"
    )
    (docs / "sub" / "notes.txt").write_text("plain notes\n")
    (docs / "image.png").write_bytes(b"\x89PNG")  # not a text file: skipped in a folder
    v = ds.create("handbook", docs, chunking={"size": 120, "overlap": 20}, message="v1")
    assert v.kind == "documents" and v.row_count == 2
    assert sorted(f["path"] for f in v.storage["files"]) == ["guide.md", "sub/notes.txt"]
    chunks = ds.chunks(v).to_pylist()
    texts = {d["path"]: d["text"] for d in ds.to_arrow(v).to_pylist()}
    for ch in chunks:
        assert texts[ch["source"]][ch["start"] : ch["end"]] == ch["text"]
        assert len(ch["text"]) <= 120
    paths = [tuple(c["heading_path"]) for c in chunks if c["source"] == "guide.md"]
    assert paths[0] == ("Guide",) and ("Guide", "Install") in paths
    assert ("Guide", "Install", "From source") in paths
    assert not any("not a heading" in p for hp in paths for p in hp)
    install = [c for c in chunks if tuple(c["heading_path"]) == ("Guide", "Install")]
    assert len(install) >= 3
    for a, b in itertools.pairwise(install):
        assert 0 < a["end"] - b["start"] <= 20  # consecutive windows overlap
    assert ds.create("handbook", docs, chunking={"size": 120, "overlap": 20}).id == v.id
    v2 = ds.create("handbook", docs, chunking={"size": 400, "overlap": 0})
    assert v2.version == 2  # other chunking, other version
    page = ds.rows(v, table="chunks", limit=2)
    assert page.total == len(chunks) and page.rows[0]["chunk_id"] == chunks[0]["chunk_id"]


# ---------------------------------------------------------------- bad input


def test_bad_inputs_store_nothing(ds: Datasets, tmp_path: Path) -> None:
    (tmp_path / "a.xlsx").write_bytes(b"PK")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5\n")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": 2\n')
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,b\n")
    cases = {
        "a.xlsx": "cannot tell the format",
        "bad.csv": "malformed CSV",
        "bad.jsonl": "line 2",
        "empty.csv": "",
        "header.csv": "no rows",
    }
    for name, words in cases.items():
        with pytest.raises(InvalidArgument) as ei:
            ds.create("bad", tmp_path / name)
        assert words in ei.value.message, (name, ei.value.message)
    for data in ([], {"a": []}, [1, 2], [{"a": 1}, {"a": "x"}], {"a": [1], "b": [1, 2]}):
        with pytest.raises(InvalidArgument):
            ds.create("bad", data)
    with pytest.raises(InvalidArgument):
        ds.create("bad", tmp_path / "missing.csv")
    with pytest.raises(InvalidArgument):
        ds.create("bad", [{"a": 1}], on_error="ignore")
    _nothing_stored(ds, "bad")
    assert Counter(d.name for d in ds.list()) == Counter()
