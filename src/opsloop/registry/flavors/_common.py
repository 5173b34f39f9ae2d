"""Helpers the flavor modules share: versions of libraries, digests, folder preparation."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors._base import DESCRIPTOR_FILE, ModelDescriptor
from opsloop.registry.flavors._signature import Signature, infer_signature


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (those that are installed)."""
    out = {}
    for n in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[n] = metadata.version(n)
    return out


def prepare_folder(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """An empty folder to save a model into; refuses to mix into a non-empty one."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise InvalidArgument(f"{p} exists and is not a folder")
        if any(p.iterdir()):
            if not overwrite:
                raise InvalidArgument(f"{p} is not empty; pass overwrite=True or use a new folder")
            shutil.rmtree(p)
    p.mkdir(parents=True, exist_ok=True)
    return p


def resolve_signature(
    signature: Signature | dict[str, Any] | None, input_example: Any, output_example: Any
) -> Signature | None:
    if isinstance(signature, dict):
        return Signature.from_dict(signature)
    if signature is not None:
        return signature
    if input_example is not None:
        return infer_signature(input_example, output_example)
    return None


def write_descriptor(
    folder: Path, flavor: str, signature: Signature | None, metadata: dict[str, Any]
) -> Path:
    ModelDescriptor(flavor, signature, metadata).write(folder)
    return folder


def file_digest(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1024 * 1024)
            if not block:
                break
            h.update(block)
    return "sha256:" + h.hexdigest()


def require_files(files: list[str], needed: list[str], flavor: str) -> None:
    missing = [f for f in needed if f not in files]
    if missing:
        raise InvalidArgument(
            f"a {flavor} model needs the file(s) {missing}; the version holds {sorted(files)[:20]}",
            details={"missing": missing},
        )


def model_files(files: list[str]) -> list[str]:
    return [f for f in files if f != DESCRIPTOR_FILE]
