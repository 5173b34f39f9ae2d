"""The registry's REST surface in-process: error shape, blob uploads, actors, file downloads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opsloop.server import create_app
from opsloop.settings import Settings

API = "/api/v1/registry"
BLOBS = "/api/v1/blobs"  # the one blob API every room's remote client uploads through


@pytest.fixture
def http(home: Path) -> Iterator[TestClient]:
    app = create_app(
        Settings(home=home, max_request_bytes=64 * 1024, max_artifact_bytes=256 * 1024)
    )
    with TestClient(app) as c:
        yield c


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error(resp: object, status: int, code: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def _upload(http: TestClient, data: bytes) -> str:
    d = _digest(data)
    r = http.put(f"{BLOBS}/{d}", content=data)
    assert r.status_code == 201, r.text
    assert r.json() == {"digest": d, "size": len(data)}
    return d


DESCRIPTOR = b'{"flavor": "pyfunc", "metadata": {"python_model": "tests.test_flavors:ScaleModel", "config": {"scale": 2}}}'


def test_blob_upload_checks_digest_and_size(http: TestClient) -> None:
    data = b"x" * 100_000  # over the JSON request limit, under the artifact limit
    d = _upload(http, data)
    assert http.post(f"{BLOBS}/missing", json={"digests": [d, _digest(b"other")]}).json() == {
        "missing": [_digest(b"other")]
    }
    err = _error(
        http.put(f"{BLOBS}/{_digest(b'claimed')}", content=b"actual"), 400, "INVALID_ARGUMENT"
    )
    assert err["details"] == {"expected": _digest(b"claimed"), "actual": _digest(b"actual")}
    _error(http.put(f"{BLOBS}/sha256:nothex", content=b"a"), 400, "INVALID_ARGUMENT")
    _error(http.put(f"{BLOBS}/{_digest(b'big')}", content=b"y" * 300_000), 413, "PAYLOAD_TOO_LARGE")
    _error(http.post(f"{BLOBS}/missing", json={"digests": ["md5:abc"]}), 400, "INVALID_ARGUMENT")


def test_versions_from_uploaded_blobs_with_actor_and_download(http: TestClient) -> None:
    d = _upload(http, DESCRIPTOR)
    weights = _upload(http, b"\x01\x02\x03")
    body = {
        "files": {
            "opsloop-model.json": {"digest": d, "size": len(DESCRIPTOR)},
            "artifacts/w.bin": {"digest": weights, "size": 3},
        },
        "source": "/somewhere",
    }
    r = http.post(f"{API}/models/scaler/versions", json=body, headers={"X-Opsloop-User": "ana"})
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["version"], v["flavor"], v["created_by"]) == (1, "pyfunc", "ana")
    assert (
        http.get(f"{API}/models/scaler/versions/{1}/files/artifacts/w.bin").content
        == b"\x01\x02\x03"
    )
    listing = http.get(f"{API}/models/scaler/versions/latest/files").json()["files"]
    assert [f["path"] for f in listing] == ["artifacts/w.bin", "opsloop-model.json"]
    r = http.put(
        f"{API}/models/scaler/aliases/champion",
        json={"version": 1},
        headers={"X-Opsloop-User": "bo"},
    )
    assert r.status_code == 200 and r.json()["updated_by"] == "bo"
    assert (
        http.get(f"{API}/resolve", params={"uri": "models:/scaler@champion"}).json()["id"]
        == v["id"]
    )
    events = http.get(f"{API}/models/scaler/history").json()["events"]
    assert [(e["action"], e["actor"]) for e in events] == [
        ("alias_set", "bo"),
        ("version_created", "ana"),
        ("model_created", "ana"),
    ]

    missing = {"files": {"opsloop-model.json": {"digest": _digest(b"never uploaded"), "size": 3}}}
    err = _error(http.post(f"{API}/models/scaler/versions", json=missing), 400, "INVALID_ARGUMENT")
    assert "upload it first" in str(err["message"])
    _error(
        http.post(f"{API}/models/scaler/versions", json={"source": "/local/path"}),
        400,
        "INVALID_ARGUMENT",
    )
    _error(
        http.post(
            f"{API}/models/scaler/versions", json={"files": {"../x": {"digest": d, "size": 1}}}
        ),
        400,
        "INVALID_ARGUMENT",
    )
    assert (
        len(http.get(f"{API}/models/scaler/versions").json()["versions"]) == 1
    )  # failures wrote nothing


def test_errors_answer_in_one_shape(http: TestClient) -> None:
    _error(http.get(f"{API}/models/nope"), 404, "NOT_FOUND")
    _error(http.get(f"{API}/models/nope/versions/1"), 404, "NOT_FOUND")
    _error(http.get(f"{API}/resolve", params={"uri": "models:/"}), 400, "INVALID_ARGUMENT")
    _error(http.post(f"{API}/models", json={"name": "a b"}), 400, "INVALID_ARGUMENT")
    _error(http.post(f"{API}/models", json={"name": "ok", "unknown": 1}), 400, "INVALID_ARGUMENT")
    assert (
        http.post(f"{API}/models", json={"name": "ok", "kind": "prompt"}).json()["kind"] == "prompt"
    )
    _error(http.post(f"{API}/models", json={"name": "ok"}), 409, "ALREADY_EXISTS")
    _error(http.get(f"{API}/models/ok/versions/zero"), 400, "INVALID_ARGUMENT")
    _error(
        http.put(f"{API}/models/ok/aliases/latest", json={"version": 1}), 400, "INVALID_ARGUMENT"
    )
    _error(http.put(f"{API}/models/ok/aliases/prod", json={"version": 0}), 400, "INVALID_ARGUMENT")
    _error(http.put(f"{API}/models/ok/aliases/prod", json={"version": 1}), 404, "NOT_FOUND")
    _error(http.get(f"{API}/models/ok/versions/1/files/x"), 404, "NOT_FOUND")
    _error(http.get(f"{API}/lineage/datasets/unknown"), 404, "NOT_FOUND")
    _error(http.get(f"{API}/models", params={"kind": "spaceship"}), 400, "INVALID_ARGUMENT")
    _error(
        http.put(f"{API}/models/ok/versions/1/card", json={"fields": {"colour": "red"}}),
        400,
        "INVALID_ARGUMENT",
    )
    _error(
        http.post(
            f"{API}/models", content=b"x" * 100_000, headers={"Content-Type": "application/json"}
        ),
        413,
        "PAYLOAD_TOO_LARGE",
    )
