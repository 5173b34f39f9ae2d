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
import threading
from pathlib import Path
from typing import Any

from opsloop.core import Context, context_of
from opsloop.errors import InvalidArgument, OpsloopError
from opsloop.pipelines._context import RunContext
from opsloop.pipelines._pipeline import Pipeline
from opsloop.pipelines._saving import PIPELINE_FILE, write_pipeline_folder
from opsloop.registry.flavors import DESCRIPTOR_FILE, LoadContext, LoadedModel, ModelDescriptor

__all__ = [
    "PIPELINE_FILE",
    "LoadedPipeline",
    "describe",
    "load",
    "prepare_source",
    "save_pipeline",
    "validate",
]

log = logging.getLogger("opsloop.pipelines")


def save_pipeline(path: str | os.PathLike[str], pipeline: Any, *, overwrite: bool = False) -> Path:
    """Save ``pipeline`` (a ``Pipeline``) as a ``pipeline``-flavor model folder."""
    if not isinstance(pipeline, Pipeline):
        raise InvalidArgument(f"save_pipeline takes a Pipeline, got {type(pipeline).__name__}")
    return write_pipeline_folder(path, pipeline, overwrite=overwrite)


def prepare_source(source: Path, folder: Path) -> Path | None:
    """A YAML spec (or a folder holding one, not yet saved) as a self-contained saved folder.

    What ``opsloop pipelines register`` does, for ``Registry.register(name,
    "qa.yaml", flavor="pipeline")`` too: the spec is parsed and checked, and the
    corpora its tools read are copied in beside it. A saved pipeline folder
    (with ``opsloop-model.json``) needs nothing: None.
    """
    spec_file: Path | None = None
    if source.is_file() and source.suffix.lower() in (".yaml", ".yml"):
        spec_file = source
    elif source.is_dir() and not (source / DESCRIPTOR_FILE).exists():
        yamls = sorted(p for p in source.iterdir() if p.suffix.lower() in (".yaml", ".yml"))
        named = source / PIPELINE_FILE
        spec_file = named if named.is_file() else (yamls[0] if len(yamls) == 1 else None)
    if spec_file is None:
        return None
    return write_pipeline_folder(folder, Pipeline.from_yaml(spec_file))


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
    spec_file = (path / str(desc.metadata.get("pipeline_file", PIPELINE_FILE))).resolve()
    if not spec_file.is_relative_to(path.resolve()):
        raise InvalidArgument("the pipeline spec file points outside the model folder")
    tracer = None
    owned = None
    if ctx.client is not None:
        # The loading client may be closed after loading; spans need a context that lives on.
        from opsloop.tracing import Tracing  # lazy: loads sqlalchemy

        owned = Context(context_of(ctx.client).settings)
        tracer = owned.room(Tracing).tracer
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
        owned_client: Context | None = None,
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
