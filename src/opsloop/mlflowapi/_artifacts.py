"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts``) over opsloop's run artifacts.

An MLflow artifact path names what it belongs to:

- ``<experiment id>/<run id>/artifacts/<path>``: a run's artifact;
- ``<experiment id>/models/m-<run id>/artifacts/<path>``: a logged model's
  (the artifacts of its run, see ``_tracking``);
- ``_registry/<model name>/<version>/<path>``: a registered version's files
  (read only; what ``get-download-uri`` points at).

Uploads become content-addressed blobs with a row in the run's artifacts, as
opsloop's own uploads do. Multipart uploads (what the MLflow client uses for
large files when ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`` is set) keep their
parts in a temporary folder until ``complete`` joins them into one blob.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from opsloop.core import Context
from opsloop.errors import InvalidArgument, NotFound
from opsloop.mlflowapi._logged_models import MODEL_PREFIX
from opsloop.mlflowapi._registry import registry
from opsloop.mlflowapi._wire import MlflowError
from opsloop.tracking import ArtifactInfo, artifact_service

__all__ = ["Target", "delete", "list_files", "open_file", "put", "target"]

REGISTRY = "_registry"
MPU = "_mpu"


@dataclass(frozen=True)
class Target:
    """What an artifact path names: a run's file or folder, or a registered version's."""

    run_id: str | None
    path: str
    model: tuple[str, int] | None = None


def target(raw: str) -> Target:
    parts = [p for p in raw.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid artifact path: {raw!r}")
    if len(parts) >= 3 and parts[0] == REGISTRY:
        if not parts[2].isdigit():
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid artifact path: {raw!r}")
        return Target(None, "/".join(parts[3:]), (parts[1], int(parts[2])))
    if len(parts) >= 3 and parts[2] == "artifacts":
        return Target(parts[1], "/".join(parts[3:]))
    if (
        len(parts) >= 4
        and parts[1] == "models"
        and parts[2].startswith(MODEL_PREFIX)
        and parts[3] == "artifacts"
    ):
        return Target(parts[2][len(MODEL_PREFIX) :], "/".join(parts[4:]))
    raise MlflowError(
        "RESOURCE_DOES_NOT_EXIST",
        f"No artifacts at {raw!r}: opsloop serves <experiment id>/<run id>/artifacts/..., "
        "<experiment id>/models/<model id>/artifacts/... and _registry/<name>/<version>/...",
    )


def _writable(t: Target) -> str:
    if t.run_id is None:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", "a registered version's files cannot be changed"
        )
    if not t.path:
        raise MlflowError("INVALID_PARAMETER_VALUE", "an artifact upload needs a file path")
    return t.run_id


def put(ctx: Context, raw: str, stream: BinaryIO, media_type: str | None) -> ArtifactInfo:
    t = target(raw)
    rid = _writable(t)
    return ctx.room(artifact_service).put_stream(rid, t.path, stream, media_type)


def delete(ctx: Context, raw: str) -> None:
    t = target(raw)
    if t.run_id is None:
        _writable(t)
    assert t.run_id is not None
    ctx.room(artifact_service).delete(t.run_id, t.path)


def open_file(ctx: Context, raw: str) -> tuple[int, BinaryIO]:
    """(size, an open stream) of one file."""
    t = target(raw)
    if t.model is not None:
        entry, fh = ctx.room(registry).open_file(t.model[0], t.model[1], t.path)
        return entry.size, fh
    assert t.run_id is not None
    info, fh = ctx.room(artifact_service).open(t.run_id, t.path)
    return info.size or 0, fh


