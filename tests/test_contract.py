"""One contract suite for the SDK: embedded and remote, on SQLite and PostgreSQL.

Every test here runs four times (``client`` is parametrised); a behaviour that
differs between the embedded client and a server, or between the databases,
fails here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import opsloop
from opsloop.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PayloadTooLarge
from tests.conftest import BackendEnv


@pytest.fixture
def client(backend: BackendEnv) -> opsloop.Client:
    """The contract suite's client: the shared four-way ``backend`` fixture (conftest)."""
    return backend.client


@pytest.fixture
def exp_id(client: opsloop.Client) -> str:
    return client.create_experiment("contract").id


# ---------------------------------------------------------------- experiments


def test_experiment_lifecycle(client: opsloop.Client) -> None:
    e = client.create_experiment("exp-a", description="first", tags={"team": "a"})
    assert e.name == "exp-a" and e.description == "first" and e.tags == {"team": "a"}
    assert client.get_experiment(e.id) == e
    assert client.get_experiment_by_name("exp-a").id == e.id
    with pytest.raises(AlreadyExists):
        client.create_experiment("exp-a")
    renamed = client.update_experiment(e.id, name="exp-b", description="second")
    assert (renamed.name, renamed.description) == ("exp-b", "second")
    with pytest.raises(NotFound):
        client.get_experiment_by_name("exp-a")
    client.set_experiment_tag(e.id, "team", "b")
    assert client.get_experiment(e.id).tags == {"team": "b"}
    client.set_experiment_tag(e.id, "scratch", "x")
    client.delete_experiment_tag(e.id, "scratch")
    assert client.get_experiment(e.id).tags == {"team": "b"}
    with pytest.raises(NotFound):
        client.delete_experiment_tag(e.id, "scratch")
    with pytest.raises(InvalidArgument):
        client.delete_experiment_tag(e.id, "../bad")
    client.create_run(e.id)
    client.delete_experiment(e.id)
    assert e.id not in [x.id for x in client.list_experiments()]
    assert e.id in [x.id for x in client.list_experiments(include_deleted=True)]
    client.restore_experiment(e.id)
    listed = {x.id: x for x in client.list_experiments()}
    assert listed[e.id].run_count == 1


def test_experiment_errors(client: opsloop.Client) -> None:
    with pytest.raises(NotFound) as ei:
        client.get_experiment("0" * 32)
    assert ei.value.code == "NOT_FOUND"
    with pytest.raises(InvalidArgument):
        client.create_experiment("")
    with pytest.raises(InvalidArgument):
        client.create_experiment("x" * 300)
    a = client.create_experiment("one")
    client.create_experiment("two")
    with pytest.raises(AlreadyExists):
        client.update_experiment(a.id, name="two")
    assert client.get_experiment(a.id).name == "one"


# ---------------------------------------------------------------- runs


