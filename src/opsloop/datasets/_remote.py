"""``RemoteDatasets``: the datasets backend over HTTP against ``opsloop server``.

A version is built where the data is (the client); its blobs the server lacks
are uploaded to the shared content-addressed blob API (``upload_missing_blobs``
over ``/api/v1/blobs``; the server checks the digest), then its metadata is posted and the server
checks the blobs are there. Reading data back downloads a blob once into
``<home>/cache/blobs``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.core import upload_missing_blobs
from opsloop.datasets._backend import cache_dir
from opsloop.datasets._queries import check_dataset_name
from opsloop.datasets._service import VersionManifest
from opsloop.datasets._storage import BlobFiles
from opsloop.datasets.entities import (
    Dataset,
    DatasetDiff,
    DatasetVersion,
    DatasetVersionInfo,
    RowsPage,
    RunInput,
    VersionRun,
)
from opsloop.errors import InvalidArgument, NotFound, Unavailable

if TYPE_CHECKING:
    from opsloop.core import Context, Transport
    from opsloop.datasets._build import BuiltVersion

__all__ = ["RemoteDatasets"]


def _q(ref: str) -> str:
    return quote(ref, safe="@")


class RemoteDatasets:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport
        self.files = BlobFiles(cache_dir(ctx), fetch=self._fetch_blob)

    # ------------------------------------------------------------------ datasets

    def create_dataset(
        self, name: str, *, kind: str = "tabular", description: str = "", created_by: str = ""
    ) -> Dataset:
        body = {"name": name, "kind": kind, "description": description, "created_by": created_by}
        return Dataset.model_validate(self._t.post("/datasets", body))

    def get_dataset(self, name: str) -> Dataset:
        check_dataset_name(name)
        return Dataset.model_validate(self._t.get(f"/datasets/{quote(name)}"))

    def list_datasets(self) -> list[Dataset]:
        return [Dataset.model_validate(d) for d in self._t.get("/datasets")["datasets"]]

    def list_versions(self, name: str) -> list[DatasetVersionInfo]:
        check_dataset_name(name)
        data = self._t.get(f"/datasets/{quote(name)}/versions")
        return [DatasetVersionInfo.model_validate(v) for v in data["versions"]]

    def get_version(self, ref: str) -> DatasetVersion:
        return DatasetVersion.model_validate(self._t.get(f"/dataset-versions/{_q(ref)}"))

    # ------------------------------------------------------------------ storing

    def store_built(
        self,
        name: str,
        built: BuiltVersion,
        *,
        message: str = "",
        parent_version_id: str | None = None,
        derivation: str = "",
        created_by: str = "",
        description: str = "",
    ) -> tuple[DatasetVersion, bool]:
        """Upload the blobs the server lacks, then post the version's metadata."""
        found = self._find(name, built.content_digest)
        if found is not None:
            return found, False
        upload_missing_blobs(self._t, {b.digest: b.path for b in built.blobs})
        manifest = VersionManifest.model_validate(
            built.manifest(
                message=message, parent_version_id=parent_version_id, derivation=derivation
            )
        )
        body = {
            "manifest": manifest.model_dump(mode="json"),
            "created_by": created_by,
            "description": description,
        }
        data = self._t.post(f"/datasets/{quote(name)}/versions", body)
        return DatasetVersion.model_validate(data["version"]), bool(data.get("created", True))

    def _find(self, name: str, digest: str) -> DatasetVersion | None:
        try:
            data = self._t.get(f"/datasets/{quote(name)}/versions", {"content_digest": digest})
        except NotFound:
            return None
        if not data["versions"]:
            return None
        return self.get_version(data["versions"][0]["id"])

    def _fetch_blob(self, digest: str) -> Iterator[bytes]:
        import httpx  # lazy: only a remote read of a blob not yet cached needs it

        try:
            with self._t.stream("GET", f"/blobs/{digest}") as resp:
                yield from resp.iter_bytes(1 << 20)
        except httpx.TransportError as exc:
            raise Unavailable(f"download of blob {digest} failed: {exc}") from exc

    # ------------------------------------------------------------------ reading

    def rows(
        self,
        ref: str,
        *,
        offset: int = 0,
        limit: int = 100,
        columns: list[str] | None = None,
        table: str = "data",
    ) -> RowsPage:
        params: dict[str, Any] = {"offset": offset, "limit": limit, "table": table}
        if columns is not None:
            params["columns"] = columns
        return RowsPage.model_validate(self._t.get(f"/dataset-versions/{_q(ref)}/rows", params))

    def diff(
        self, base: str, other: str, *, key: str | None = None, max_examples: int = 10
    ) -> DatasetDiff:
        params: dict[str, Any] = {"other": other, "max_examples": max_examples}
        if key is not None:
            params["key"] = key
        return DatasetDiff.model_validate(self._t.get(f"/dataset-versions/{_q(base)}/diff", params))

    def split(
        self,
        ref: str,
        fractions: Mapping[str, float],
        *,
        seed: int = 0,
        stratify: str | None = None,
        names: Mapping[str, str] | None = None,
        created_by: str = "",
    ) -> dict[str, DatasetVersion]:
        body = {
            "fractions": dict(fractions),
            "seed": seed,
            "stratify": stratify,
            "names": dict(names or {}),
            "created_by": created_by,
        }
        data = self._t.post(f"/dataset-versions/{_q(ref)}/splits", body)
        return {k: DatasetVersion.model_validate(v) for k, v in data["splits"].items()}

    def children(self, ref: str) -> list[DatasetVersionInfo]:
        data = self._t.get(f"/dataset-versions/{_q(ref)}/children")
        return [DatasetVersionInfo.model_validate(v) for v in data["versions"]]

    # ------------------------------------------------------------------ lineage

    def log_input(self, run_id: str, ref: str, context: str = "train") -> RunInput:
        if not isinstance(run_id, str) or not run_id:
            raise InvalidArgument(f"not a run id: {run_id!r}")
        body = {"dataset_version": ref, "context": context}
        path = f"/runs/{quote(run_id, safe='')}/inputs"
        return RunInput.model_validate(self._t.post(path, body, idempotent=True))

    def run_inputs(self, run_id: str) -> list[RunInput]:
        data = self._t.get(f"/runs/{quote(run_id, safe='')}/inputs")
        return [RunInput.model_validate(i) for i in data["inputs"]]

    def version_runs(self, ref: str, *, include_deleted: bool = False) -> list[VersionRun]:
        data = self._t.get(
            f"/dataset-versions/{_q(ref)}/runs", {"include_deleted": include_deleted}
        )
        return [VersionRun.model_validate(x) for x in data["runs"]]
