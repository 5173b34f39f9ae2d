"""Feedback: score definitions, annotations, traces by score, agreement, training-data export.

Contract tests run on the four backends (embedded/remote x SQLite/PostgreSQL);
agreement is checked against Krippendorff's hand-worked example and against
the ``krippendorff`` package and scikit-learn's ``cohen_kappa_score``; the
served ``POST /v1/feedback`` runs on a real model server; the CLI in-process.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from opsloop import Client
from opsloop.errors import InvalidArgument, NotFound, OpsloopError
from opsloop.feedback import (
    AnnotationKeyConflict,
    NothingToExport,
    ScoreDefinitionConflict,
    ScoreValueInvalid,
    UnknownScore,
    cohen_kappa,
    krippendorff_alpha,
    mask_pii,
    score_filter,
)
from opsloop.settings import Settings
from tests.conftest import BackendEnv, live_server


def _trace(c: Client, name: str, question: str, answer: str, **kw: Any) -> str:
    """A real trace (root span with inputs and outputs, one child span); returns its id."""
    with c.tracing.start_trace(name, inputs={"question": question}, **kw) as root:
        with c.tracing.span("retrieve", "retriever", inputs={"q": question}) as child:
            child.set_output(["doc"])
        root.set_output({"answer": answer})
    c.tracing.flush()
    page = c.tracing.list_traces(name=name)
    assert page.traces, name
    return page.traces[0].id


def _ids(c: Client, flt: str) -> set[str]:
    return {t.id for t in c.tracing.list_traces(filter=flt, limit=200).traces}


def _define_all(c: Client) -> None:
    fb = c.feedback
    fb.define_score("helpful", "numeric", min_value=1, max_value=5, description="1 to 5")
    fb.define_score("tone", "categorical", categories=["polite", "neutral", "rude"])
    fb.define_score("correct", "boolean")
    fb.define_score("note", "text")


# ---------------------------------------------------------------- contract (4 backends)


def test_scores_annotations_and_their_errors(backend: BackendEnv) -> None:
    c = backend.client
    fb = c.feedback
    _define_all(c)
    names = [d.name for d in fb.list_scores()]
    assert names[:4] == ["correct", "helpful", "note", "tone"]
    assert {"thumbs", "comment", "correction", "preference"} <= set(names)
    assert fb.get_score("tone").categories == ["polite", "neutral", "rude"]
    assert fb.get_score("helpful").max_value == 5.0

    tid = _trace(c, "qa", "What is 2+2?", "4")
    detail = c.tracing.get_trace(tid, flat=True)
    span_id = detail.spans[1].span_id

    a1 = fb.annotate("helpful", 4, trace_id=tid, author="ann", comment="good")
    assert (a1.value, a1.kind, a1.target_kind, a1.source) == (4.0, "numeric", "trace", "human")
    fb.annotate("helpful", 2, trace_id=tid, author="bob")
    fb.annotate("tone", "polite", trace_id=tid, span_id=span_id, author="ann")
    fb.annotate("correct", True, session_id="sess-1", author="ann")
    fb.annotate("note", "needs a source", prediction_id="pred-0123abcd", author="ann")
    fb.thumbs(False, trace_id=tid, author="ann")
    fb.annotate("helpful", 5, trace_id=tid, author="judge-1", source="llm_judge")

    # One per (target, score, author): ann scoring again replaces her value, bob's stays.
    again = fb.annotate("helpful", 3, trace_id=tid, author="ann")
    assert again.id == a1.id and again.value == 3.0 and again.comment is None
    on_trace = fb.list(trace_id=tid, name="helpful")
    assert sorted((a.author, a.value) for a in on_trace) == [
        ("ann", 3.0),
        ("bob", 2.0),
        ("judge-1", 5.0),
    ]
    # trace_id also finds annotations on the trace's spans.
    assert {a.target_kind for a in fb.list(trace_id=tid)} == {"trace", "span"}
    assert fb.list(session_id="sess-1")[0].value is True
    assert fb.list(prediction_id="pred-0123abcd")[0].value == "needs a source"

    # An upsert key makes a retry idempotent; reusing it for another annotation is refused.
    k1 = fb.annotate("tone", "rude", trace_id=tid, author="cy", key="retry-1")
    k2 = fb.annotate("tone", "rude", trace_id=tid, author="cy", key="retry-1")
    assert k1.id == k2.id and k2.key == "retry-1"
    with pytest.raises(AnnotationKeyConflict) as ki:
        fb.annotate("tone", "rude", trace_id=tid, author="dee", key="retry-1")
    assert ki.value.code == "ANNOTATION_KEY_CONFLICT"

    before = len(fb.list(limit=1000))
    bad: list[tuple[type[OpsloopError], str, dict[str, Any]]] = [
        (UnknownScore, "UNKNOWN_SCORE", {"name": "nope", "value": 1}),
        (ScoreValueInvalid, "SCORE_VALUE_INVALID", {"name": "helpful", "value": 6}),
        (ScoreValueInvalid, "SCORE_VALUE_INVALID", {"name": "helpful", "value": 0.5}),
        (ScoreValueInvalid, "SCORE_VALUE_INVALID", {"name": "helpful", "value": "high"}),
        (ScoreValueInvalid, "SCORE_VALUE_INVALID", {"name": "tone", "value": "angry"}),
        (ScoreValueInvalid, "SCORE_VALUE_INVALID", {"name": "correct", "value": "maybe"}),
        (ScoreValueInvalid, "SCORE_VALUE_INVALID", {"name": "note", "value": "  "}),
        (ScoreValueInvalid, "SCORE_VALUE_INVALID", {"name": "preference", "value": "a"}),
    ]
    for cls, code, kw in bad:
        with pytest.raises(cls) as ei:
            fb.annotate(kw["name"], kw["value"], trace_id=tid, author="eve")
        assert ei.value.code == code, kw
    with pytest.raises(InvalidArgument):
        fb.annotate("helpful", 3, trace_id="not-hex", author="eve")
    with pytest.raises(InvalidArgument):
        fb.annotate("helpful", 3, trace_id=tid, session_id="s", author="eve")
    with pytest.raises(InvalidArgument):
        fb.annotate("helpful", 3, trace_id=tid, source="crowd", author="eve")
    with pytest.raises(InvalidArgument):
        fb.define_score("x", "numeric", min_value=5, max_value=1)
    with pytest.raises(InvalidArgument):
        fb.define_score("y", "categorical")
    with pytest.raises(InvalidArgument):
        fb.define_score("thumbs", "boolean")
    # Nothing stored was damaged by the refused input.
    assert len(fb.list(limit=1000)) == before
    assert fb.get_score("helpful").max_value == 5.0

    # Redefining: same shape updates the description; another shape is refused once used.
    assert (
        fb.define_score(
            "helpful", "numeric", min_value=1, max_value=5, description="new"
        ).description
        == "new"
    )
    with pytest.raises(ScoreDefinitionConflict) as ci:
        fb.define_score("helpful", "numeric", min_value=0, max_value=10)
    assert ci.value.code == "SCORE_DEFINITION_CONFLICT"
    with pytest.raises(ScoreDefinitionConflict):
        fb.delete_score("helpful")
    fb.define_score("unused", "boolean")
    fb.delete_score("unused")
    with pytest.raises(NotFound):
        fb.get_score("unused")
    fb.delete_annotation(k1.id)
    with pytest.raises(NotFound):
        fb.get_annotation(k1.id)
    # Nothing here makes a training example (a thumbs-down, no correction or preference).
    for kind in ("sft", "preference"):
        with pytest.raises(NothingToExport) as ne:
            fb.export("fb-none", kind)
        assert ne.value.code == "NOTHING_TO_EXPORT"
    with pytest.raises(NotFound):
        c.datasets.get_dataset("fb-none")


def test_traces_filter_by_score_value_source_author_and_missing(backend: BackendEnv) -> None:
    c = backend.client
    fb = c.feedback
    _define_all(c)
    t_good = _trace(c, "good", "q1", "a1")
    t_bad = _trace(c, "bad", "q2", "a2")
    t_none = _trace(c, "none", "q3", "a3")
    t_judge = _trace(c, "judged", "q4", "a4")
    fb.annotate("helpful", 5, trace_id=t_good, author="ann")
    fb.thumbs(True, trace_id=t_good, author="ann")
    fb.annotate("tone", "polite", trace_id=t_good, author="bob")
    fb.annotate("helpful", 1, trace_id=t_bad, author="bob")
    fb.thumbs(False, trace_id=t_bad, author="end-user")
    fb.annotate("tone", "rude", trace_id=t_bad, author="ann")
    fb.annotate("helpful", 2, trace_id=t_judge, author="gpt-judge", source="llm_judge")
    all4 = {t_good, t_bad, t_none, t_judge}

    assert _ids(c, "score.helpful >= 4") == {t_good}
    assert _ids(c, "score.helpful < 3") == {t_bad, t_judge}
    assert _ids(c, "score.helpful.human < 3") == {t_bad}
    assert _ids(c, "score.helpful.llm_judge <= 2") == {t_judge}
    assert _ids(c, 'score.helpful.source = "llm_judge"') == {t_judge}
    assert _ids(c, 'score.helpful.author = "bob"') == {t_bad}
    assert _ids(c, 'score.thumbs = "false"') == {t_bad}
    assert _ids(c, "score.thumbs = 1") == {t_good}
    assert _ids(c, 'score.tone in ("rude", "neutral")') == {t_bad}
    assert _ids(c, "score.helpful is null") == {t_none}
    assert _ids(c, "score.helpful.human is null") == {t_none, t_judge}
    assert _ids(c, "score.thumbs is not null") == {t_good, t_bad}
    assert _ids(c, 'score.helpful >= 1 and name = "good"') == {t_good}
    assert _ids(c, "not score.helpful >= 4") == all4 - {t_good}
    # The SDK's helper builds the same filters; it pages like the trace list.
    assert {t.id for t in fb.search_traces("helpful", min=4).traces} == {t_good}
    assert {t.id for t in fb.search_traces("helpful", missing=True).traces} == {t_none}
    assert {t.id for t in fb.search_traces("thumbs", equals=False).traces} == {t_bad}
    assert {t.id for t in fb.search_traces("helpful", source="llm_judge").traces} == {t_judge}
    assert {t.id for t in fb.search_traces("tone", author="ann").traces} == {t_bad}
    assert score_filter("helpful", min=2, max=4) == "score.helpful >= 2.0 and score.helpful <= 4.0"
    for flt in ("score.helpful.nope > 1", 'score.helpful >= "x" and score.x like 3', "score. > 1"):
        with pytest.raises(InvalidArgument):
            c.tracing.list_traces(filter=flt)


def test_agreement_and_export_to_datasets_with_lineage(backend: BackendEnv) -> None:
    c = backend.client
    fb = c.feedback
    _define_all(c)
    traces = [
        _trace(c, f"t{i}", f"Question {i}: mail me at user{i}@example.com", f"Answer {i}")
        for i in range(4)
    ]
    ann = ["polite", "rude", "neutral", "polite"]
    bob = ["polite", "rude", "polite", "polite"]
    judge = ["polite", "rude", "neutral", "rude"]
    for t, a, b, j in zip(traces, ann, bob, judge, strict=True):
        fb.annotate("tone", a, trace_id=t, author="ann")
        fb.annotate("tone", b, trace_id=t, author="bob")
        fb.annotate("tone", j, trace_id=t, author="judge", source="llm_judge")
    ag = fb.agreement("tone")
    assert ag.annotators == ["ann", "bob"] and ag.items == 4 and ag.level == "nominal"
    assert ag.alpha == pytest.approx(
        krippendorff_alpha([[a, b] for a, b in zip(ann, bob, strict=True)])
    )
    assert ag.pairwise[0].kappa == pytest.approx(cohen_kappa(ann, bob))
    assert ag.pairwise[0].agreement == 0.75
    assert ag.judge is not None
    # Humans agree on items 0, 1, 3 (item 2 is a tie: no consensus); the judge matches 0 and 1.
    assert ag.judge.items == 3 and ag.judge.agreement == pytest.approx(2 / 3)
    with pytest.raises(InvalidArgument):
        fb.agreement("note")

    # SFT: a correction beats acceptance; a thumbs-up accepts the answer as it is.
    fb.thumbs(True, trace_id=traces[0], author="ann")
    fb.thumbs(True, trace_id=traces[1], author="ann")
    fb.correct("Better answer 1, call +1 (555) 123-4567", trace_id=traces[1], author="bob")
    fb.thumbs(False, trace_id=traces[2], author="ann")
    fb.prefer("b", "Answer 3", "Answer 3, with sources", trace_id=traces[3], author="ann")
    sft = fb.export("fb-sft", "sft")
    assert (sft.rows, sft.traces) == (2, 2)
    rows = {r["prompt"]: r for r in c.datasets.rows(sft.ref).rows}
    assert set(rows) == {
        "Question 0: mail me at [EMAIL]",
        "Question 1: mail me at [EMAIL]",
    }
    assert rows["Question 0: mail me at [EMAIL]"]["response"] == "Answer 0"
    r1 = rows["Question 1: mail me at [EMAIL]"]
    assert r1["response"] == "Better answer 1, call [PHONE]" and r1["origin"] == "corrected"
    corr = fb.list(trace_id=traces[1], name="correction")[0]
    assert list(r1["annotation_ids"]) == [corr.id] and list(r1["trace_ids"]) == [traces[1]]
    links = fb.exports(dataset_version_id=sft.dataset_version_id)
    assert {(x.annotation_id, x.trace_id) for x in links} >= {(corr.id, traces[1])}
    assert [x.dataset_version_id for x in fb.exports(annotation_id=corr.id)] == [
        sft.dataset_version_id
    ]

    pref = fb.export("fb-pref", "preference")
    prow = {r["chosen"]: r for r in c.datasets.rows(pref.ref).rows}
    assert prow["Answer 3, with sources"]["rejected"] == "Answer 3"
    assert prow["Better answer 1, call [PHONE]"]["rejected"] == "Answer 1"
    assert {x.trace_id for x in fb.exports(dataset_version_id=pref.dataset_version_id)} == {
        traces[1],
        traces[3],
    }


def test_annotation_queues_fill_claim_lock_and_progress(backend: BackendEnv) -> None:
    import time

    from opsloop.errors import AlreadyExists, Conflict

    c = backend.client
    fb = c.feedback
    _define_all(c)
    ts = [_trace(c, f"q{i}", f"question {i}", f"answer {i}") for i in range(6)]
    for t in ts[:3]:
        fb.thumbs(False, trace_id=t, author="end-user")
    fb.annotate("helpful", 1, trace_id=ts[3], author="judge", source="llm_judge")
    fb.annotate("helpful", 5, trace_id=ts[4], author="judge", source="llm_judge")
    rule = 'score.thumbs = "false" or score.helpful.llm_judge < 3'
    q = fb.create_queue("triage", filter=rule, scores=["helpful", "tone"], lock_ttl_s=3600)
    assert (q.scores, q.sample_ratio, q.created_by) == (["helpful", "tone"], 1.0, c.context.user)
    assert fb.fill_queue("triage") == 4
    assert fb.fill_queue("triage") == 0  # the rule adds each trace once
    assert {i.trace_id for i in fb.queue_items("triage")} == set(ts[:4])
    with pytest.raises(AlreadyExists):
        fb.create_queue("triage", filter=rule, scores=["helpful"])
    with pytest.raises(UnknownScore):
        fb.create_queue("bad1", filter=rule, scores=["nope"])
    with pytest.raises(InvalidArgument):
        fb.create_queue("bad2", filter="score.helpful >>= 3", scores=["helpful"])
    with pytest.raises(InvalidArgument):
        fb.create_queue("bad3", filter=rule, scores=["helpful"], sample_ratio=0)
    assert [x.name for x in fb.list_queues()] == ["triage"]

    # Sampling: the same traces every time, about the ratio.
    fb.create_queue("sampled", filter='name like "q%"', scores=["tone"], sample_ratio=0.5)
    first = fb.fill_queue("sampled")
    assert 0 <= first <= 6 and fb.fill_queue("sampled") == 0
    fb.delete_queue("sampled")
    fb.create_queue("sampled", filter='name like "q%"', scores=["tone"], sample_ratio=0.5)
    assert fb.fill_queue("sampled") == first

    items = [i.trace_id for i in fb.queue_items("triage")]
    a1 = fb.claim("triage", "ann")
    assert a1 is not None and a1.trace_id == items[0] and a1.locked_by == "ann"
    assert fb.claim("triage", "ann") == a1  # a retried claim: the item ann holds
    b1 = fb.claim("triage", "bob")
    assert b1 is not None and b1.trace_id == items[1]
    with pytest.raises(Conflict):
        fb.complete_item("triage", a1.trace_id, "bob")  # ann's lock
    fb.annotate("helpful", 2, trace_id=a1.trace_id, author="ann")
    assert fb.complete_item("triage", a1.trace_id, "ann").status == "done"
    with pytest.raises(Conflict):
        fb.complete_item("triage", a1.trace_id, "ann")  # done already
    assert fb.assign("triage", [items[3]], "bob") == 1
    a2 = fb.claim("triage", "ann")
    assert a2 is not None and a2.trace_id == items[2]  # not bob's lock, not bob's assignment
    assert fb.skip_item("triage", a2.trace_id, "ann").status == "skipped"
    assert fb.claim("triage", "ann") is None
    p = fb.queue_progress("triage")
    assert (p.total, p.done, p.skipped, p.pending, p.locked) == (4, 1, 1, 2, 1)
    by = {x.annotator: x for x in p.annotators}
    assert (by["ann"].done, by["ann"].skipped, by["bob"].locked) == (1, 1, 1)

    # A lock expires: after lock_ttl_s another annotator may take the item.
    fb.create_queue("short", filter=rule, scores=["tone"], lock_ttl_s=1)
    fb.fill_queue("short")
    held = fb.claim("short", "ann")
    assert held is not None
    time.sleep(1.2)
    taken = fb.claim("short", "bob")
    assert taken is not None and taken.trace_id == held.trace_id and taken.locked_by == "bob"
    with pytest.raises(Conflict):
        fb.complete_item("short", held.trace_id, "ann")


# ---------------------------------------------------------------- agreement reference values

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 observers, 12 units, missing values; alpha nominal 0.743, interval 0.849.
_K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def test_krippendorff_alpha_matches_the_textbook_and_the_reference_package() -> None:
    krippendorff = pytest.importorskip("krippendorff")
    import numpy as np

    units = [[row[u] for row in _K2011] for u in range(12)]
    assert krippendorff_alpha(units, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(units, "interval") == pytest.approx(0.849, abs=5e-4)
    rng = random.Random(7)
    for trial in range(20):
        coders, items, labels = rng.randint(2, 5), rng.randint(5, 40), rng.randint(2, 5)
        data = [
            [rng.randint(1, labels) if rng.random() > 0.2 else None for _ in range(items)]
            for _ in range(coders)
        ]
        matrix = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
        units = [[row[u] for row in data] for u in range(items)]
        for level in ("nominal", "interval"):
            ours = krippendorff_alpha(units, level)
            try:
                ref = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
            except ValueError:  # the package refuses data with one value only
                assert ours is None
                continue
            assert ours == pytest.approx(ref, abs=1e-9), (trial, level)


def test_cohen_kappa_matches_scikit_learn() -> None:
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(3)
    for _ in range(30):
        n = rng.randint(5, 60)
        a = [rng.choice("xyz") for _ in range(n)]
        b = [x if rng.random() < 0.6 else rng.choice("xyz") for x in a]
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    # A hand-worked 2x2: 50 items, po = 0.7, pe = 0.5 -> kappa 0.4.
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None


def test_pii_masking() -> None:
    cases = {
        "write to jo.doe+x@mail.example.org today": "write to [EMAIL] today",
        "card 4111 1111 1111 1111 expires": "card [CARD] expires",
        "order 4111111111111112 shipped": "order 4111111111111112 shipped",  # fails Luhn
        "call +44 20 7946 0958 or 555-123-4567": "call [PHONE] or [PHONE]",
        "ssn 123-45-6789": "ssn [SSN]",
        "IBAN DE89 3704 0044 0532 0130 00 ok": "IBAN [IBAN] ok",
        "from 192.168.1.20": "from [IP]",
        "on 2024-05-01 at 10:30, 3 cats, v1.2.3": "on 2024-05-01 at 10:30, 3 cats, v1.2.3",
    }
    for text, want in cases.items():
        assert mask_pii(text) == want
        assert mask_pii(want) == want  # idempotent


# ---------------------------------------------------------------- the REST API, the CLI


def test_rest_api_shapes_and_error_codes(tmp_path: Path) -> None:
    with (
        live_server(Settings(home=tmp_path / "home")) as srv,
        httpx.Client(base_url=f"{srv.url}/api/v1", headers={"X-Opsloop-User": "rita"}) as h,
    ):
        r = h.put(
            "/feedback/scores/helpful", json={"kind": "numeric", "min_value": 1, "max_value": 5}
        )
        assert r.status_code == 200 and r.json()["created_by"] == "rita"
        tid = "ab" * 16
        r = h.post("/feedback/annotations", json={"name": "helpful", "value": 4, "trace_id": tid})
        assert r.status_code == 200 and r.json()["author"] == "rita"
        r = h.post("/feedback/annotations", json={"name": "helpful", "value": 9, "trace_id": tid})
        assert r.status_code == 400 and r.json()["error"]["code"] == "SCORE_VALUE_INVALID"
        r = h.post("/feedback/annotations", json={"name": "nope", "value": 1, "trace_id": tid})
        assert r.status_code == 400 and r.json()["error"]["code"] == "UNKNOWN_SCORE"
        r = h.post("/feedback/annotations", json={"name": "helpful", "value": 3, "extra": 1})
        assert r.status_code in (400, 422)
        r = h.get("/feedback/annotations", params={"trace_id": tid})
        assert [a["value"] for a in r.json()["annotations"]] == [4.0]
        r = h.get("/feedback/scores/helpful/agreement")
        assert r.status_code == 200 and r.json()["alpha"] is None


def test_cli_define_add_list_traces_agreement_and_errors(tmp_path: Path) -> None:
    from opsloop.cli import app

    home = tmp_path / "home"
    with Client(home=home) as c:
        tid = _trace(c, "cli", "q", "a")

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["--home", str(home), *args], env={"COLUMNS": "200"})

    r = run("feedback", "define", "helpful", "--kind", "numeric", "--min", "1", "--max", "5")
    assert r.exit_code == 0, r.output
    assert run("feedback", "add", "helpful", "4", "--trace", tid, "--author", "ann").exit_code == 0
    assert run("feedback", "add", "helpful", "2", "--trace", tid, "--author", "bob").exit_code == 0
    assert run("feedback", "add", "thumbs", "down", "--trace", tid).exit_code == 0
    r = run("feedback", "list", "--trace", tid, "--json")
    assert sorted(
        (a["author"], a["value"]) for a in json.loads(r.stdout) if a["name"] == "helpful"
    ) == [
        ("ann", 4.0),
        ("bob", 2.0),
    ]
    r = run("feedback", "traces", "helpful", "--min", "4", "--json")
    assert [t["id"] for t in json.loads(r.stdout)["traces"]] == [tid]
    r = run("traces", "list", "--filter", 'score.thumbs = "false"', "--json")
    assert [t["id"] for t in json.loads(r.stdout)["traces"]] == [tid]
    r = run("feedback", "agreement", "helpful")
    assert r.exit_code == 0 and "Krippendorff's alpha" in r.output
    r = run("feedback", "add", "helpful", "7", "--trace", tid)
    assert r.exit_code != 0
    assert (
        r.output.strip().startswith("error [SCORE_VALUE_INVALID]:") and "Traceback" not in r.output
    )
    r = run("feedback", "add", "nope", "1", "--trace", tid)
    assert r.exit_code != 0 and "error [NOT_FOUND]" in r.output
    r = run("feedback", "scores")
    assert "helpful" in r.output and "thumbs" in r.output


# ---------------------------------------------------------------- the served endpoint


def test_served_answers_carry_an_id_and_take_feedback(tmp_path: Path) -> None:
    from tests.test_serving import ThreadServer, answer_model

    settings = Settings(home=tmp_path / "home", flush_interval_s=60.0)
    with Client(settings=settings) as c:
        c.feedback.define_score("useful", "numeric", min_value=0, max_value=1)
    folder = answer_model(tmp_path / "m", "yes")
    with ThreadServer(folder, settings) as srv, httpx.Client(base_url=srv.url) as h:
        srv.wait_ready()
        r = h.post("/v1/predict", json={"records": [{"x": 1.0}]})
        assert r.json() == {"predictions": ["yes:1.0"]}  # the body keeps its shape
        rid = r.headers["x-opsloop-response-id"]
        r2 = h.post("/invocations", json={"records": [{"x": 2.0}]})
        assert r2.headers["x-opsloop-response-id"] not in ("", rid)
        f = h.post("/v1/feedback", json={"response_id": rid, "value": False, "user": "u7"})
        assert f.status_code == 201 and f.json()["author"] == "end-user:u7"
        # A retry with the same key is stored once; a second user's feedback is kept too.
        body = {"response_id": rid, "name": "useful", "value": 1, "key": "k-1", "comment": "ok"}
        assert h.post("/v1/feedback", json=body).status_code == 201
        assert h.post("/v1/feedback", json=body).status_code == 201
        h.post("/v1/feedback", json={"response_id": rid, "value": True, "user": "u8"})
        bad = h.post("/v1/feedback", json={"response_id": rid, "name": "useful", "value": 3})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "SCORE_VALUE_INVALID"
        bad = h.post("/v1/feedback", json={"response_id": rid, "name": "nope", "value": 1})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "UNKNOWN_SCORE"
        bad = h.post("/v1/feedback", json={"response_id": "bad id!", "value": True})
        assert bad.status_code == 400
    with Client(settings=settings) as c:
        got = c.feedback.list(prediction_id=rid)
        assert sorted((a.name, a.author, a.value) for a in got) == [
            ("thumbs", "end-user:u7", False),
            ("thumbs", "end-user:u8", True),
            ("useful", "end-user", 1.0),
        ]
        assert all(a.metadata.get("model") for a in got)
    engine = sa.create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("select count(*) from annotations where key = 'k-1'")).scalar()
    engine.dispose()
    assert n == 1


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_served_chat_and_completion_ids_take_feedback(tmp_path: Path, model_cache: Path) -> None:
    """SmolLM2 served from the registry: the OpenAI ``id`` of chat and completion answers
    (streamed too) is the response id, and ``POST /v1/feedback`` records on it."""
    pytest.importorskip("transformers")
    from opsloop.registry import bundled_gguf
    from tests.conftest import serve_registered

    served = serve_registered(
        tmp_path / "home",
        model_cache,
        "smol",
        bundled_gguf("smollm2"),
        "transformers",
        {"model_id": "SmolLM2-135M-Instruct"},
        max_tokens_limit=64,
    )
    with served as (srv, settings), httpx.Client(base_url=srv.url, timeout=120) as h:
        msgs = [{"role": "user", "content": "Say hi."}]
        chat = h.post("/v1/chat/completions", json={"messages": msgs, "max_tokens": 3})
        cid = chat.json()["id"]
        assert cid.startswith("chatcmpl-") and chat.headers["x-opsloop-response-id"] == cid
        comp = h.post("/v1/completions", json={"prompt": "Hello", "max_tokens": 2})
        assert comp.json()["id"].startswith("cmpl-")
        assert comp.headers["x-opsloop-response-id"] == comp.json()["id"]
        body = {"messages": msgs, "max_tokens": 2, "stream": True}
        with h.stream("POST", "/v1/chat/completions", json=body) as s:
            sid = s.headers["x-opsloop-response-id"]
            first = next(line for line in s.iter_lines() if line.startswith("data: {"))
        assert json.loads(first[6:])["id"] == sid
        r = h.post(
            "/v1/feedback",
            json={"response_id": cid, "value": False, "correction": "Hi!", "user": "u1"},
        )
        assert r.status_code == 201, r.text
    with Client(settings=settings) as c:
        (a,) = c.feedback.list(prediction_id=cid)
        assert (a.name, a.value, a.correction, a.author) == ("thumbs", False, "Hi!", "end-user:u1")
        assert a.metadata["model"] == "smol"