def test_run_lifecycle(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(
        exp_id, name="r1", params={"lr": 0.1, "model": "rf"}, tags={"team": "a"}, notes="hello"
    )
    assert r.status == "RUNNING" and r.end_time is None
    got = client.get_run(r.id)
    assert got.params == {"lr": "0.1", "model": "rf"}
    assert got.tags == {"team": "a"} and got.notes == "hello" and got.name == "r1"
    done = client.set_terminated(r.id, "failed")
    assert (
        done.status == "FAILED" and done.end_time is not None and done.end_time >= done.start_time
    )
    client.update_run(r.id, name="renamed", notes="bye")
    assert (client.get_run(r.id).name, client.get_run(r.id).notes) == ("renamed", "bye")
    with pytest.raises(InvalidArgument):
        client.update_run(r.id, status="SLEEPING")
    child = client.create_run(exp_id, parent_run_id=r.id)
    assert client.get_run(child.id).parent_run_id == r.id
    assert [x.id for x in client.search_runs(exp_id, parent_run_id=r.id).runs] == [child.id]


def test_run_errors(client: opsloop.Client, exp_id: str) -> None:
    with pytest.raises(NotFound):
        client.create_run("f" * 32)
    with pytest.raises(NotFound):
        client.create_run(exp_id, parent_run_id="a" * 32)
    with pytest.raises(NotFound):
        client.get_run("b" * 32)
    with pytest.raises(InvalidArgument):
        client.get_run("../etc/passwd")


def test_delete_restore_purge(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(exp_id)
    client.log_batch(r.id, metrics=[("m", 1.0, 0, 1)])
    client.delete_run(r.id)
    assert client.search_runs(exp_id).runs == []
    assert [x.id for x in client.search_runs(exp_id, include_deleted=True).runs] == [r.id]
    with pytest.raises(NotFound):
        client.log_param(r.id, "a", 1)
    client.restore_run(r.id)
    assert [x.id for x in client.search_runs(exp_id).runs] == [r.id]
    client.delete_run(r.id, purge=True)
    with pytest.raises(NotFound):
        client.get_run(r.id)


# ---------------------------------------------------------------- params and tags


def test_params_are_immutable_and_batches_atomic(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(exp_id, params={"lr": 0.1})
    client.log_param(r.id, "lr", 0.1)  # same value: fine
    with pytest.raises(Conflict) as ei:
        client.log_batch(
            r.id, metrics=[("loss", 1.0, 0, 1)], params={"lr": 0.2, "new": 1}, tags={"t": "x"}
        )
    assert ei.value.details["key"] == "lr"
    got = client.get_run(r.id)
    assert got.params == {"lr": "0.1"} and got.tags == {} and got.metrics == {}


def test_create_run_with_params_tags_and_first_metrics_is_one_write(
    client: opsloop.Client, exp_id: str
) -> None:
    sent: list[str] = []
    if client.is_remote:
        client.context.transport.request_hooks.append(
            lambda method, path: sent.append(f"{method} {path}")
        )
    r = client.create_run(
        exp_id,
        name="one",
        params={"lr": 0.1, "depth": 3},
        tags={"team": "a"},
        metrics={"loss": 0.5, "acc": 1, "bad": float("nan")},
    )
    if client.is_remote:
        assert sent == ["POST /api/v1/runs"]
    assert r.params == {"lr": "0.1", "depth": "3"} and r.tags == {"team": "a"}
    assert list(r.metrics) == ["acc", "bad", "loss"]
    assert r.metrics["loss"].value == 0.5 and r.metrics["loss"].step == 0
    assert r.metrics["loss"].count == 1 and r.metrics["loss"].min == 0.5
    assert r.metrics["acc"].value == 1.0
    assert r.metrics["bad"].value is None and r.metrics["bad"].min is None
    got = client.get_run(r.id)
    assert got.params == r.params and got.tags == r.tags and got.metrics == r.metrics
    assert client.get_metric_history(r.id, "loss").values == [0.5]
    client.log_metric(r.id, "loss", 0.25)  # without a step: goes on from step 1
    h = client.get_metric_history(r.id, "loss")
    assert h.steps == [0, 1] and h.values == [0.5, 0.25]
    # The batch form of the same: first points with their own steps.
    r2 = client.backend.create_run(exp_id, metrics=[("m", 1.0, 5, 10), ("m", 2.0, 6, 11)])
    assert r2.metrics["m"].step == 6 and r2.metrics["m"].count == 2
    assert client.get_run(r2.id).metrics == r2.metrics


def test_create_run_with_metrics_is_atomic(client: opsloop.Client, exp_id: str) -> None:
    before = len(client.search_runs(exp_id, max_results=1000).runs)
    with pytest.raises(InvalidArgument):
        client.create_run(exp_id, params={"p": 1}, metrics={"loss": "high"})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument):
        client.create_run(exp_id, params={"p": 1}, metrics={"": 1.0})
    with pytest.raises(InvalidArgument):
        client.backend.create_run(exp_id, params={"p": 1}, metrics=[("m", 1.0, "x", 1)])  # type: ignore[list-item]
    with pytest.raises(NotFound):
        client.create_run("0" * 32, params={"p": 1}, metrics={"loss": 1.0})
    assert len(client.search_runs(exp_id, max_results=1000).runs) == before


def test_tags(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(exp_id)
    client.set_tags(r.id, {"a": "1", "b": 2})
    client.set_tag(r.id, "a", "changed")
    assert client.get_run(r.id).tags == {"a": "changed", "b": "2"}
    client.delete_tag(r.id, "a")
    assert client.get_run(r.id).tags == {"b": "2"}
    with pytest.raises(NotFound):
        client.delete_tag(r.id, "a")


def test_input_validation(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(exp_id)
    for bad in ["", "a" * 251, "bad\nkey", "/abs", "a/../b", "semi;colon"]:
        with pytest.raises(InvalidArgument):
            client.log_param(r.id, bad, 1)
    with pytest.raises(PayloadTooLarge):
        client.log_param(r.id, "big", "x" * 7000)
    with pytest.raises(InvalidArgument):
        client.log_metric(r.id, "m", "not a number")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        client.log_batch(r.id, metrics=[("m", 1.0, 2**70, 1)])
    assert client.get_run(r.id).params == {}


# ---------------------------------------------------------------- metrics


def test_metrics_buffered_then_flushed(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(exp_id)
    for i in range(1000):
        client.log_metric(r.id, "loss", 1.0 / (i + 1))
    client.log_metrics(r.id, {"acc": 0.5, "f1": 0.4}, step=3)
    assert client.pending_points == 1002
    assert client.flush() == 1002
    assert client.pending_points == 0
    h = client.get_metric_history(r.id, "loss")
    assert h.steps == list(range(1000)) and h.total_points == 1000
    assert h.values[0] == 1.0 and math.isclose(h.values[-1], 1 / 1000)
    assert all(b >= a for a, b in zip(h.timestamps, h.timestamps[1:], strict=False))
    run = client.get_run(r.id)
    assert run.metrics["loss"].count == 1000 and run.metrics["loss"].min == pytest.approx(0.001)
    assert run.metrics["acc"].step == 3


def test_latest_metric_is_highest_step_then_time(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(exp_id)
    client.log_batch(r.id, metrics=[("m", 5.0, 10, 100), ("m", 1.0, 2, 200)])
    client.log_batch(r.id, metrics=[("m", 3.0, 4, 300)])
    latest = client.get_run(r.id).metrics["m"]
    assert (latest.value, latest.step, latest.count, latest.min, latest.max) == (
        5.0,
        10,
        3,
        1.0,
        5.0,
    )
    client.log_batch(r.id, metrics=[("m", 7.0, 10, 400)])
    assert client.get_run(r.id).metrics["m"].value == 7.0
    h = client.get_metric_history(r.id, "m")
    assert h.steps == [2, 4, 10, 10] and h.values == [1.0, 3.0, 5.0, 7.0]


def test_nan_and_infinity(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(exp_id)
    client.log_batch(r.id, metrics=[("m", float("nan"), 0, 1), ("m", 2.0, 1, 2)])
    client.log_metric(r.id, "m", float("inf"), step=2)
    client.log_metric(r.id, "m", -float("inf"), step=3)
    client.flush(r.id)
    h = client.get_metric_history(r.id, "m")
    # NaN reads back as None (NaN in points()); infinities stay infinite, on every backend.
    assert h.values == [None, 2.0, math.inf, -math.inf]
    assert math.isnan(h.points()[0].value) and h.points().values[2:] == (math.inf, -math.inf)
    # Through create_run's first metrics too.
    r2 = client.create_run(exp_id, metrics={"x": float("inf")})
    assert client.get_metric_history(r2.id, "x").values == [math.inf]


def test_history_points_are_the_validated_points(client: opsloop.Client, exp_id: str) -> None:
    """``points()`` is a column-backed sequence; every way of reading it gives the validated points."""
    import pickle
    from collections.abc import Sequence

    import pydantic

    from opsloop.tracking import MetricPoint, MetricPoints

    r = client.create_run(exp_id)
    special = {3: float("nan"), 5: float("inf"), 9: 0.0, 11: -0.0}
    pts = [("m", special.get(i, i / 7), i, 1_000 + i) for i in range(2_000)]
    client.log_batch(r.id, metrics=pts)
    h = client.get_metric_history(r.id, "m")
    got = h.points()
    assert type(got) is MetricPoints and isinstance(got, Sequence)
    assert len(got) == len(pts) == len(h) and got.key == "m"
    want = [
        MetricPoint(key="m", value=math.nan if v is None else v, step=s, timestamp=t)
        for s, t, v in zip(h.steps, h.timestamps, h.values, strict=True)
    ]
    assert [s for _, _, s, _ in pts] == h.steps

    def same(p: MetricPoint, w: MetricPoint) -> None:
        assert type(p) is MetricPoint
        assert repr(p) == repr(w) and p.model_dump_json() == w.model_dump_json()
        assert math.isnan(p.value) if math.isnan(w.value) else (p == w and hash(p) == hash(w))
        assert p.model_fields_set == w.model_fields_set

    # Every way of reading the points: iterating, indexing, the list, list(...).
    for p, w in zip(got, want, strict=True):
        same(p, w)
    for i in (0, 3, 5, 9, 11, 1_999, -1, -2_000):
        same(got[i], want[i])
    listed = got.to_list()
    assert type(listed) is list
    for p, w in zip(listed, want, strict=True):
        same(p, w)
    assert list(got) == listed and list(reversed(got)) == listed[::-1]
    with pytest.raises(IndexError):
        got[2_000]
    # The columns, read without making points: values with NaN for None, -0.0 kept.
    assert got.steps == tuple(h.steps) and got.timestamps == tuple(h.timestamps)
    assert len(got.values) == 2_000 and math.isnan(got.values[3]) and got.values[20] == 20 / 7
    for a, w in zip(got.values, want, strict=True):
        assert math.isnan(a) if math.isnan(w.value) else a == w.value
    assert math.copysign(1.0, got.values[11]) == -1.0
    assert math.copysign(1.0, got[11].value) == -1.0  # -0.0 stays negative
    # Slices are MetricPoints of those rows, as list slices would be.
    part = got[100:110]
    assert (
        type(part) is MetricPoints
        and part == listed[100:110]
        and part.steps == tuple(range(100, 110))
    )
    assert got[::-7] == listed[::-7] and got[5:3] == [] and len(got[-3:]) == 3
    # Equality: with the list, another points(), a pickled copy; not with other points.
    assert got == listed and listed == got and got == h.points() and got == tuple(listed)
    back = pickle.loads(pickle.dumps(got))
    assert type(back) is MetricPoints and back == got and back.values[20] == got.values[20]
    assert repr(back) == repr(got) and "key='m'" in repr(got) and "len=2000" in repr(got)
    assert got != listed[:-1] and got != got[1:] and got != listed[::-1] and got != "m"
    assert got != MetricPoints("n", got.steps, got.timestamps, got.values)
    assert got != MetricPoints("m", got.steps, got.timestamps, (0.5, *got.values[1:]))
    # A snapshot: changing the history afterwards does not change it.
    h.steps[0] = 12345
    assert got[0].step == 0 and got.steps[0] == 0
    # The points are frozen and independent objects.
    with pytest.raises(pydantic.ValidationError):
        got[0].value = 1.0
    assert got[1].model_copy(update={"step": 99}).step == 99 and got[1].step == 1
    assert got[2].model_fields_set == {"key", "value", "step", "timestamp"}
    c = listed[2].model_copy()
    c.model_fields_set.add("x")
    assert "x" not in listed[3].model_fields_set
    # The columns are still checked against each other.
    bad = h.model_copy(update={"values": h.values[:-1]})
    with pytest.raises(ValueError):
        bad.points()
    empty = h.model_copy(update={"steps": [], "timestamps": [], "values": []}).points()
    assert empty == [] and len(empty) == 0 and list(empty) == [] and empty.values == ()


def test_batch_id_makes_retries_idempotent(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(exp_id)
    pts = [("m", float(i), i, i) for i in range(100)]
    assert client.backend.log_batch(r.id, metrics=pts, batch_id="b-1") == 100
    assert client.backend.log_batch(r.id, metrics=pts, batch_id="b-1") == 0
    assert client.get_metric_history(r.id, "m").total_points == 100
    assert client.get_run(r.id).metrics["m"].count == 100


def test_large_history_and_downsampling(client: opsloop.Client, exp_id: str) -> None:
    r = client.create_run(exp_id)
    n = 200_000
    for lo in range(0, n, 100_000):
        client.log_batch(
            r.id,
            metrics=[
                ("wave", math.sin(i / 1000), i, 1_000_000 + i) for i in range(lo, lo + 100_000)
            ],
        )
    full = client.get_metric_history(r.id, "wave")
    assert len(full) == n and full.steps[-1] == n - 1
    small = client.get_metric_history(r.id, "wave", max_points=1000)
    assert small.downsampled and small.total_points == n and 10 <= len(small) <= 1000
    assert small.steps[0] == 0 and small.steps[-1] == n - 1
    assert max(v for v in small.values if v is not None) == pytest.approx(
        max(v for v in full.values if v is not None)
    )
    assert min(v for v in small.values if v is not None) == pytest.approx(
        min(v for v in full.values if v is not None)
    )
    with pytest.raises(InvalidArgument):
        client.get_metric_history(r.id, "wave", max_points=1)


# ---------------------------------------------------------------- search and compare


@pytest.fixture
def populated(client: opsloop.Client, exp_id: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    specs = [
        ("rf-good", {"model": "rf", "lr": 0.001, "depth": 8}, {"team": "a"}, 0.95),
        ("rf-bad", {"model": "rf", "lr": 0.1, "depth": 2}, {"team": "b"}, 0.70),
        ("svm", {"model": "svm", "lr": 0.01}, {"team": "a"}, 0.92),
        ("no-metric", {"model": "lr"}, {}, None),
    ]
    for name, params, tags, f1 in specs:
        r = client.create_run(exp_id, name=name, params=params, tags=tags)
        if f1 is not None:
            client.log_batch(r.id, metrics=[("f1", f1 - 0.1, 0, 1), ("f1", f1, 1, 2)])
        ids[name] = r.id
    client.set_terminated(ids["svm"])
    return ids


def _names(
    client: opsloop.Client, exp_id: str, flt: str | None, order: list[str] | None = None
) -> list[str]:
    return [r.name for r in client.search_runs(exp_id, flt, order).runs]


def test_search_filter_language(
    client: opsloop.Client, exp_id: str, populated: dict[str, str]
) -> None:
    f = lambda s: sorted(_names(client, exp_id, s))  # noqa: E731
    assert f('metrics.f1 > 0.9 and params.model = "rf" and tags.team = "a"') == ["rf-good"]
    assert f("metrics.f1 > 0.9") == ["rf-good", "svm"]
    assert f("metrics.f1 >= 0.7 and metrics.f1 < 0.93") == ["rf-bad", "svm"]
    assert f("params.lr < 0.05") == ["rf-good", "svm"]
    assert f("params.depth >= 8") == ["rf-good"]
    assert f('params.model in ("svm", "lr")') == ["no-metric", "svm"]
    assert f('params.model not in ("svm", "lr")') == ["rf-bad", "rf-good"]
    assert f('name like "rf-%"') == ["rf-bad", "rf-good"]
    assert f('name ILIKE "RF-G%"') == ["rf-good"]
    assert f('status = "finished"') == ["svm"]
    assert f("metrics.f1 is null") == ["no-metric"]
    assert f("tags.team is not null and not tags.team = 'a'") == ["rf-bad"]
    assert f('(params.model = "svm" or metrics.f1 < 0.8) and tags.team != "zzz"') == [
        "rf-bad",
        "svm",
    ]
    assert f(f'run_id = "{populated["svm"]}"') == ["svm"]
    assert f("metrics.`f1` > 0.94") == ["rf-good"]


def test_search_order_and_pages(
    client: opsloop.Client, exp_id: str, populated: dict[str, str]
) -> None:
    assert _names(client, exp_id, None, ["metrics.f1 DESC"]) == [
        "rf-good",
        "svm",
        "rf-bad",
        "no-metric",
    ]
    assert _names(client, exp_id, None, ["metrics.f1 asc"]) == [
        "rf-bad",
        "svm",
        "rf-good",
        "no-metric",
    ]
    assert _names(client, exp_id, "params.lr is not null", ["params.lr"]) == [
        "rf-good",
        "svm",
        "rf-bad",
    ]
    assert _names(client, exp_id, None, ["name"]) == ["no-metric", "rf-bad", "rf-good", "svm"]
    seen: list[str] = []
    token = None
    while True:
        page = client.search_runs(exp_id, order_by=["name"], max_results=3, page_token=token)
        assert page.total == 4
        seen += [r.name for r in page.runs]
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["no-metric", "rf-bad", "rf-good", "svm"]
    assert [r.name for r in client.iter_runs(exp_id, order_by=["name"], page_size=1)] == seen
    # A search's statement is built once and kept: run again, it reads what was logged since.
    flt, order = "metrics.f1 > 0.9", ["metrics.f1 DESC"]
    assert _names(client, exp_id, flt, order) == ["rf-good", "svm"]
    late = client.create_run(exp_id, name="late", params={"model": "rf"}, tags={"team": "c"})
    client.log_batch(late.id, metrics=[("f1", 0.99, 0, 3)])
    (first, *_) = client.search_runs(exp_id, flt, order).runs
    assert (first.name, first.params, first.tags) == ("late", {"model": "rf"}, {"team": "c"})
    assert first.metrics["f1"].value == 0.99
    client.delete_run(late.id)
    assert _names(client, exp_id, flt, order) == ["rf-good", "svm"]


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.f1 >",
        "metrics.f1 > 'x'",
        "bogus = 1",
        "params.a = ",
        "(metrics.f1 > 1",
        "metrics.f1 >> 2",
        "tags.t < 'a' and",
        "name like 3",
    ],
)
def test_search_bad_filter(client: opsloop.Client, exp_id: str, bad: str) -> None:
    with pytest.raises(InvalidArgument) as ei:
        client.search_runs(exp_id, bad)
    assert ei.value.message.startswith("filter") and ei.value.code == "INVALID_ARGUMENT"


def test_search_bad_order_and_token(client: opsloop.Client, exp_id: str) -> None:
    with pytest.raises(InvalidArgument):
        client.search_runs(exp_id, order_by=["nonsense_field desc"])
    with pytest.raises(InvalidArgument):
        client.search_runs(exp_id, page_token="not-a-token")
    with pytest.raises(InvalidArgument):
        client.search_runs(exp_id, max_results=0)


def test_compare(client: opsloop.Client, exp_id: str, populated: dict[str, str]) -> None:
    cmp = client.compare_runs([populated["rf-good"], populated["rf-bad"], populated["svm"]])
    assert [r.name for r in cmp.runs] == ["rf-good", "rf-bad", "svm"]
    assert cmp.param_keys == ["depth", "lr", "model"]
    assert set(cmp.differing_params) == {"depth", "lr", "model"}
    assert cmp.metrics["f1"][populated["svm"]] == pytest.approx(0.92)
    assert cmp.best["f1"] == populated["rf-good"]
    same = client.compare_runs([populated["rf-good"], populated["rf-good"]])
    assert same.differing_params == []
    with pytest.raises(NotFound):
        client.compare_runs([populated["svm"], "c" * 32])


def test_compare_goals_are_the_services(client: opsloop.Client, exp_id: str) -> None:
    """Each metric's goal comes from the service: set on the experiment, else inferred;
    ``best`` follows it, through the embedded and the REST client alike."""
    runs = []
    for name, f1, loss, lat, cpu in [
        ("a", 0.9, 0.5, 20.0, 10.0),
        ("b", 0.7, 0.2, 10.0, 90.0),
        ("c", 0.7, None, 10.0, 50.0),
    ]:
        r = client.create_run(exp_id, name=name)
        pts = [("f1", f1, 0, 1), ("latency_ms", lat, 0, 1), ("system/cpu_percent", cpu, 0, 1)]
        if loss is not None:
            pts.append(("val/loss", loss, 0, 1))
        client.log_batch(r.id, metrics=pts)
        runs.append(r)
    ids = [r.id for r in runs]
    cmp = client.compare_runs(ids)
    assert cmp.goals == {
        "f1": "maximize",
        "latency_ms": "minimize",
        "system/cpu_percent": None,
        "val/loss": "minimize",
    }
    # Ties go to the first run given; a run without the metric is skipped; no goal, no best.
    assert cmp.best == {
        "f1": ids[0],
        "latency_ms": ids[1],
        "system/cpu_percent": None,
        "val/loss": ids[1],
    }
    assert client.compare_runs(ids[::-1]).best["latency_ms"] == ids[2]

    # Set on the experiment (by id, Experiment or Run), the goal wins over the name.
    client.set_metric_goal(exp_id, "val/loss", "maximize")
    client.set_metric_goal(runs[0], "latency_ms", "maximize")
    client.set_metric_goal(client.get_experiment(exp_id), "f1", "minimize")
    cmp = client.compare_runs(ids)
    assert cmp.goals["val/loss"] == "maximize" and cmp.best["val/loss"] == ids[0]
    assert cmp.goals["latency_ms"] == "maximize" and cmp.best["latency_ms"] == ids[0]
    assert cmp.goals["f1"] == "minimize" and cmp.best["f1"] == ids[1]
    assert client.get_experiment(exp_id).tags["opsloop.goal.val/loss"] == "maximize"
    client.set_metric_goal(exp_id, "val/loss", "minimize")  # set again: changed
    assert client.compare_runs(ids).best["val/loss"] == ids[1]

    # Across experiments, the first run's experiment that sets a goal decides.
    other = client.create_experiment("goals-other").id
    r = client.create_run(other, name="d")
    client.log_batch(r.id, metrics=[("f1", 0.8, 0, 1)])
    client.set_metric_goal(other, "f1", "maximize")
    assert client.compare_runs([r.id, *ids]).goals["f1"] == "maximize"
    assert client.compare_runs([*ids, r.id]).goals["f1"] == "minimize"

    # Goals are checked wherever they enter, with a stable code; nothing is written.
    for bad_goal in ("max", "MAXIMIZE", "", None, 1):
        with pytest.raises(InvalidArgument) as ei:
            client.set_metric_goal(exp_id, "f1", bad_goal)  # type: ignore[arg-type]
        assert ei.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgument):
        client.set_metric_goal(exp_id, "bad key!", "maximize")
    with pytest.raises(InvalidArgument):
        client.set_metric_goal(exp_id, "k" * 240, "maximize")  # too long for the tag
    with pytest.raises(InvalidArgument):
        client.set_experiment_tag(exp_id, "opsloop.goal.f1", "sideways")
    with pytest.raises(InvalidArgument):
        client.create_experiment("goals-bad", tags={"opsloop.goal.loss": "up"})
    with pytest.raises(NotFound):
        client.set_metric_goal("e" * 32, "f1", "maximize")
    assert client.compare_runs(ids).goals["f1"] == "minimize"
    with pytest.raises(NotFound):
        client.get_experiment_by_name("goals-bad")


def test_goal_inference_from_the_name() -> None:
    from opsloop.tracking._goals import infer_goal

    minimize = [
        "loss", "val_loss", "train/loss", "valLoss", "logloss", "hinge-loss", "RMSE",
        "mean_squared_error", "error_rate", "latency_p95_ms", "eval.duration", "wer",
        "perplexity", "cost_usd", "time_to_first_token",
    ]  # fmt: skip
    maximize = [
        "f1", "accuracy", "auc", "val/accuracy", "bleu", "tokens_per_second", "timestamp_skew",
        "neg_mean_squared_error", "neg_log_loss", "recall@10",
    ]  # fmt: skip
    assert {k: infer_goal(k) for k in minimize} == dict.fromkeys(minimize, "minimize")
    assert {k: infer_goal(k) for k in maximize} == dict.fromkeys(maximize, "maximize")
    assert infer_goal("system/cpu_percent") is None
    assert infer_goal("system/gpu_0_memory_mb") is None


# ---------------------------------------------------------------- artifacts


def test_artifacts(client: opsloop.Client, exp_id: str, tmp_path: Path) -> None:
    r = client.create_run(exp_id)
    f = tmp_path / "model.txt"
    f.write_text("weights")
    d = tmp_path / "plots"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_text("x,y\n1,2\n")
    (d / "sub" / "b.json").write_text('{"k": 1}')
    info = client.log_artifact(r.id, f)
    assert (
        info.path == "model.txt"
        and info.size == 7
        and info.digest
        and info.digest.startswith("sha256:")
    )
    client.log_artifacts(r.id, d, "plots")
    client.log_text(r.id, "weights", "copy/model.txt")
    top = client.list_artifacts(r.id)
    assert [(a.path, a.is_dir) for a in top] == [
        ("copy", True),
        ("plots", True),
        ("model.txt", False),
    ]
    assert [a.path for a in client.list_artifacts(r.id, "plots")] == ["plots/sub", "plots/a.csv"]
    rec = client.list_artifacts(r.id, recursive=True)
    assert {a.path for a in rec} == {
        "model.txt",
        "plots/a.csv",
        "plots/sub/b.json",
        "copy/model.txt",
    }
    by_path = {a.path: a for a in rec}
    assert by_path["copy/model.txt"].digest == by_path["model.txt"].digest
    assert client.read_artifact(r.id, "plots/sub/b.json") == b'{"k": 1}'
    out = client.download_artifacts(r.id, "plots", tmp_path / "dl")
    assert (out / "a.csv").read_text() == "x,y\n1,2\n" and (out / "sub" / "b.json").exists()
    client.log_text(r.id, "v2", "model.txt")
    assert client.read_artifact(r.id, "model.txt") == b"v2"
    with pytest.raises(InvalidArgument):
        client.log_text(r.id, "x", "../escape.txt")
    with pytest.raises(InvalidArgument):
        client.log_text(r.id, "x", "plots")  # a folder already
    with pytest.raises(InvalidArgument):
        client.log_text(r.id, "x", "model.txt/inner")  # inside a file
    with pytest.raises(NotFound):
        client.read_artifact(r.id, "missing.txt")


def test_fluent_api_against_client(client: opsloop.Client, tmp_path: Path) -> None:
    from opsloop.sdk import _fluent

    _fluent._client = client
    try:
        with opsloop.start_run("parent", experiment="fluent", log_system_metrics=False) as parent:
            opsloop.log_params({"a": 1})
            opsloop.log_metric("loss", 0.5)
            opsloop.log_metric("loss", 0.25)
            opsloop.set_tag("k", "v")
            with opsloop.start_run("child", log_system_metrics=False) as child:
                opsloop.log_metric("inner", 1.0)
            with (
                pytest.raises(RuntimeError),
                opsloop.start_run("boom", log_system_metrics=False) as failing,
            ):
                raise RuntimeError("training crashed")
        assert opsloop.active_run() is None
        p = client.get_run(parent.run_id)
        assert p.status == "FINISHED" and p.params == {"a": "1"} and p.tags == {"k": "v"}
        assert client.get_metric_history(parent.run_id, "loss").values == [0.5, 0.25]
        assert client.get_run(child.run_id).parent_run_id == parent.run_id
        failed = client.get_run(failing.run_id)
        assert failed.status == "FAILED" and "training crashed" in failed.tags["opsloop.error"]
        with pytest.raises(InvalidArgument):
            opsloop.log_metric("x", 1.0)
    finally:
        _fluent._client = None
        _fluent._stack.clear()
