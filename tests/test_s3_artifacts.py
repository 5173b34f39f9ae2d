"""S3ArtifactStore against a real S3-compatible HTTP server (moto's), plus one
contract that the local and the S3 backends must both obey."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsloop.errors import InvalidArgument, NotFound, PayloadTooLarge, Unavailable
from opsloop.store import ArtifactStore, LocalArtifactStore, open_artifact_store

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "opsloop-artifacts"
REGION = "us-east-1"
MISSING = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free local port, with fake credentials and one bucket."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    saved = {k: os.environ.get(k) for k in (*env, "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    os.environ.update(env)
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(k, None)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def raw_s3(s3_endpoint: str) -> object:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)


def keys_under(client: object, prefix: str) -> list[str]:
    paginator = client.get_paginator("list_objects_v2")  # type: ignore[attr-defined]
    return [
        obj["Key"]
        for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]


def open_uploads(client: object) -> list[dict[str, object]]:
    return list(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))  # type: ignore[attr-defined]


@pytest.fixture
def s3_store(s3_endpoint: str, request: pytest.FixtureRequest) -> ArtifactStore:
    # One prefix per test keeps key listings independent of other tests.
    return open_artifact_store(f"s3://{BUCKET}/t/{request.node.name}", endpoint_url=s3_endpoint)


def test_open_artifact_store_gives_s3_store(s3_store: ArtifactStore) -> None:
    from opsloop.store._s3 import S3ArtifactStore

    assert isinstance(s3_store, S3ArtifactStore)
    assert s3_store.bucket == BUCKET


def test_round_trip_bytes(s3_store: ArtifactStore) -> None:
    data = b"model weights, more or less"
    info = s3_store.put_bytes(data)
    assert info.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert s3_store.exists(info.digest)
    assert s3_store.read_bytes(info.digest) == data
    with s3_store.open(info.digest) as fh:
        assert fh.read(5) == data[:5]
        assert fh.read() == data[5:]


def test_same_content_stored_once_at_content_key(s3_store: ArtifactStore, raw_s3: object) -> None:
    prefix = s3_store.prefix  # type: ignore[attr-defined]
    a = s3_store.put_bytes(b"same bytes")
    b = s3_store.put_stream(io.BytesIO(b"same bytes"))
    assert a == b
    hexpart = a.digest.removeprefix("sha256:")
    assert keys_under(raw_s3, prefix + "/") == [f"{prefix}/blobs/sha256/{hexpart[:2]}/{hexpart}"]


def test_large_stream_goes_multipart_and_round_trips(
    s3_store: ArtifactStore, raw_s3: object
) -> None:
    data = os.urandom(20 * 1024 * 1024 + 123)
    info = s3_store.put_stream(io.BytesIO(data))
    assert info.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert b"".join(s3_store.iter_chunks(info.digest)) == data
    prefix = s3_store.prefix  # type: ignore[attr-defined]
    hexpart = info.digest.removeprefix("sha256:")
    assert keys_under(raw_s3, prefix + "/") == [f"{prefix}/blobs/sha256/{hexpart[:2]}/{hexpart}"]
    assert open_uploads(raw_s3) == []


class ProbingStream(io.BytesIO):
    """Asks the server for in-progress multipart uploads once ``after`` bytes were read."""

    def __init__(self, data: bytes, after: int, client: object) -> None:
        super().__init__(data)
        self.after = after
        self.client = client
        self.seen: list[dict[str, object]] | None = None

    def read(self, n: int | None = -1, /) -> bytes:
        if self.seen is None and self.tell() >= self.after:
            self.seen = open_uploads(self.client)
        return super().read(n)


def test_large_stream_is_uploaded_in_parts(s3_store: ArtifactStore, raw_s3: object) -> None:
    prefix = s3_store.prefix  # type: ignore[attr-defined]
    stream = ProbingStream(os.urandom(17 * 1024 * 1024), after=12 * 1024 * 1024, client=raw_s3)
    info = s3_store.put_stream(stream)
    assert stream.seen is not None
    assert [str(u["Key"]).startswith(prefix + "/tmp/") for u in stream.seen] == [True]
    assert s3_store.exists(info.digest)
    assert open_uploads(raw_s3) == []


def test_max_bytes_raises_and_leaves_nothing(s3_store: ArtifactStore, raw_s3: object) -> None:
    prefix = s3_store.prefix  # type: ignore[attr-defined]
    with pytest.raises(PayloadTooLarge):
        s3_store.put_stream(io.BytesIO(b"x" * 2048), max_bytes=1024)
    # Past the first multipart part, so an upload was open and must be aborted.
    with pytest.raises(PayloadTooLarge):
        s3_store.put_stream(io.BytesIO(b"y" * (10 * 1024 * 1024)), max_bytes=9 * 1024 * 1024)
    assert keys_under(raw_s3, prefix + "/") == []
    assert open_uploads(raw_s3) == []
    info = s3_store.put_stream(io.BytesIO(b"z" * 1024), max_bytes=1024)
    assert info.size == 1024


def test_unreachable_endpoint_raises_unavailable(s3_endpoint: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The socket is closed, so nothing listens on that port any more.
    store = open_artifact_store(f"s3://{BUCKET}/x", endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(Unavailable, match="cannot reach"):
        store.exists(MISSING)
    with pytest.raises(Unavailable):
        store.put_bytes(b"data")


def test_bad_uri_raises_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        open_artifact_store("s3:///no-bucket")


# --- one contract, two backends -------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    endpoint = request.getfixturevalue("s3_endpoint")
    return open_artifact_store(f"s3://{BUCKET}/contract/{request.node.name}", endpoint_url=endpoint)


def test_contract_round_trip_and_dedup(store: ArtifactStore) -> None:
    info = store.put_bytes(b"hello")
    assert info.digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert info.size == 5
    assert store.put_stream(io.BytesIO(b"hello")) == info
    assert store.exists(info.digest)
    assert store.read_bytes(info.digest) == b"hello"
    with store.open(info.digest) as fh:
        assert fh.read(2) == b"he"
        assert fh.read() == b"llo"
    assert b"".join(store.iter_chunks(info.digest, chunk_size=2)) == b"hello"


def test_contract_empty_blob(store: ArtifactStore) -> None:
    info = store.put_bytes(b"")
    assert info.digest == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert info.size == 0
    assert store.read_bytes(info.digest) == b""


def test_contract_put_file(store: ArtifactStore, tmp_path: Path) -> None:
    p = tmp_path / "weights.bin"
    p.write_bytes(b"\x00\x01" * 1000)
    info = store.put_file(p)
    assert store.read_bytes(info.digest) == p.read_bytes()


def test_contract_missing_blob(store: ArtifactStore) -> None:
    assert not store.exists(MISSING)
    with pytest.raises(NotFound):
        store.open(MISSING)
    with pytest.raises(NotFound):
        store.read_bytes(MISSING)
    store.delete(MISSING)  # deleting what is not there is not an error


@pytest.mark.parametrize("bad", ["md5:abc", "sha256:xyz", "sha256:" + "A" * 64, "0" * 64, ""])
def test_contract_invalid_digest(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        store.exists(bad)
    with pytest.raises(InvalidArgument):
        store.open(bad)
    with pytest.raises(InvalidArgument):
        store.delete(bad)


def test_contract_delete(store: ArtifactStore) -> None:
    keep = store.put_bytes(b"keep")
    gone = store.put_bytes(b"gone")
    store.delete(gone.digest)
    assert not store.exists(gone.digest)
    with pytest.raises(NotFound):
        store.open(gone.digest)
    assert store.read_bytes(keep.digest) == b"keep"


def test_contract_max_bytes(store: ArtifactStore) -> None:
    with pytest.raises(PayloadTooLarge):
        store.put_stream(io.BytesIO(b"a" * 101), max_bytes=100)
    assert not store.exists("sha256:" + hashlib.sha256(b"a" * 101).hexdigest())
    assert store.put_stream(io.BytesIO(b"a" * 100), max_bytes=100).size == 100


def _wait_past(store: ArtifactStore, digest: str) -> float:
    """Wait until a write now would get a later modification time than the blob has."""
    st = store.stat(digest)
    assert st is not None
    time.sleep(max(0.0, st.modified + 1.1 - time.time()))  # S3 times are whole seconds
    return st.modified


def test_contract_listing_and_ages(store: ArtifactStore) -> None:
    assert list(store.iter_blobs()) == []
    a, b = store.put_bytes(b"alpha"), store.put_bytes(b"bravo!")
    listed = {x.digest: x for x in store.iter_blobs()}
    assert set(listed) == {a.digest, b.digest}
    assert (listed[a.digest].size, listed[b.digest].size) == (5, 6)
    assert abs(listed[a.digest].modified - time.time()) < 60
    st = store.stat(a.digest)
    assert st is not None and (st.digest, st.size) == (a.digest, 5)
    assert store.stat(MISSING) is None
    # Storing the same bytes again, or touching, counts as a write: the age restarts.
    before = _wait_past(store, a.digest)
    assert store.put_bytes(b"alpha") == a
    after = store.stat(a.digest)
    assert after is not None and after.modified > before
    before = _wait_past(store, b.digest)
    assert store.touch(b.digest) is True
    assert store.stat(b.digest).modified > before  # type: ignore[union-attr]
    assert store.touch(MISSING) is False and store.stat(MISSING) is None
    assert store.read_bytes(a.digest) == b"alpha"  # same bytes


def test_contract_delete_if_older(store: ArtifactStore) -> None:
    a = store.put_bytes(b"old enough?")
    st = store.stat(a.digest)
    assert st is not None
    assert store.delete_if_older(a.digest, st.modified) is False  # written at the cutoff
    assert store.exists(a.digest)
    assert store.delete_if_older(a.digest, st.modified + 0.001) is True
    assert not store.exists(a.digest)
    assert store.delete_if_older(a.digest, time.time() + 10) is False  # already gone
    assert store.delete_if_older(MISSING, time.time()) is False
    with pytest.raises(InvalidArgument):
        store.delete_if_older("md5:abc", time.time())


def test_contract_temp_leftovers(store: ArtifactStore, raw_s3_or_none: object) -> None:
    assert list(store.iter_temp()) == []
    store.put_bytes(b"a finished write leaves no temporary file")
    assert list(store.iter_temp()) == []
    if isinstance(store, LocalArtifactStore):
        (store.root / "tmp").mkdir(exist_ok=True)
        (store.root / "tmp" / "upload-crashed").write_bytes(b"half")
    else:
        prefix = store.prefix  # type: ignore[attr-defined]
        raw_s3_or_none.put_object(Bucket=BUCKET, Key=f"{prefix}/tmp/crashed", Body=b"half")  # type: ignore[attr-defined]
        up = raw_s3_or_none.create_multipart_upload(Bucket=BUCKET, Key=f"{prefix}/tmp/open")  # type: ignore[attr-defined]
    temp = {t.name: t for t in store.iter_temp()}
    names = sorted(temp)
    if isinstance(store, LocalArtifactStore):
        assert names == ["upload-crashed"] and temp["upload-crashed"].size == 4
    else:
        assert names == ["crashed", f"open?upload={up['UploadId']}"]
    assert list(store.iter_blobs()) != [] and all(t.modified > 0 for t in temp.values())
    for name in names:
        store.delete_temp(name)
        store.delete_temp(name)  # twice: not an error
    assert list(store.iter_temp()) == []
    if not isinstance(store, LocalArtifactStore):
        assert open_uploads(raw_s3_or_none) == []
    for bad in ("../blobs/x", "", "a/b"):
        with pytest.raises(InvalidArgument):
            store.delete_temp(bad)


@pytest.fixture
def raw_s3_or_none(request: pytest.FixtureRequest, store: ArtifactStore) -> object:
    if isinstance(store, LocalArtifactStore):
        return None
    return request.getfixturevalue("raw_s3")


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` fail
    with pytest.raises(InvalidArgument, match=r"pip install 'opsloop\[s3\]'"):
        open_artifact_store(f"s3://{BUCKET}/x")
