"""The one content-addressed blob API (``/api/v1/blobs``), over real HTTP to a real server,
on SQLite and PostgreSQL: both remote clients that send files (datasets, registry) upload
through it, share one blob space, and the per-room duplicates are gone."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import opsloop
from opsloop.core import upload_missing_blobs
from opsloop.registry import Registry
from opsloop.settings import Settings
from opsloop.store import open_artifact_store
from tests.conftest import fresh_pg_database, live_server
from tests.test_error_shape import assert_error_shape
from tests.test_registry import saved_model


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _nullctx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


@pytest.fixture(params=["sqlite", "postgres"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[opsloop.Client, str]]:
    """A remote client and its server's URL; the server's home is ``tmp_path/home``."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
    with fresh_pg_database() if request.param == "postgres" else _nullctx() as pg:
        settings = Settings(home=tmp_path / "home", database_url=pg, max_artifact_bytes=256 * 1024)
        with live_server(settings) as srv:
            c = opsloop.Client(
                settings=settings.model_copy(
                    update={"tracking_uri": srv.url, "home": tmp_path / "client"}
                )
            )
            yield c, srv.url
            c.close()


def test_datasets_and_registry_upload_through_one_blob_api(
    remote: tuple[opsloop.Client, str], tmp_path: Path
) -> None:
    client, url = remote
    blobs = f"{url}/api/v1/blobs"
    server_store = open_artifact_store(str(tmp_path / "home" / "artifacts"))
    shared = b"the same bytes, in a dataset and in a model\n" * 100
    d_shared = _digest(shared)

    # A documents dataset: its files travel through /api/v1/blobs.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_bytes(shared)
    client.datasets.create("handbook", docs, kind="documents")
    assert server_store.read_bytes(d_shared) == shared
    assert httpx.post(f"{blobs}/missing", json={"digests": [d_shared]}).json() == {"missing": []}

    # A model folder holding the same file: the registry client asks the same API
    # and uploads only what the server lacks (not the shared file).
    folder = saved_model(tmp_path, name="with-shared")
    (folder / "artifacts").mkdir(exist_ok=True)
    (folder / "artifacts" / "shared.txt").write_bytes(shared)
    files = {_digest(p.read_bytes()): p for p in folder.rglob("*") if p.is_file()}
    assert d_shared in files
    uploaded = upload_missing_blobs(client.context.transport, files)
    assert d_shared not in uploaded
    assert sorted(uploaded) == sorted(d for d in files if d != d_shared)
    assert upload_missing_blobs(client.context.transport, files) == []
    v = Registry(client).register("m", folder)
    assert v.version == 1
    assert Registry(client).load("models:/m/1").predict([{"x": 2.0}]) == [4.0]

    # The per-room duplicates are gone: there is one place to upload to.
    for method, path in [
        ("POST", "/api/v1/registry/blobs/missing"),
        ("PUT", f"/api/v1/registry/blobs/{d_shared}"),
    ]:
        r = httpx.request(method, f"{url}{path}", json={"digests": [d_shared]})
        assert r.status_code in (404, 405), (path, r.status_code)
    paths = httpx.get(f"{url}/api/v1/openapi.json").json()["paths"]
    assert sorted(p for p in paths if "blobs" in p) == [
        "/api/v1/blobs/missing",
        "/api/v1/blobs/{digest}",
    ]


def test_blob_upload_checks_before_storing(
    remote: tuple[opsloop.Client, str], tmp_path: Path
) -> None:
    _, url = remote
    blobs = f"{url}/api/v1/blobs"
    server_store = open_artifact_store(str(tmp_path / "home" / "artifacts"))
    body = b"actual bytes"
    claimed = _digest(b"claimed bytes")
    err = assert_error_shape(httpx.put(f"{blobs}/{claimed}", content=body), 400, "INVALID_ARGUMENT")
    assert err["details"] == {"expected": claimed, "actual": _digest(body)}
    # A refused upload stores nothing, not even under the digest of what was sent.
    assert not server_store.exists(_digest(body)) and not server_store.exists(claimed)
    assert httpx.head(f"{blobs}/{_digest(body)}").status_code == 404
    too_big = b"y" * (256 * 1024 + 1)
    assert_error_shape(
        httpx.put(f"{blobs}/{_digest(too_big)}", content=too_big), 413, "PAYLOAD_TOO_LARGE"
    )
    assert not server_store.exists(_digest(too_big))
    assert_error_shape(httpx.put(f"{blobs}/sha256:nothex", content=b"a"), 400, "INVALID_ARGUMENT")
    assert_error_shape(
        httpx.post(f"{blobs}/missing", json={"digests": ["md5:abc"]}), 400, "INVALID_ARGUMENT"
    )
    assert_error_shape(
        httpx.post(f"{blobs}/missing", json={"digests": [], "extra": 1}), 400, "INVALID_ARGUMENT"
    )

    r = httpx.put(f"{blobs}/{_digest(body)}", content=body)
    assert r.status_code == 201 and r.json() == {"digest": _digest(body), "size": len(body)}
    assert httpx.head(f"{blobs}/{_digest(body)}").status_code == 200
    assert httpx.get(f"{blobs}/{_digest(body)}").content == body
    missing = httpx.post(f"{blobs}/missing", json={"digests": [claimed, _digest(body), claimed]})
    assert missing.json() == {"missing": [claimed]}


def test_missing_counts_the_blobs_it_has_as_written_now(
    remote: tuple[opsloop.Client, str], tmp_path: Path
) -> None:
    """A client told "you need not upload X" names X in a row next: ``opsloop gc`` must
    not take X meanwhile, so the answer restarts X's age."""
    import os
    import time

    _, url = remote
    server_store = open_artifact_store(str(tmp_path / "home" / "artifacts"))
    d = server_store.put_bytes(b"stored long ago").digest
    long_ago = time.time() - 7200
    os.utime(server_store._path(d), (long_ago, long_ago))  # type: ignore[attr-defined]
    other = _digest(b"never stored")
    r = httpx.post(f"{url}/api/v1/blobs/missing", json={"digests": [d, other]})
    assert r.json() == {"missing": [other]}
    st = server_store.stat(d)
    assert st is not None and st.modified > time.time() - 60
    assert server_store.stat(other) is None  # asking stores nothing
