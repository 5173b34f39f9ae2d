"""The ``pipeline`` model flavor: a pipeline saved as a folder, registered, loaded and served.

A saved pipeline holds ``pipeline.yaml`` (the spec), ``opsloop-model.json``
(flavor ``pipeline``, a signature whose inputs are the pipeline's inputs) and
``corpus/<tool>/``, a copy of each folder a ``local_search`` tool reads, so a
registered version is self-contained. Loading parses the YAML (no code is
evaluated; ``python`` steps import their ``module:function`` like pyfunc
models do) and gives a ``LoadedPipeline`` whose ``predict(rows)`` runs the
pipeline once per row, each run one trace, and returns one dict of the
declared outputs per row. ``opsloop serve models:/NAME@ALIAS`` serves it
through ``/invocations``.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument, OpsloopError
from opsloop.registry.flavors import (
    LoadContext,
    LoadedModel,
    ModelDescriptor,
    prepare_folder,
    write_descriptor,
)

__all__ = ["PIPELINE_FILE", "LoadedPipeline", "describe", "load", "save_pipeline", "validate"]

PIPELINE_FILE = "pipeline.yaml"
CORPUS_DIR = "corpus"
log = logging.getLogger("opsloop.pipelines")


def save_pipeline(path: str | os.PathLike[str], pipeline: Any, *, overwrite: bool = False) -> Path:
    """Save ``pipeline`` (a ``Pipeline``) as a ``pipeline``-flavor model folder."""
    from opsloop.pipelines._pipeline import Pipeline
    from opsloop.pipelines._tools import LocalCorpusSearch

    if not isinstance(pipeline, Pipeline):
        raise InvalidArgument(f"save_pipeline takes a Pipeline, got {type(pipeline).__name__}")
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


def describe(files: list[str], options: dict[str, Any]) -> ModelDescriptor:
    """A descriptor for raw files: one YAML pipeline spec (``pipeline.yaml`` or the only .yaml)."""
    ymls = [f for f in files if f.endswith((".yaml", ".yml"))]
    name = PIPELINE_FILE if PIPELINE_FILE in files else (ymls[0] if len(ymls) == 1 else None)
    if name is None:
        raise InvalidArgument(
            f"a pipeline version needs {PIPELINE_FILE} (or exactly one .yaml file); got {sorted(files)[:20]}"
        )
    return ModelDescriptor("pipeline", None, {"pipeline_file": name, **options})


def validate(files: list[str], desc: ModelDescriptor) -> None:
    name = str(desc.metadata.get("pipeline_file", PIPELINE_FILE))
    if name not in files:
        raise InvalidArgument(f"the pipeline version lacks its spec file {name!r}")


def load(path: Path, desc: ModelDescriptor, ctx: LoadContext) -> LoadedModel:
    from opsloop.pipelines._context import RunContext
    from opsloop.pipelines._pipeline import Pipeline

    spec_file = (path / str(desc.metadata.get("pipeline_file", PIPELINE_FILE))).resolve()
    if not spec_file.is_relative_to(path.resolve()):
        raise InvalidArgument("the pipeline spec file points outside the model folder")
    tracer = None
    owned = None
    if ctx.client is not None:
        # The loading client may be closed after loading; spans need a client that lives on.
        from opsloop.sdk import Client

        owned = Client(settings=ctx.client.settings)
        tracer = owned.tracing.tracer
    rc = RunContext(client=owned, cache_dir=ctx.cache_dir, device=ctx.device, tracer=tracer)
    pipeline = Pipeline.from_yaml(spec_file, context=rc)
    sig = desc.signature if desc.signature is not None else pipeline.signature()
    return LoadedPipeline(pipeline, sig, desc.metadata, path=path, owned_client=owned)


class LoadedPipeline(LoadedModel):
    """A loaded pipeline: ``predict(rows)`` runs it per row; ``invoke(dict)`` runs it once."""

    def __init__(
        self,
        pipeline: Any,
        signature: Any,
        metadata: dict[str, Any],
        *,
        path: Path,
        owned_client: Any = None,
    ) -> None:
        super().__init__("pipeline", signature, metadata, path=path)
        self.pipeline = pipeline
        self._owned_client = owned_client
        self._lock = threading.Lock()

    def invoke(self, inputs: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.pipeline.invoke(inputs, **self._trace_fields())
        return result

    def _trace_fields(self) -> dict[str, Any]:
        tags = ["pipeline"]
        if self.version is not None:
            tags.append(f"{self.version.name}/{self.version.version}")
        return {"tags": tags}

    def _predict(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        names = [c for c in columns if c in self.pipeline.input_types]
        out = []
        try:
            for i in range(n):
                row = {k: columns[k][i] for k in names if columns[k][i] is not None}
                out.append(self.pipeline.invoke(row, **self._trace_fields()))
        finally:
            self._flush()
        return out

    def _flush(self) -> None:
        tracer = self.pipeline.context.tracer
        if tracer is None:
            return
        try:
            tracer.flush()
        except OpsloopError:
            # Spans stay queued (and spill to disk); a tracing outage must not fail predictions.
            log.warning("could not write pipeline spans now; they stay queued", exc_info=True)

    def close(self) -> None:
        self.pipeline.context.close()
        if self._owned_client is not None:
            tracer = self.pipeline.context.tracer
            if tracer is not None:
                tracer.close()
            self._owned_client.close()
            self._owned_client = None
