"""Datasets internals against independent computations: profile numbers, digests,
rules, readers' type fallback, chunking and split allocation."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.datasets import ChunkingConfig, Datasets, Rule, ValidationFailed, load_rules
from opsloop.errors import InvalidArgument

pa = pytest.importorskip("pyarrow")
np = pytest.importorskip("numpy")


@pytest.fixture
def ds(home: Path) -> Any:
    c = opsloop.Client(home=home)
    yield Datasets(c)
    c.close()


def _col(profile: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in profile["columns"] if c["name"] == name)


# ---------------------------------------------------------------- profile


def test_profile_matches_independent_numbers(ds: Any) -> None:
    rng = np.random.default_rng(7)
    n = 5000
    ints = rng.integers(-1000, 1000, n).tolist()
    floats = rng.normal(3.0, 2.0, n).tolist()
    for i in range(0, n, 97):
        floats[i] = None
    cats = rng.choice(["red", "green", "blue", "violet"], n, p=[0.5, 0.3, 0.15, 0.05]).tolist()
    texts = ["x" * int(k) for k in rng.integers(0, 40, n)]
    rows = [
        {"i": a, "f": b, "cat": c, "text": t, "flag": bool(a % 2)}
        for a, b, c, t in zip(ints, floats, cats, texts, strict=True)
    ]
    v = ds.create("prof", rows)
    prof = v.profile
    assert prof["row_count"] == n

    pi = _col(prof, "i")
    assert (pi["min"], pi["max"], pi["nulls"], pi["count"]) == (min(ints), max(ints), 0, n)
    assert pi["mean"] == pytest.approx(statistics.fmean(ints))
    assert pi["std"] == pytest.approx(statistics.stdev(ints))
    assert pi["quantiles_exact"] is True
    for name, q in (("p5", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p95", 0.95)):
        assert pi["quantiles"][name] == pytest.approx(float(np.quantile(ints, q)))
    assert pi["distinct"] == len(set(ints)) and pi["distinct_exact"] is True

    present = [x for x in floats if x is not None]
    pf = _col(prof, "f")
    assert pf["nulls"] == n - len(present)
    assert pf["null_fraction"] == pytest.approx((n - len(present)) / n)
    assert pf["mean"] == pytest.approx(statistics.fmean(present))
    assert pf["std"] == pytest.approx(statistics.stdev(present))
    assert pf["quantiles"]["p50"] == pytest.approx(statistics.median(present))
    assert (pf["min"], pf["max"]) == (min(present), max(present))

    pc_ = _col(prof, "cat")
    expected = Counter(cats).most_common()
    assert [(t["value"], t["count"]) for t in pc_["top"]] == expected
    assert pc_["distinct"] == 4 and pc_["top_exact"] is True
    lengths = [len(t) for t in texts]
    pt = _col(prof, "text")
    assert pt["text_length"]["min"] == min(lengths) and pt["text_length"]["max"] == max(lengths)
    assert pt["text_length"]["mean"] == pytest.approx(statistics.fmean(lengths))
    assert pt["distinct"] == len(set(texts))
    pb = _col(prof, "flag")
    assert {t["value"]: t["count"] for t in pb["top"]} == dict(Counter(a % 2 == 1 for a in ints))

    # Sample: the first 20 rows, then 5 random ones (seeded: the same every time).
    assert v.sample["rows"][:20] == rows[:20] and v.sample["row_indices"][:20] == list(range(20))
    extra = v.sample["row_indices"][20:]
    assert len(extra) == 5 and all(i >= 20 for i in extra) and extra == sorted(extra)
    assert [rows[i]["i"] for i in extra] == [r["i"] for r in v.sample["rows"][20:]]


def test_profile_sketches_beyond_exact_limits(ds: Any) -> None:
    from opsloop.datasets import _profile as P

    n = 150_000  # above the reservoir (100k) and the distinct sketch (2048)
    rng = np.random.default_rng(1)
    x = rng.exponential(5.0, n)
    ids = np.arange(n)
    v = ds.create("big", {"x": x, "id": ids, "k": ids % 5000})
    px = _col(v.profile, "x")
    assert px["quantiles_exact"] is False and n > P.RESERVOIR
    for name, q in (("p5", 0.05), ("p50", 0.5), ("p95", 0.95)):
        # rank error of the estimate, not value error: where does it fall among the data?
        rank = float(np.mean(x <= px["quantiles"][name]))
        assert abs(rank - q) < 0.01, (name, rank)
    assert px["mean"] == pytest.approx(float(x.mean())) and px["std"] == pytest.approx(
        float(x.std(ddof=1))
    )
    pid = _col(v.profile, "id")
    assert pid["distinct_exact"] is False and abs(pid["distinct"] / n - 1) < 0.08
    assert pid["top"] is None  # every value unique: top values not tracked
    pk = _col(v.profile, "k")
    assert abs(pk["distinct"] / 5000 - 1) < 0.08
    assert all(t["count"] == 30 for t in pk["top"])


# ---------------------------------------------------------------- digest


def test_digest_ignores_batching_and_input_widths() -> None:
    from opsloop.datasets._arrow import canonical_schema, to_canonical
    from opsloop.datasets._digest import ContentHasher

    t = pa.table(
        {
            "a": pa.array([1, None, 3, 4, 5], pa.int32()),
            "s": pa.array(["x", None, "", "yy", "z"], pa.large_string()),
            "f": pa.array([1.5, float("nan"), None, -0.0, 2.0], pa.float32()),
            "l": pa.array([[1], None, [], [2, 3], [4]]),
        }
    )
    schema = canonical_schema(t.schema)

    def digest(batches: list[Any]) -> str:
        h = ContentHasher(schema)
        for b in batches:
            h.update(to_canonical(b, schema))
        return h.digest()

    whole = digest(t.to_batches())
    assert digest(t.to_batches(max_chunksize=2)) == whole
    assert digest([t.slice(0, 1).to_batches()[0], t.slice(1).to_batches()[0]]) == whole
    changed = t.set_column(1, "s", pa.array(["x", None, None, "yy", "z"]))
    assert digest(changed.to_batches()) != whole  # "" and null differ
    swapped = t.set_column(1, "s", pa.array(["x", None, "", "y", "yz"]))
    assert digest(swapped.to_batches()) != whole  # same bytes, other boundaries


def test_type_fallback_when_later_block_disagrees(ds: Any, tmp_path: Path) -> None:
    from opsloop.datasets._readers import CsvSource, JsonlSource

    n = 3000
    rows = [{"a": i, "b": f"t{i}"} for i in range(n)]
    rows[-1]["a"] = "oops"  # far past the first block: Arrow inferred int64 from that block
    csv = tmp_path / "late.csv"
    csv.write_text("a,b\n" + "".join(f"{r['a']},{r['b']}\n" for r in rows))
    jsonl = tmp_path / "late.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]) + '{"a": 3.5, "b": "t"}\n')
    v = ds.create("late", CsvSource(csv, block_size=4096))
    assert [c.type for c in v.columns] == ["string", "string"]
    assert ds.to_arrow(v).column("a")[n - 1].as_py() == "oops"
    j = ds.create("late_json", JsonlSource(jsonl, block_size=4096))
    assert j.columns[0].type == "double" and j.row_count == n
    # A row longer than a block: the reader grows its blocks and carries on.
    big = tmp_path / "big.csv"
    big.write_text("a,b\n1," + "x" * 50_000 + "\n2,y\n")
    assert ds.create("big", CsvSource(big, block_size=4096)).row_count == 2
    # Forcing a type keeps zeros in codes.
    codes = tmp_path / "codes.csv"
    codes.write_text("zip,n\n01234,1\n00042,2\n")
    z = ds.create("zips", codes, column_types={"zip": "string"})
    assert ds.to_arrow(z).column("zip").to_pylist() == ["01234", "00042"]


# ---------------------------------------------------------------- rules


def test_every_rule_kind(ds: Any) -> None:
    rows = [
        {"id": 1, "age": "31", "email": "a@x.org", "tier": "gold", "score": 0.5},
        {"id": 2, "age": "abc", "email": "nope", "tier": "gold", "score": 1.5},
        {"id": 2, "age": "40", "email": "b@y.org", "tier": "tin", "score": None},
        {"id": 4, "age": None, "email": None, "tier": "silver", "score": float("nan")},
    ]
    rules = [
        Rule.type("age", "int"),
        Rule.regex("email", r"[^@]+@[^@]+\.[a-z]+"),
        Rule.unique("id"),
        Rule.allowed("tier", ["gold", "silver"]),
        Rule.range("score", min=0, max=1),
        Rule.not_null("score"),
        Rule.type("score", "string"),
        Rule.custom("score below id", lambda b: pa.compute.less(b.column("score"), b.column("id"))),
        Rule.custom("even id", lambda row: row["id"] % 2 == 0, per="row"),
        Rule.not_null("missing_col"),
    ]
    v = ds.create("r", rows, rules=rules, on_error="flag")
    by = {r["name"]: r for r in v.validation["rules"]}
    rows_of = {name: [e["row"] for e in r["examples"]] for name, r in by.items()}
    assert rows_of["type(age)"] == [1]
    assert rows_of["regex(email)"] == [1]
    assert rows_of["unique(id)"] == [2]
    assert rows_of["allowed(tier)"] == [2]
    assert rows_of["range(score)"] == [1, 3]  # above max, and NaN
    assert rows_of["not_null(score)"] == [2]
    assert by["type(score)"]["message"] == "column 'score' has type double, expected string"
    assert rows_of["score below id"] == [2, 3]  # null comparisons fail the check
    assert rows_of["even id"] == [0]
    assert by["not_null(missing_col)"]["message"] == "column 'missing_col' is missing"
    assert v.validation["rows_checked"] == 4
    with pytest.raises(InvalidArgument, match="raised ZeroDivisionError"):
        ds.create("r2", rows, rules=[Rule.custom("boom", lambda row: 1 / 0, per="row")])
    with pytest.raises(InvalidArgument, match="returned 1 flags for 4 rows"):
        ds.create("r2", rows, rules=[Rule.custom("short", lambda b: [True])])


def test_examples_are_capped_but_counts_are_not(ds: Any, home: Path) -> None:
    rows = [{"x": -i} for i in range(1, 101)]
    with pytest.raises(ValidationFailed) as ei:
        ds.create("cap", rows, rules=[Rule.range("x", min=0)])
    rule = ei.value.report["rules"][0]
    assert rule["violations"] == 100 and len(rule["examples"]) == 20
    assert [e["row"] for e in rule["examples"]] == list(range(20))
    # Rejected: no blob in the store, no work files left behind.
    assert not [p for p in (home / "artifacts").rglob("*") if p.is_file()]
    assert not [p for p in (home / "cache").rglob("*") if p.is_file()]


def test_rules_from_yaml_and_json(tmp_path: Path) -> None:
    y = tmp_path / "rules.yaml"
    y.write_text(
        "columns:\n  age: {type: int, min: 0, max: 130, not_null: true}\n"
        "  tier: {allowed: [gold, silver]}\n"
        "rules:\n  - {rule: regex, column: email, pattern: '.+@.+'}\n  - {rule: unique, column: id}\n"
    )
    rules = load_rules(y)
    assert [(r.kind, r.column) for r in rules] == [
        ("type", "age"),
        ("range", "age"),
        ("not_null", "age"),
        ("allowed", "tier"),
        ("regex", "email"),
        ("unique", "id"),
    ]
    j = tmp_path / "rules.json"
    j.write_text(json.dumps({"columns": {"a": {"min": 1}}}))
    assert load_rules(j)[0].params == {"min": 1, "max": None}
    bad = [
        {"columns": {"a": {"minimum": 1}}},
        {"columns": {"a": {"type": "complex"}}},
        {"columns": {"a": {"min": 5, "max": 1}}},
        {"rules": [{"rule": "custom", "column": "a"}]},
        {"rules": [{"rule": "regex", "column": "a", "pattern": "("}]},
        {"rules": [{"rule": "range", "column": "a"}]},
        {"other": 1},
    ]
    for spec in bad:
        with pytest.raises(InvalidArgument):
            load_rules(spec)
    (tmp_path / "broken.yaml").write_text("columns: [unclosed")
    with pytest.raises(InvalidArgument):
        load_rules(tmp_path / "broken.yaml")


# ---------------------------------------------------------------- chunking, splits


def test_markdown_chunking() -> None:
    from opsloop.datasets._chunking import chunk_text, markdown_sections

    text = "pre\n# A\nalpha\n## B\nbeta\n~~~\n# fenced\n~~~\n# C\ngamma\n"
    secs = markdown_sections(text)
    assert [s.heading_path for s in secs] == [(), ("A",), ("A", "B"), ("C",)]
    assert "".join(text[s.start : s.end] for s in secs) == text
    long = "# T\n\n" + " ".join(f"w{i}" for i in range(300))
    chunks = chunk_text(long, ChunkingConfig(unit="tokens", size=50, overlap=10), markdown=True)
    assert all(c.n_tokens <= 50 for c in chunks)
    assert chunks[0].text.startswith("# T")
    first_words, second_words = chunks[0].text.split(), chunks[1].text.split()
    assert first_words[-10:] == second_words[:10]  # 10 tokens of overlap
    assert all(long[c.start : c.end] == c.text for c in chunks)
    plain = chunk_text("x" * 2500, ChunkingConfig(size=1000, overlap=100))
    assert [(c.start, c.end) for c in plain] == [(0, 1000), (900, 1900), (1800, 2500)]
    for bad in ({"size": 0}, {"size": 10, "overlap": 10}, {"unit": "pages"}):
        with pytest.raises(InvalidArgument):
            ChunkingConfig(**bad)


def test_split_allocation_and_determinism(tmp_path: Path) -> None:
    from opsloop.datasets._split import allocate, check_fractions, parse_fractions, split_labels

    assert allocate(10, [0.7, 0.15, 0.15]) == [7, 2, 1]
    assert allocate(3, [0.5, 0.5]) == [2, 1]
    assert sum(allocate(1001, [0.33, 0.33, 0.34])) == 1001
    assert parse_fractions("train=0.8, test=0.2") == {"train": 0.8, "test": 0.2}
    with pytest.raises(InvalidArgument):
        parse_fractions("train:0.8")
    with pytest.raises(InvalidArgument):
        check_fractions({"a": 0.0, "b": 1.0})
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"g": [i % 3 for i in range(1000)]}), path)
    parts = check_fractions({"a": 0.6, "b": 0.4})
    one = split_labels(path, 1000, parts, seed=11)
    assert (one == split_labels(path, 1000, parts, seed=11)).all()
    assert not (one == split_labels(path, 1000, parts, seed=12)).all()
    assert int((one == 0).sum()) == 600
    strat = split_labels(path, 1000, parts, seed=0, stratify="g")
    g = np.arange(1000) % 3
    for k in range(3):
        m = int((g == k).sum())
        assert abs(int(((strat == 0) & (g == k)).sum()) - 0.6 * m) < 1
    # Pinned: splits must not move between versions of opsloop, numpy or machines.
    assert one[:24].tolist() == [
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
        0,
        1,
        0,
        0,
        1,
        1,
        0,
        0,
        1,
        1,
        1,
    ]
    assert math.isclose(float(one.mean()), 0.4)


def test_digest_is_pinned(ds: Any) -> None:
    # The digest format is a contract: stored version ids depend on it. Changing it is a
    # deliberate act (bump DIGEST_FORMAT), never a side effect.
    rows = [{"a": 1, "s": "x", "f": 0.5, "l": [1, 2]}, {"a": None, "s": None, "f": None, "l": None}]
    assert ds.create("pin", rows).content_digest == (
        "sha256:acddbd133de227d752d74b37faf093da0a1d87c244c75400de9f2603b6b9ebd1"
    )


def test_import_is_light_and_public_names_resolve() -> None:
    import subprocess
    import sys

    import opsloop.datasets as od

    code = (
        "import sys, opsloop.datasets, opsloop.datasets.api, opsloop.datasets.cli; "
        "print(sorted(m for m in ('pyarrow', 'pandas', 'numpy', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for name in od.__all__:
        assert getattr(od, name) is not None


def test_to_pandas(ds: Any) -> None:
    pd = pytest.importorskip("pandas")
    v = ds.create("pd", {"a": [1, 2, 3], "b": ["x", None, "z"]})
    df = ds.to_pandas(v)
    assert isinstance(df, pd.DataFrame) and df["a"].tolist() == [1, 2, 3] and len(df) == 3


def test_documents_from_a_list_of_files_token_chunks(ds: Any, tmp_path: Path) -> None:
    a, b = tmp_path / "a.md", tmp_path / "b.txt"
    a.write_text("# A\n\n" + " ".join(f"t{i}" for i in range(100)))
    b.write_text("short")
    v = ds.create("docs", [a, b], chunking=ChunkingConfig(unit="tokens", size=30, overlap=5))
    assert v.kind == "documents" and v.row_count == 2
    chunks = ds.chunks(v).to_pylist()
    assert {c["source"] for c in chunks} == {"a.md", "b.txt"}
    assert max(c["n_tokens"] for c in chunks) == 30
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InvalidArgument, match="not UTF-8"):
        ds.create("docs2", [bad])
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(b"\x89PNG")
    with pytest.raises(InvalidArgument, match="no text or Markdown"):
        ds.create("docs3", tmp_path / "pics")
