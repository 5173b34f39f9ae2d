"""Run artifacts: files and folders stored as content-addressed blobs.

The blob is written (and flushed) before the row that names it is committed,
so a crash between the two leaves at most an unreferenced blob, never a row
pointing at nothing.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa

from opsloop.errors import InvalidArgument, NotFound
from opsloop.store import ArtifactStore, Database, now_ms, upsert
from opsloop.tracking import _validation as V
from opsloop.tracking._tables import artifacts, runs
from opsloop.tracking.entities import ArtifactInfo

MAX_FILES_PER_FOLDER_UPLOAD = 100_000


def guess_media_type(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    extra = {
        ".md": "text/markdown",
        ".jsonl": "application/jsonl",
        ".yaml": "application/yaml",
        ".yml": "application/yaml",
        ".parquet": "application/vnd.apache.parquet",
        ".log": "text/plain",
        ".py": "text/x-python",
        ".tsv": "text/tab-separated-values",
    }
    if ext in extra:
        return extra[ext]
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


class ArtifactService:
    def __init__(self, db: Database, store: ArtifactStore, *, max_bytes: int | None = None) -> None:
        self.db = db
        self.store = store
        self.max_bytes = max_bytes

    def _require_run(self, conn: sa.Connection, run_id: str) -> None:
        row = conn.execute(sa.select(runs.c.lifecycle_stage).where(runs.c.id == run_id)).first()
        if row is None or row.lifecycle_stage != "active":
            raise NotFound(f"run {run_id!r} does not exist", details={"run_id": run_id})

    def put_stream(
        self, run_id: str, path: str, stream: BinaryIO, media_type: str | None = None
    ) -> ArtifactInfo:
        """Store one file's bytes under ``path`` in the run's artifacts (replacing any earlier one)."""
        V.check_id("run id", run_id)
        path = V.artifact_path(path)
        with self.db.read() as conn:
            self._require_run(conn, run_id)
        blob = self.store.put_stream(stream, max_bytes=self.max_bytes)
        mt = media_type or guess_media_type(path)
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            self._check_no_clash(conn, run_id, path)
            upsert(
                conn,
                artifacts,
                [
                    {
                        "run_id": run_id,
                        "path": path,
                        "digest": blob.digest,
                        "size": blob.size,
                        "media_type": mt,
                        "created_at": now_ms(),
                    }
                ],
                ["run_id", "path"],
                ["digest", "size", "media_type", "created_at"],
            )
        return ArtifactInfo(
            path=path, is_dir=False, size=blob.size, digest=blob.digest, media_type=mt
        )

    def _check_no_clash(self, conn: sa.Connection, run_id: str, path: str) -> None:
        # A file may not sit where a folder is, nor inside a file.
        prefix = path + "/"
        if conn.execute(
            sa.select(artifacts.c.path)
            .where(
                artifacts.c.run_id == run_id, artifacts.c.path.startswith(prefix, autoescape=True)
            )
            .limit(1)
        ).first():
            raise InvalidArgument(f"artifact path {path!r} is a folder in this run")
        parts = path.split("/")
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if (
            parents
            and conn.execute(
                sa.select(artifacts.c.path)
                .where(artifacts.c.run_id == run_id, artifacts.c.path.in_(parents))
                .limit(1)
            ).first()
        ):
            raise InvalidArgument(f"a parent of artifact path {path!r} is a file in this run")

    def log_file(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo:
        p = Path(local_path)
        if not p.is_file():
            raise InvalidArgument(f"{p} is not a file")
        dest = V.artifact_path(artifact_path, allow_empty=True)
        target = f"{dest}/{p.name}" if dest else p.name
        with open(p, "rb") as fh:
            return self.put_stream(run_id, target, fh)

    def log_dir(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidArgument(f"{root} is not a folder")
        dest = V.artifact_path(artifact_path, allow_empty=True)
        out = []
        files = sorted(f for f in root.rglob("*") if f.is_file())
        if len(files) > MAX_FILES_PER_FOLDER_UPLOAD:
            raise InvalidArgument(f"{root} holds more than {MAX_FILES_PER_FOLDER_UPLOAD} files")
        for f in files:
            rel = f.relative_to(root).as_posix()
            with open(f, "rb") as fh:
                out.append(self.put_stream(run_id, f"{dest}/{rel}" if dest else rel, fh))
        return out

    def list(self, run_id: str, path: str = "", *, recursive: bool = False) -> list[ArtifactInfo]:
        """The files and folders directly under ``path`` (everything below with ``recursive``)."""
        V.check_id("run id", run_id)
        path = V.artifact_path(path, allow_empty=True)
        prefix = path + "/" if path else ""
        with self.db.read() as conn:
            row = conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"run {run_id!r} does not exist", details={"run_id": run_id})
            q = sa.select(artifacts).where(artifacts.c.run_id == run_id)
            if prefix:
                q = q.where(artifacts.c.path.startswith(prefix, autoescape=True))
            rows = conn.execute(q.order_by(artifacts.c.path)).all()
            if path and not rows:
                exact = conn.execute(
                    sa.select(artifacts).where(
                        artifacts.c.run_id == run_id, artifacts.c.path == path
                    )
                ).first()
                if exact is not None:
                    return [self._info(exact)]
        if recursive:
            return [self._info(r) for r in rows]
        seen_dirs: dict[str, int] = {}
        out: list[ArtifactInfo] = []
        for r in rows:
            rest = r.path[len(prefix) :]
            if "/" in rest:
                d = prefix + rest.split("/", 1)[0]
                seen_dirs[d] = seen_dirs.get(d, 0) + r.size
            else:
                out.append(self._info(r))
        out.extend(ArtifactInfo(path=d, is_dir=True, size=size) for d, size in seen_dirs.items())
        return sorted(out, key=lambda a: (not a.is_dir, a.path))

    @staticmethod
    def _info(r: sa.Row[object]) -> ArtifactInfo:
        return ArtifactInfo(
            path=r.path, is_dir=False, size=r.size, digest=r.digest, media_type=r.media_type
        )

    def stat(self, run_id: str, path: str) -> ArtifactInfo:
        V.check_id("run id", run_id)
        path = V.artifact_path(path)
        with self.db.read() as conn:
            r = conn.execute(
                sa.select(artifacts).where(artifacts.c.run_id == run_id, artifacts.c.path == path)
            ).first()
        if r is None:
            raise NotFound(
                f"run {run_id!r} has no artifact {path!r}", details={"run_id": run_id, "path": path}
            )
        return self._info(r)

    def delete(self, run_id: str, path: str = "") -> int:
        """Remove a file, or a folder with everything below it, from the run's artifacts.

        Returns how many files were removed (``NotFound`` when none is at
        ``path``). The blobs stay until ``opsloop gc`` finds no row naming them.
        """
        V.check_id("run id", run_id)
        path = V.artifact_path(path, allow_empty=True)
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            where = [artifacts.c.run_id == run_id]
            if path:
                where.append(
                    sa.or_(
                        artifacts.c.path == path,
                        artifacts.c.path.startswith(path + "/", autoescape=True),
                    )
                )
            removed = conn.execute(artifacts.delete().where(*where)).rowcount
        if path and not removed:
            raise NotFound(
                f"run {run_id!r} has no artifact {path!r}", details={"run_id": run_id, "path": path}
            )
        return int(removed or 0)

    def open(self, run_id: str, path: str) -> tuple[ArtifactInfo, BinaryIO]:
        info = self.stat(run_id, path)
        assert info.digest is not None
        return info, self.store.open(info.digest)

    def download(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Copy an artifact file, or a folder with everything below it, into ``dest``."""
        path = V.artifact_path(path, allow_empty=True)
        dest_p = Path(dest)
        try:
            info = self.stat(run_id, path) if path else None
        except NotFound:
            info = None
        if info is not None:
            target = dest_p / Path(path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy_blob(info.digest or "", target)
            return target
        items = self.list(run_id, path, recursive=True)
        if not items:
            raise NotFound(f"run {run_id!r} has no artifact {path!r}")
        base = dest_p / (Path(path).name if path else "")
        for it in items:
            rel = it.path[len(path) + 1 :] if path else it.path
            target = base / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy_blob(it.digest or "", target)
        return base

    def _copy_blob(self, digest: str, target: Path) -> None:
        tmp = target.with_name(target.name + ".part")
        with open(tmp, "wb") as out:
            for block in self.store.iter_chunks(digest):
                out.write(block)
        os.replace(tmp, target)
