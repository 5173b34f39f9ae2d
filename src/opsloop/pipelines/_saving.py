"""Writing a pipeline as a ``pipeline``-flavor model folder (spec, descriptor, corpus copies)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.pipelines._tools import LocalCorpusSearch
from opsloop.registry.flavors import prepare_folder, write_descriptor

__all__ = ["CORPUS_DIR", "PIPELINE_FILE", "write_pipeline_folder"]

PIPELINE_FILE = "pipeline.yaml"
CORPUS_DIR = "corpus"


def write_pipeline_folder(
    path: str | os.PathLike[str], pipeline: Any, *, overwrite: bool = False
) -> Path:
    """Write ``pipeline`` (a ``Pipeline``) as a ``pipeline``-flavor model folder."""
    spec = pipeline.to_dict()  # PipelineInvalid before anything is written
    folder = prepare_folder(path, overwrite=overwrite)
    for t in spec.get("tools", []):
        tool = pipeline.tools[t["name"]]
        if isinstance(tool, LocalCorpusSearch) and tool.path is not None:
            src = tool.path
            dest = folder / CORPUS_DIR / t["name"]
            if src.is_dir():
                shutil.copytree(src, dest)
            elif src.is_file():
                dest.mkdir(parents=True)
                shutil.copy2(src, dest / src.name)
            else:
                raise InvalidArgument(f"tool {t['name']!r}: corpus {src} does not exist")
            t["path"] = f"{CORPUS_DIR}/{t['name']}" + ("" if src.is_dir() else f"/{src.name}")
    import yaml

    (folder / PIPELINE_FILE).write_text(
        yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8"
    )
    write_descriptor(folder, "pipeline", pipeline.signature(), _metadata(pipeline))
    return folder


def _metadata(pipeline: Any) -> dict[str, Any]:
    return {
        "pipeline_file": PIPELINE_FILE,
        "pipeline_name": pipeline.name,
        "inputs": list(pipeline.inputs),
        "outputs": list(pipeline.outputs),
        "steps": [{"name": s.name, "type": s.type} for s in pipeline.steps],
    }