def list_files(ctx: Context, raw: str) -> list[dict[str, Any]]:
    """MLflow's file infos directly under a path, relative to it (a file lists itself)."""
    t = target(raw)
    if t.model is not None:
        files = {
            p: e.size
            for p, e in ctx.room(registry).get_version(t.model[0], t.model[1]).files.items()
        }
        return _listing(files, t.path)
    assert t.run_id is not None
    try:
        infos = ctx.room(artifact_service).list(t.run_id, t.path)
    except InvalidArgument as exc:
        raise MlflowError("INVALID_PARAMETER_VALUE", exc.message) from None
    prefix = t.path + "/" if t.path else ""
    out = []
    for a in infos:
        rel = a.path[len(prefix) :] if a.path.startswith(prefix) else posixpath.basename(a.path)
        item: dict[str, Any] = {"path": rel, "is_dir": a.is_dir}
        if not a.is_dir and a.size is not None:
            item["file_size"] = a.size
        out.append(item)
    return out


def _listing(files: dict[str, int], path: str) -> list[dict[str, Any]]:
    if path in files:
        return [{"path": posixpath.basename(path), "is_dir": False, "file_size": files[path]}]
    prefix = path + "/" if path else ""
    seen: dict[str, dict[str, Any]] = {}
    for p, size in sorted(files.items()):
        if not p.startswith(prefix):
            continue
        head, sep, _ = p[len(prefix) :].partition("/")
        if sep:
            seen.setdefault(head, {"path": head, "is_dir": True})
        else:
            seen[head] = {"path": head, "is_dir": False, "file_size": size}
    if path and not seen:
        raise NotFound(f"no artifacts under {path!r}")
    return list(seen.values())


# ---------------------------------------------------------------------------- multipart uploads


def _mpu_root() -> Path:
    return Path(tempfile.gettempdir()) / "opsloop-mlflow-mpu"


def _upload_dir(upload_id: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid upload id {upload_id!r}")
    return _mpu_root() / upload_id


def mpu_create(ctx: Context, raw: str, num_parts: int, base_url: str) -> dict[str, Any]:
    t = target(raw)
    rid = _writable(t)
    ctx.room(artifact_service).list(rid, "")  # NotFound for a missing run, before any part
    if not 1 <= num_parts <= 10_000:
        raise MlflowError("INVALID_PARAMETER_VALUE", "num_parts must be between 1 and 10000")
    upload_id = uuid.uuid4().hex
    folder = _upload_dir(upload_id)
    folder.mkdir(parents=True)
    (folder / "target").write_text(raw)
    base = base_url.rstrip("/") + f"/api/2.0/mlflow-artifacts/artifacts/{MPU}/{upload_id}"
    return {
        "upload_id": upload_id,
        "credentials": [
            {"url": f"{base}/{n}", "part_number": n, "headers": {}} for n in range(1, num_parts + 1)
        ],
    }


def mpu_part_path(raw: str) -> Path | None:
    """The file a part upload (``_mpu/<upload id>/<n>``) goes to, or None for other paths."""
    parts = [p for p in raw.split("/") if p]
    if len(parts) != 3 or parts[0] != MPU:
        return None
    if not parts[2].isdigit():
        raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid part number")
    folder = _upload_dir(parts[1])
    if not folder.is_dir():
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No multipart upload {parts[1]!r}")
    return folder / f"part-{int(parts[2]):05d}"


def mpu_complete(ctx: Context, raw: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
    folder = _upload_dir(upload_id)
    if not folder.is_dir() or (folder / "target").read_text() != raw:
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST", f"No multipart upload {upload_id!r} for {raw!r}"
        )
    numbers = sorted(int(p.get("part_number", 0)) for p in parts)
    files = [folder / f"part-{n:05d}" for n in numbers]
    missing = [f.name for f in files if not f.is_file()]
    if not numbers or missing:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"missing parts: {missing or 'all'}")
    joined = folder / "joined"
    with open(joined, "wb") as out:
        for f in files:
            with open(f, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    try:
        with open(joined, "rb") as fh:
            put(ctx, raw, fh, None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def mpu_abort(raw: str, upload_id: str) -> None:
    folder = _upload_dir(upload_id)
    shutil.rmtree(folder, ignore_errors=True)
    _ = raw


def file_chunks(fh: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    try:
        while True:
            chunk = fh.read(size)
            if not chunk:
                break
            yield chunk
    finally:
        fh.close()
