"""Foundation-model selection: ranking logic on fixed leaderboards, input errors, and real runs.

The fast tests pin the Pareto front, constraint checks and the
recommendation on hand-made leaderboards, and run whole selections against
real HTTP endpoints (a small OpenAI-compatible server written here, standing
in for a remote vendor: a user never runs it). The slow test runs the two
bundled LLMs and a real ``opsloop serve`` endpoint on four tiny QA rows and
loads the registered winner back.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import opsloop
from opsloop.errors import InvalidArgument, NotFound
from opsloop.selection import (
    Constraints,
    LeaderboardRow,
    pareto_front,
    recommend,
    select_model,
    violations,
)
from opsloop.selection._data import render_template
from opsloop.selection._rank import bootstrap_ci, rank
from opsloop.selection._types import check_objectives
from opsloop.settings import Settings

QA = [
    {"question": "What is the capital of France?", "answer": "Paris"},
    {"question": "What colour is the sky on a clear day?", "answer": "blue"},
    {"question": "How many legs does a spider have?", "answer": "eight"},
    {"question": "What is 2 + 2?", "answer": "4"},
]


def row(
    name: str, q: float | None, p95: float | None, cost: float | None, **kw: Any
) -> LeaderboardRow:
    return LeaderboardRow(
        candidate=name,
        provider=kw.pop("provider", "opsloop-local"),
        model=kw.pop("model", name),
        quality=q,
        p95_latency_ms=p95,
        cost_per_1k_usd=cost,
        examples=kw.pop("examples", 10),
        **kw,
    )


# ---------------------------------------------------------------- ranking logic

OBJ3 = {"quality": "maximize", "p95_latency_ms": "minimize", "cost_per_1k_usd": "minimize"}


def test_pareto_front_on_a_fixed_leaderboard() -> None:
    rows = [
        row("a", 0.9, 800, 2.0),  # best quality
        row("b", 0.7, 100, 0.0),  # fastest and free
        row("c", 0.7, 300, 0.0),  # dominated by b
        row("d", 0.8, 500, 1.0),  # a trade-off
        row("e", 0.6, 900, 3.0),  # dominated by everyone
        row("f", 0.7, 100, 0.0),  # identical to b: ties are kept
    ]
    assert pareto_front(rows, OBJ3) == ["a", "b", "d", "f"]
    assert pareto_front(rows, {"quality": "maximize"}) == ["a"]
    assert pareto_front(rows, {"p95_latency_ms": "minimize", "cost_per_1k_usd": "min"}) == [
        "b",
        "f",
    ]


def test_unknown_values_are_never_optimistic_on_the_front() -> None:
    rows = [
        row("priced", 0.5, 100, 1.0),
        row("unpriced", 0.5, 100, None),  # unknown cost counts as infinitely expensive
        row("failed", None, None, None, errors=10),
        row("remote", 0.5, 100, 1.0, provider="openai", memory_mb=None),
        row("big", 0.5, 100, 1.0, memory_mb=900.0),
    ]
    assert pareto_front(rows, OBJ3) == ["priced", "remote", "big"]
    # A remote endpoint's memory counts as 0: it beats the local one that needs 900 MB.
    mem = {"quality": "max", "memory_mb": "min"}
    assert pareto_front(rows, check_objectives(mem)) == ["priced", "unpriced", "remote"]


def test_constraints_name_what_each_candidate_broke() -> None:
    c = Constraints(
        max_p95_latency_ms=500, max_cost_per_1k_usd=1.0, max_memory_mb=600, min_quality=0.6
    )
    assert violations(row("ok", 0.7, 400, 0.5, memory_mb=500.0), c) == []
    assert violations(row("slow", 0.7, 501, 0.5), c) == [
        "p95 latency 501 ms > 500 ms (max_p95_latency_ms)"
    ]
    assert violations(row("all", 0.5, 900, 2.0, memory_mb=700.0), c) == [
        "quality 0.5 < 0.6 (min_quality)",
        "p95 latency 900 ms > 500 ms (max_p95_latency_ms)",
        "cost $2 per 1k requests > $1 (max_cost_per_1k_usd)",
        "memory 700 MB > 600 MB (max_memory_mb)",
    ]
    assert violations(row("nop", 0.9, 100, None, model="mystery"), c) == [
        "cost unknown: no price for model 'mystery' (max_cost_per_1k_usd)"
    ]
    assert violations(row("dead", None, None, None, errors=10), c) == [
        "every request failed (10 of 10)"
    ]
    # Without limits only total failure disqualifies.
    assert violations(row("nop", 0.1, 1e9, None), Constraints()) == []


def test_recommendation_best_quality_meeting_constraints_with_tie_breaks() -> None:
    rows = [
        row("fast-tie", 0.8, 200, 0.5),
        row("slow-tie", 0.8, 300, 0.1),
        row("cheap-tie", 0.8, 200, 0.2),
        row("best-but-slow", 0.95, 3000, 0.0),
        row("bad", 0.3, 50, 0.0),
    ]
    rec = recommend(rows, Constraints(max_p95_latency_ms=2000))
    # Same quality: lower p95 first (200 < 300), then lower cost (0.2 < 0.5).
    assert rec.candidate == "cheap-tie"
    assert rec.rejected == {"best-but-slow": ["p95 latency 3000 ms > 2000 ms (max_p95_latency_ms)"]}
    assert rec.reason.startswith(
        "cheap-tie has the best quality (0.8) of the 4 candidate(s) meeting the constraints "
        "(max_p95_latency_ms=2000); tied on quality with fast-tie, slow-tie"
    )
    assert recommend(rows, Constraints()).candidate == "best-but-slow"
    none = recommend(rows, Constraints(min_quality=0.99))
    assert none.candidate is None and set(none.rejected) == {r.candidate for r in rows}
    assert none.reason == "no candidate meets the constraints (min_quality=0.99)"


def test_rank_sorts_marks_the_front_and_fills_violations() -> None:
    rows = [row("b", 0.5, 100, 0.0), row("a", 0.9, 900, 0.0), row("c", 0.5, 200, 0.0)]
    ordered, rec = rank(rows, OBJ3, Constraints(max_p95_latency_ms=500))
    assert [r.candidate for r in ordered] == ["a", "b", "c"]
    assert [r.pareto for r in ordered] == [True, True, False]
    assert ordered[0].violations == ["p95 latency 900 ms > 500 ms (max_p95_latency_ms)"]
    assert rec.candidate == "b"


def test_bootstrap_ci_is_seeded_and_brackets_the_mean() -> None:
    vals = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    lo, hi = bootstrap_ci(vals) or (0.0, 0.0)
    assert lo <= sum(vals) / len(vals) <= hi and 0.0 <= lo < hi <= 1.0
    assert bootstrap_ci(vals) == (lo, hi)
    assert bootstrap_ci([1.0, 1.0]) == (1.0, 1.0)
    assert bootstrap_ci([]) is None


def test_bad_constraints_objectives_and_templates() -> None:
    with pytest.raises(InvalidArgument, match="max_p95_latency_ms must be at least 0"):
        Constraints(max_p95_latency_ms=-1)
    with pytest.raises(InvalidArgument, match="finite number"):
        Constraints.coerce({"max_cost_per_1k_usd": "cheap"})
    with pytest.raises(InvalidArgument, match=r"unknown constraint\(s\) \['max_gpu'\]"):
        Constraints.coerce({"max_gpu": 1})
    with pytest.raises(InvalidArgument, match="unknown objective 'speed'"):
        check_objectives({"speed": "max"})
    with pytest.raises(InvalidArgument, match="direction must be 'max' or 'min'"):
        check_objectives({"quality": "up"})
    assert render_template("Q: {{ question }} ({{n}})", {"question": "x", "n": 3}) == "Q: x (3)"
    with pytest.raises(InvalidArgument, match=r"variable\(s\) \['missing'\]"):
        render_template("{{missing}}", {"question": "x"})


# ---------------------------------------------------------------- a real endpoint, fast


class _Vendor(BaseHTTPRequestHandler):
    """A tiny OpenAI-compatible vendor: answers from a fixed table, or fails, as told."""

    answers: dict[str, str] = {}
    fail: bool = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.fail:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "down"}}')
            return
        q = body["messages"][-1]["content"]
        text = self.answers.get(q.removeprefix("Answer briefly: "), "no idea")
        out = {
            "choices": [
                {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
            "model": body["model"],
        }
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a: Any) -> None:
        pass


@contextlib.contextmanager
def vendor_endpoints() -> Iterator[dict[str, str]]:
    """Three endpoints: one that knows every answer, one that knows half, one that is down."""
    good = {r["question"]: r["answer"] for r in QA}
    half = {r["question"]: r["answer"] for r in QA[:2]}
    servers, urls = [], {}
    for name, answers, fail in (("good", good, False), ("half", half, False), ("down", {}, True)):
        handler = type(name, (_Vendor,), {"answers": answers, "fail": fail})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        urls[name] = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        yield urls
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


@pytest.fixture
def vendors() -> Iterator[dict[str, str]]:
    with vendor_endpoints() as urls:
        yield urls


@pytest.fixture
def client(tmp_path: Path) -> Iterator[opsloop.Client]:
    c = opsloop.Client(settings=Settings(home=tmp_path / "home"))
    yield c
    c.close()


def test_selection_over_endpoints_records_runs_and_registers_the_winner(
    client: opsloop.Client, vendors: dict[str, str]
) -> None:
    client.tracing.set_price("gpt-4o-mini", 100.0, 1000.0)  # $0.003 per request: 10 in, 2 out
    ds = client.datasets.create("qa", QA)
    seen: list[tuple[str, int, int]] = []
    cands = [
        f"openai:gpt-4o-mini@{vendors['good']}",
        f"openai:half-model@{vendors['half']}",
        f"openai:gpt-4o@{vendors['down']}",
    ]
    s = select_model(
        cands,
        f"qa@{ds.version}",
        metrics=["exact_match", "token_f1"],
        prompt="Answer briefly: {{question}}",
        max_tokens=8,
        constraints={"max_cost_per_1k_usd": 1.0},
        register_as="qa-endpoint",
        client=client,
        progress=lambda c, done, total: seen.append((c, done, total)),
    )
    good, half, down = (s.leaderboard[c] for c in cands)
    assert [r.candidate for r in s.leaderboard] == cands
    assert good.quality == 1.0 and good.metrics == {"exact_match": 1.0, "token_f1": 1.0}
    assert half.quality == 0.5 and half.quality_ci is not None
    assert good.cost_per_1k_usd == pytest.approx(3.0)  # (10*100 + 2*1000) / 1e6 * 1000
    assert half.cost_per_1k_usd is None  # no price known for half-model
    assert good.memory_mb is None and good.errors == 0 and good.tokens_per_s is not None
    assert good.p50_latency_ms is not None and good.p95_latency_ms >= good.p50_latency_ms  # type: ignore[operator]
    assert down.errors == 4 and down.quality is None and not down.pareto
    # Nothing meets the cost limit: known cost $3 > $1, unknown cost, every request failed.
    assert s.recommendation.candidate is None and s.registered is None
    assert s.recommendation.rejected[cands[1]] == [
        "cost unknown: no price for model 'half-model' (max_cost_per_1k_usd)"
    ]
    assert s.recommendation.rejected[cands[2]] == ["every request failed (4 of 4)"]
    assert (cands[0], 4, 4) in seen and (cands[2], 4, 4) in seen

    # The parent run holds the leaderboard and chart; each candidate is a child run.
    parent = client.get_run(s.run_id or "")
    assert parent.tags["opsloop.role"] == "selection" and parent.status == "FINISHED"
    board = json.loads(client.read_artifact(parent.id, "selection/leaderboard.json"))
    assert [r["candidate"] for r in board["leaderboard"]] == cands
    svg = client.read_artifact(parent.id, "selection/pareto.svg").decode()
    assert svg.startswith("<svg") and svg.count('class="pareto"') == len(s.pareto)
    child = client.get_run(good.run_id or "")
    assert child.parent_run_id == parent.id
    ex = client.read_artifact(child.id, "selection/examples.jsonl").decode().splitlines()
    assert len(ex) == 4 and json.loads(ex[0])["prediction"] == "Paris"
    assert json.loads(ex[0])["messages"][0]["content"] == "Answer briefly: " + QA[0]["question"]
    failed = client.get_run(down.run_id or "")
    assert (
        failed.status == "FINISHED"
        and "503"
        in json.loads(
            client.read_artifact(failed.id, "selection/examples.jsonl").decode().splitlines()[0]
        )["error"]
    )
    inputs = client.datasets.run_inputs(parent.id)
    assert [i.dataset_version_id for i in inputs] == [ds.id]

    # Loosen the limit: the good endpoint wins and is registered as an endpoint model.
    s2 = select_model(
        cands[:2],
        QA,
        prompt="Answer briefly: {{question}}",
        max_tokens=8,
        constraints={"max_cost_per_1k_usd": 5.0},
        register_as="qa-endpoint",
        client=client,
    )
    assert s2.recommendation.candidate == cands[0]
    assert s2.registered is not None and s2.registered_uri == "models:/qa-endpoint/1"
    mv = s2.registered
    assert mv.flavor == "pyfunc" and mv.tags["selection.run_id"] == s2.run_id
    assert mv.tags["selection.quality"] == "1"
    folder = client.registry.download("qa-endpoint", 1, Path(client.settings.home) / "dl")
    files = b"".join((folder / p).read_bytes() for p in mv.files)
    assert vendors["good"].encode() in files and b"api_key_secret" in files
    card = client.registry.get_card("qa-endpoint", 1)
    assert "Chosen by model selection run" in (card.fields.get("evaluation_notes") or "")
    from opsloop.registry import load_model

    lm = load_model("models:/qa-endpoint/1", client=client)
    assert lm.predict([{"prompt": "What is 2 + 2?"}, {"prompt": "Who?"}]) == ["4", "no idea"]

    # Several accepted answers per row: any of them counts.
    alternatives = [{**r, "answer": ["nope", r["answer"]]} for r in QA]
    s3 = select_model(cands[:1], alternatives, prompt="Answer briefly: {{question}}", client=client)
    assert s3.leaderboard[cands[0]].quality == 1.0


def test_bad_input_fails_before_any_run_is_created(
    client: opsloop.Client, vendors: dict[str, str]
) -> None:
    ok = f"openai:m@{vendors['good']}"
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"candidates": []}, InvalidArgument, "non-empty list"),
        ({"candidates": "local:smollm2"}, InvalidArgument, "non-empty list"),
        ({"candidates": ["ollama:x"]}, InvalidArgument, "unknown candidate kind 'ollama'"),
        ({"candidates": ["smollm2"]}, InvalidArgument, "must look like local:NAME"),
        ({"candidates": [ok, ok]}, InvalidArgument, "listed twice"),
        ({"metrics": ["nope"]}, NotFound, "nope"),
        ({"metrics": ["latency_p95"]}, InvalidArgument, "greater is better"),
        ({"max_tokens": 0}, InvalidArgument, "max_tokens must be in 1..4096"),
        ({"warmup": -1}, InvalidArgument, "warmup"),
        ({"data": []}, InvalidArgument, "no rows"),
        (
            {"data": [{"q": "x"}]},
            InvalidArgument,
            r"row 0 has no column\(s\) \['answer', 'question'\]",
        ),
        ({"prompt": "{{nope}}"}, InvalidArgument, r"variable\(s\) \['nope'\]"),
        ({"data": "missing@1"}, NotFound, "missing"),
        ({"register_as": "bad name!"}, InvalidArgument, "name"),
        ({"constraints": {"max_p95_latency_ms": -5}}, InvalidArgument, "at least 0"),
    ]
    for override, exc, match in cases:
        kw: dict[str, Any] = {"candidates": [ok], "data": QA, "client": client, **override}
        with pytest.raises(exc, match=match):
            select_model(kw.pop("candidates"), kw.pop("data"), **kw)
    assert client.search_runs(client.get_or_create_experiment("model-selection").id).runs == []


def test_cli_select_prints_the_leaderboard_and_json(
    tmp_path: Path, vendors: dict[str, str]
) -> None:
    from opsloop.cli._app import app

    rows = tmp_path / "qa.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in QA))
    home = tmp_path / "home"
    base = [
        "--home",
        str(home),
        "select",
        "--candidates",
        f"openai:good@{vendors['good']},openai:half@{vendors['half']}",
        "--dataset",
        "qa",
        "--rows",
        str(rows),
        "--metric",
        "exact_match",
        "--prompt",
        "Answer briefly: {{question}}",
        "--max-tokens",
        "8",
        "--max-p95-ms",
        "60000",
    ]
    r = CliRunner().invoke(app, base, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "Leaderboard" in r.output and "recommended" in r.output
    assert f"openai:good@{vendors['good']}" in r.output
    r = CliRunner().invoke(app, [*base, "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["recommendation"]["candidate"] == f"openai:good@{vendors['good']}"
    assert [x["quality"] for x in data["leaderboard"]] == [1.0, 0.5]
    # The rows were stored as a dataset version and the selection read it.
    with opsloop.Client(settings=Settings(home=home)) as c:
        assert c.datasets.versions("qa")[0].row_count == 4
    bad = CliRunner().invoke(
        app, ["--home", str(home), "select", "--candidates", "x", "--rows", str(rows)]
    )
    assert bad.exit_code == 1 and "error [INVALID_ARGUMENT]" in bad.output


# ---------------------------------------------------------------- real models, slow


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bundled_llms_and_a_served_endpoint_are_ranked_and_the_winner_registered(
    tmp_path: Path, model_cache: Path
) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from opsloop.registry import LoadedCausalLM, Registry, bundled_gguf, load_model
    from tests.test_serving import ThreadServer

    settings = Settings(home=tmp_path / "home", flush_interval_s=60.0)
    client = opsloop.Client(settings=settings)
    reg = Registry(client)
    mv = reg.register(
        "smol-served",
        bundled_gguf("smollm2"),
        flavor="transformers",
        options={"model_id": "SmolLM2-135M-Instruct"},
    )
    reg.set_alias("smol-served", "prod", mv.version)
    endpoint = ""
    try:
        with ThreadServer(
            "models:/smol-served@prod",
            settings,
            cache_dir=model_cache,
            device="cpu",
            poll_interval_s=0,
            max_tokens_limit=64,
        ) as srv:
            srv.wait_ready(600)
            endpoint = f"openai:smol-served@{srv.url}/v1"
            cands = ["local:smollm2", "local:gemma3", endpoint]
            s = select_model(
                cands,
                QA,
                metrics=["token_f1", "exact_match"],
                prompt="Answer in one or two words. {{question}}",
                max_tokens=12,
                constraints={"max_memory_mb": 100_000},
                register_as="qa-chosen",
                client=client,
                cache_dir=model_cache,
            )
            rows = {r.candidate: r for r in s.leaderboard}
            smol, gemma, served = rows["local:smollm2"], rows["local:gemma3"], rows[endpoint]
            print("\n" + json.dumps(s.to_dict()["leaderboard"], indent=1))
            for r in (smol, gemma, served):
                assert r.errors == 0 and r.examples == 4
                assert r.quality is not None and 0.0 <= r.quality <= 1.0
                assert 0 < r.p50_latency_ms <= r.p95_latency_ms  # type: ignore[operator]
                assert r.tokens_per_s is not None and r.tokens_per_s > 0
            # Local models are free and hold their weights in memory: SmolLM2 has 135M
            # parameters, Gemma 3 270M; the endpoint uses no local memory and has no price.
            assert smol.cost_per_1k_usd == 0.0 and gemma.cost_per_1k_usd == 0.0
            assert served.cost_per_1k_usd is None and served.memory_mb is None
            assert smol.memory_mb is not None and smol.memory_mb > 135e6 * 2 / 2**20
            assert gemma.memory_mb is not None and gemma.memory_mb > smol.memory_mb
            # The same model, greedy, behind HTTP: the same answers as in process.
            preds = {}
            for r in (smol, served):
                lines = client.read_artifact(r.run_id or "", "selection/examples.jsonl")
                preds[r.candidate] = [json.loads(x)["prediction"] for x in lines.splitlines()]
            assert preds["local:smollm2"] == preds[endpoint]
            assert smol.quality == served.quality
            assert any("Paris" in p for p in preds["local:smollm2"])
            best = max(r.quality or 0 for r in (smol, gemma, served))
            assert s.recommendation.candidate is not None
            assert rows[s.recommendation.candidate].quality == best
            assert s.registered is not None and s.registered_uri
            loaded = load_model(s.registered_uri, client=client, cache_dir=model_cache)
            out = loaded.predict([{"prompt": "What is the capital of France?"}])
            assert len(out) == 1 and isinstance(out[0], str) and out[0].strip()
            tags = s.registered.tags
            assert tags["selection.run_id"] == s.run_id
            assert tags["selection.candidate"] == s.recommendation.candidate

        # A bundled model as the winner: registered as a transformers GGUF version.
        s2 = select_model(
            ["local:smollm2"],
            QA[:2],
            max_tokens=8,
            warmup=0,
            register_as="smol-chosen",
            client=client,
            cache_dir=model_cache,
        )
        assert s2.registered is not None and s2.registered.flavor == "transformers"
        assert s2.registered.metadata["model_id"] == "SmolLM2-135M-Instruct"
        assert reg.lineage("smol-chosen", 1).run is not None
        lm = load_model("models:/smol-chosen/1", client=client, cache_dir=model_cache)
        assert isinstance(lm, LoadedCausalLM)
        assert "Paris" in lm.predict([{"prompt": "What is the capital of France?"}])[0]
    finally:
        client.close()


def test_registering_a_registry_candidate_moves_an_alias_or_copies_the_files(
    client: opsloop.Client, tmp_path: Path
) -> None:
    from opsloop.registry.flavors import save_pyfunc
    from opsloop.selection._candidates import parse_candidate
    from opsloop.selection._endpoint import ENDPOINT_SIGNATURE
    from opsloop.selection._register import register_choice

    folder = save_pyfunc(
        tmp_path / "m",
        "opsloop.selection._endpoint:EndpointModel",
        config={"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        signature=ENDPOINT_SIGNATURE,
    )
    src = client.registry.register("src", folder)
    client.registry.register("src", folder)  # version 2: the alias must point at version 1
    r = row("models:/src/1", 0.8, 120.0, 0.0, run_id=None)
    kw: dict[str, Any] = {
        "selection_run_id": "run-1",
        "metric": "exact_match",
        "reason": "because",
        "prompt": "{{question}}",
        "cache_dir": tmp_path / "cache",
        "max_tokens": 8,
        "endpoint_secret": None,
    }
    same, uri = register_choice(client, parse_candidate("models:/src/1"), r, name="src", **kw)
    assert uri == "models:/src@selected" and same.version == 1
    assert client.registry.get_version_by_alias("src", "selected").version == 1
    assert len(client.registry.list_versions("src")) == 2  # no new version
    assert same.tags["selection.run_id"] == "run-1" and same.tags["selection.quality"] == "0.8"

    other, uri2 = register_choice(client, parse_candidate("models:/src/1"), r, name="copy", **kw)
    assert uri2 == "models:/copy/1" and other.flavor == "pyfunc"
    assert {p: e.digest for p, e in other.files.items()} == {
        p: e.digest for p, e in src.files.items()
    }
    card = client.registry.get_card("copy", 1)
    assert card.fields["evaluation_notes"].startswith("Chosen by model selection run `run-1`")
    assert "| p50 / p95 latency (ms) | n/a / 120 |" in card.fields["evaluation_notes"]
