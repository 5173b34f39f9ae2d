"""Vector indexes over REST: the same ``client.indexes`` contract embedded and remote.

Embedded, the index lives in the client's home; remote, in the server's (a
real server on a socket, ``live_server``), reached through ``RemoteIndex``. Indexes
keep no rows in the metadata database, so the SQLite backends stand for both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opsloop.errors import InvalidArgument, NotFound
from opsloop.retrieval import RemoteIndex, VectorIndex
from tests.conftest import backend_env
from tests.test_retrieval import clustered, ids_of

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("engine", ["faiss", "lance"])
@pytest.mark.parametrize("name", ["embedded-sqlite", "remote-sqlite"])
def test_indexes_contract(
    name: str, engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsloop.pipelines import Pipeline, RetrieveStep, RunContext

    if engine == "lance":
        pytest.importorskip("lancedb")
    monkeypatch.setenv("OPSLOOP_INDEX_BACKEND", engine)  # Settings.index_backend
    monkeypatch.delenv("OPSLOOP_INDEX_URI", raising=False)
    lance = engine == "lance"
    with backend_env(name, tmp_path) as env:
        ix = env.client.indexes
        assert ix.list() == []
        idx = ix.open("docs", dim=8)
        assert isinstance(idx, RemoteIndex) == env.remote
        x = clustered(60, dim=8, seed=3)
        idx.add(
            [f"d{i}" for i in range(60)],
            x,
            metadata=[{"n": i, "half": i % 2} for i in range(60)],
            texts=[
                f"passage number {i} about {'kettles' if i == 7 else 'cakes'}" for i in range(60)
            ],
        )
        assert len(idx) == 60 and ix.list() == ["docs"] and idx.dim == 8
        top = idx.search(x[7], 1)[0]
        assert (top.id, top.metadata, top.text) == ("d7", {"n": 7, "half": 1}, top.text)
        assert top.score == pytest.approx(1.0, abs=1e-5)
        hits = idx.search(x[7], 5, filter={"half": 0})
        assert len(hits) == 5 and all(h.metadata["half"] == 0 for h in hits)
        assert [ids_of(b) for b in idx.search_batch(x[:3], 4)] == [
            ids_of(idx.search(v, 4)) for v in x[:3]
        ]
        assert ids_of(idx.search(x[7], 3, exact=True)) == ids_of(idx.search(x[7], 3))
        if lance:  # no keyword search on the lance backend: a clear error, over REST too
            with pytest.raises(InvalidArgument, match="keyword or hybrid"):
                idx.keyword_search("kettles", k=3)
            with pytest.raises(InvalidArgument, match="keyword or hybrid"):
                idx.hybrid_search(x[20], "kettles", k=2)
        else:
            assert ids_of(idx.keyword_search("kettles", k=3)) == ["d7"]
            fused = idx.hybrid_search(x[20], "kettles", k=2)
            assert set(ids_of(fused)) == {"d20", "d7"}
        # Upsert and delete.
        idx.add(["d7"], x[8:9], metadata=[{"n": 700}], texts=["moved"])
        assert idx.search(x[8], 2, filter={"n": 700})[0].id == "d7"
        assert idx.delete(["d1", "d2", "missing"]) == 2
        info = ix.info("docs")
        assert (info["count"], info["dim"], info["metric"], info["engine"]) == (
            58,
            8,
            "cosine",
            engine,
        )
        # Bad requests answer with the error's code and change nothing.
        with pytest.raises(InvalidArgument, match="9 dimensions"):
            idx.add(["w"], np.ones((1, 9)))
        with pytest.raises(InvalidArgument, match="unknown operator"):
            idx.search(x[0], 3, filter={"n": {"$regex": "x"}})
        with pytest.raises(InvalidArgument, match="keyword or hybrid" if lance else "non-empty"):
            idx.keyword_search("  ")
        with pytest.raises(InvalidArgument, match="too big for float32"):
            idx.search([1e300] * 8, 3)
        with pytest.raises(InvalidArgument, match="64-bit integer range"):
            idx.search(x[0], 3, filter={"n": 2**70})
        assert idx.search(np.full(8, 3e38, dtype=np.float32), 1)[0].id  # large, finite: fine
        with pytest.raises(InvalidArgument, match="uses metric 'cosine'"):
            ix.open("docs", metric="l2")
        with pytest.raises(NotFound):
            ix.open("nope", create=False)
        assert len(idx) == 58
        # The index is where the backend keeps it: the client's home, or the server's.
        where = env.server.settings.home if env.server else env.client.context.settings.home
        assert VectorIndex.list(where) == ["docs"]
        # A pipeline on this client searches the same index.
        if not lance:
            p = Pipeline(
                [RetrieveStep("retrieve", "docs", query="{{ question }}", k=1, mode="keyword")],
                name="kw",
                inputs=["question"],
                outputs=["retrieve"],
            )
            p.context = RunContext(client=env.client)
            assert p({"question": "kettles?"})["retrieve"] == []  # d7 no longer says so
            assert p({"question": "moved"})["retrieve"][0]["id"] == "d7"
        ix.drop("docs")
        assert ix.list() == []
        with pytest.raises(NotFound):
            ix.info("docs")
        with pytest.raises(NotFound):
            idx.search(x[0], 1)
