"""The REST API answers every error in one JSON shape, with 4xx for bad input, never 500,
and a bad request never changes what is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsloop.server import create_app
from opsloop.settings import Settings


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("shape")
    s = Settings(
        home=home, max_request_bytes=1_000_000, max_artifact_bytes=100_000, max_batch_metrics=1000
    )
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def seeded(api: TestClient) -> dict[str, str]:
    e = api.post("/api/v1/experiments", json={"name": "shape"}).json()
    r = api.post("/api/v1/runs", json={"experiment_id": e["id"], "params": {"p": "1"}}).json()
    api.post(f"/api/v1/runs/{r['id']}/batch", json={"metrics": [["m", 1.0, 0, 1]]})
    api.put(f"/api/v1/runs/{r['id']}/artifacts/a.txt", content=b"abc")
    return {"exp": e["id"], "run": r["id"]}


def assert_error_shape(
    resp: Any, status: int | None = None, code: str | None = None
) -> dict[str, Any]:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    if status is not None:
        assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) <= {"code", "message", "details"} and {"code", "message"} <= set(err)
    assert isinstance(err["code"], str) and err["code"].isupper()
    assert isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code
    return dict(err)


def snapshot(api: TestClient, ids: dict[str, str]) -> Any:
    run = api.get(f"/api/v1/runs/{ids['run']}").json()
    hist = api.get(f"/api/v1/runs/{ids['run']}/metric-history", params={"key": "m"}).json()
    arts = api.get(f"/api/v1/runs/{ids['run']}/artifacts", params={"recursive": True}).json()
    exps = api.get("/api/v1/experiments").json()
    return run, hist, arts, exps


CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "/api/v1/experiments", {"json": {}}, 400, "INVALID_ARGUMENT"),
    ("POST", "/api/v1/experiments", {"json": {"name": ""}}, 400, "INVALID_ARGUMENT"),
    ("POST", "/api/v1/experiments", {"json": {"name": "shape"}}, 409, "ALREADY_EXISTS"),
    ("POST", "/api/v1/experiments", {"json": {"name": "x", "extra": 1}}, 400, "INVALID_ARGUMENT"),
    (
        "POST",
        "/api/v1/experiments",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        400,
        "INVALID_ARGUMENT",
    ),
    ("POST", "/api/v1/experiments", {"json": ["a list"]}, 400, "INVALID_ARGUMENT"),
    ("GET", "/api/v1/experiments/" + "0" * 32, {}, 404, "NOT_FOUND"),
    ("GET", "/api/v1/experiments/bad$id", {}, 400, "INVALID_ARGUMENT"),
    ("GET", "/api/v1/experiments", {"params": {"max_results": -1}}, 400, "INVALID_ARGUMENT"),
    ("GET", "/api/v1/experiments", {"params": {"page_token": "zz"}}, 400, "INVALID_ARGUMENT"),
    ("POST", "/api/v1/runs", {"json": {"experiment_id": "0" * 32}}, 404, "NOT_FOUND"),
    (
        "GET",
        "/api/v1/runs/{run}/metric-history",
        {"params": {"key": "m", "max_points": 1}},
        400,
        "INVALID_ARGUMENT",
    ),
    (
        "GET",
        "/api/v1/runs/{run}/metric-history",
        {"params": {"key": "m", "x": "sideways"}},
        400,
        "INVALID_ARGUMENT",
    ),
    ("GET", "/api/v1/runs/{run}/metric-history", {}, 400, "INVALID_ARGUMENT"),
    ("PATCH", "/api/v1/runs/{run}", {"json": {"status": "NAPPING"}}, 400, "INVALID_ARGUMENT"),
    (
        "POST",
        "/api/v1/runs/{run}/batch",
        {"json": {"metrics": [["m", "x", 0, 0]]}},
        400,
        "INVALID_ARGUMENT",
    ),
    (
        "POST",
        "/api/v1/runs/{run}/batch",
        {"json": {"metrics": [["m", 1.0, 2**70, 0]]}},
        400,
        "INVALID_ARGUMENT",
    ),
    (
        "POST",
        "/api/v1/runs/{run}/batch",
        {"json": {"metrics": [["bad key;", 1.0, 0, 0]]}},
        400,
        "INVALID_ARGUMENT",
    ),
    (
        "POST",
        "/api/v1/runs/{run}/batch",
        {"json": {"params": {"p": "2"}, "metrics": [["m", 5.0, 9, 9]]}},
        409,
        "CONFLICT",
    ),
    (
        "POST",
        "/api/v1/runs/{run}/batch",
        {"json": {"metrics": [["m", 1.0, i, i] for i in range(1001)]}},
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    (
        "POST",
        "/api/v1/runs/{run}/batch",
        {"json": {"params": {"big": "x" * 7000}}},
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    (
        "POST",
        "/api/v1/runs/{run}/batch",
        {"content": b"x" * 1_100_000, "headers": {"content-type": "application/json"}},
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    ("POST", "/api/v1/runs/search", {"json": {"filter": "metrics.m >"}}, 400, "INVALID_ARGUMENT"),
    ("POST", "/api/v1/runs/search", {"json": {"filter": "x" * 5000}}, 400, "INVALID_ARGUMENT"),
    ("POST", "/api/v1/runs/search", {"json": {"max_results": 10**9}}, 400, "INVALID_ARGUMENT"),
    ("POST", "/api/v1/runs/compare", {"json": {"run_ids": []}}, 400, "INVALID_ARGUMENT"),
    (
        "PUT",
        "/api/v1/runs/{run}/artifacts/x.bin",
        {"content": b"y" * 200_000},
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    ("PUT", "/api/v1/runs/{run}/artifacts/a.txt/inner", {"content": b"z"}, 400, "INVALID_ARGUMENT"),
    ("GET", "/api/v1/runs/{run}/artifacts/missing.txt", {}, 404, "NOT_FOUND"),
    ("DELETE", "/api/v1/runs/{run}/tags/nope", {}, 404, "NOT_FOUND"),
    ("GET", "/api/v1/no-such-route", {}, 404, "NOT_FOUND"),
    ("DELETE", "/api/v1/experiments", {}, 405, "METHOD_NOT_ALLOWED"),
]


@pytest.mark.parametrize(
    ("method", "url", "kw", "status", "code"), CASES, ids=[f"{c[0]} {c[1]} {c[3]}" for c in CASES]
)
def test_bad_requests_get_one_error_shape_and_change_nothing(
    api: TestClient,
    seeded: dict[str, str],
    method: str,
    url: str,
    kw: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = snapshot(api, seeded)
    resp = api.request(method, url.format(run=seeded["run"]), **kw)
    assert_error_shape(resp, status, code)
    assert snapshot(api, seeded) == before


def test_validation_errors_list_fields(api: TestClient) -> None:
    err = assert_error_shape(api.post("/api/v1/runs", json={"name": 5}), 400)
    fields = {e["field"] for e in err["details"]["errors"]}
    assert "experiment_id" in fields


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=30),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["metrics", "params", "tags", "batch_id", "x"]),
                children,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_fuzzed_batches_never_500(api: TestClient, seeded: dict[str, str], body: Any) -> None:
    before = snapshot(api, seeded)
    resp = api.post(
        f"/api/v1/runs/{seeded['run']}/batch",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    if resp.status_code >= 400:
        assert_error_shape(resp)
        assert snapshot(api, seeded) == before
    else:
        assert resp.status_code == 200


def test_errors_round_trip_to_the_same_exception(tmp_path: Path) -> None:
    from opsloop.errors import AlreadyExists, OpsloopError, error_from_payload

    exc = error_from_payload(
        {"error": {"code": "ALREADY_EXISTS", "message": "m", "details": {"a": 1}}}, 409
    )
    assert isinstance(exc, AlreadyExists) and exc.details == {"a": 1}
    assert type(error_from_payload({"weird": 1}, 502)) is OpsloopError
    assert AlreadyExists("m").to_payload() == {"error": {"code": "ALREADY_EXISTS", "message": "m"}}
