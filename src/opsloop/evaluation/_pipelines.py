"""Pipelines as evaluation candidates: a ``Pipeline`` object or a registered ``pipeline`` version.

The pipeline gets only the columns it declares as inputs (extra dataset
columns such as the reference would be refused by it), its prediction is one
of its declared outputs, and the tokens and cost of every model call inside
it are read from its own ``llm`` spans: while it is evaluated its spans pass
through a :class:`UsageTap`, which sums the usage per trace and forwards each
span unchanged to where it was going.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
import time
from typing import Any

from opsloop.errors import InvalidArgument, OpsloopError, PipelineInvalid
from opsloop.evaluation._candidate import OUTPUT_KEYS, Candidate, Outcome, version_of
from opsloop.evaluation._rooms import tracing_of
from opsloop.pipelines import LoadedPipeline, RunContext
from opsloop.tracing import PriceTable, Span, Tracer, get_tracer
from opsloop.tracking import Tracking

log = logging.getLogger("opsloop.evaluation")
_IN = "gen_ai.usage.input_tokens"
_OUT = "gen_ai.usage.output_tokens"


class UsageTap(Tracer):
    """A tracer in front of another: sums model usage per trace, then forwards the span.

    ``inner`` None means the process default tracer, resolved at each span as
    the pipeline itself would. The tap has no exporter of its own, so it does
    not call ``Tracer.__init__``.
    """

    def __init__(self, inner: Tracer | None, prices: PriceTable | None) -> None:
        self._inner = inner
        self._prices = prices
        self._lock = threading.Lock()
        self._usage: dict[str, list[Any]] = {}
        # Always on: usage is counted even when the inner tracer drops spans.
        self.enabled = True

    @property
    def inner(self) -> Tracer:
        if self._inner is not None:
            return self._inner
        return get_tracer()

    def masker(self) -> Any:
        return self.inner.masker()

    def export(self, span: Span) -> None:
        a = span.attributes
        if span.kind == "llm" and (_IN in a or _OUT in a):
            tin, tout = _count(a.get(_IN)), _count(a.get(_OUT))
            cost = a.get("gen_ai.usage.cost")
            if not isinstance(cost, int | float) and self._prices is not None:
                model = a.get("gen_ai.response.model") or a.get("gen_ai.request.model")
                cost = self._prices.cost(str(model) if model else None, tin, tout)
            with self._lock:
                acc = self._usage.setdefault(span.trace_id, [0, 0, None])
                acc[0] += tin or 0
                acc[1] += tout or 0
                if isinstance(cost, int | float):
                    acc[2] = (acc[2] or 0.0) + float(cost)
        self.inner.export(span)

    def pop(self, trace_id: str | None) -> tuple[int, int, float | None] | None:
        """``(input_tokens, output_tokens, cost_usd)`` of one trace, or None without model calls."""
        if trace_id is None:
            return None
        with self._lock:
            acc = self._usage.pop(trace_id, None)
        return None if acc is None else (acc[0], acc[1], acc[2])

    def flush(self) -> int:
        return self.inner.flush()

    def close(self) -> None:
        """Nothing of its own to close: the inner tracer belongs to someone else."""


def _count(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def _prediction_key(pipe: Any, output_key: str | None) -> str:
    outs = [str(k) for k in pipe.outputs]
    if output_key is not None:
        if output_key not in outs:
            raise InvalidArgument(
                f"output_key {output_key!r} is not an output of pipeline {pipe.name!r} "
                f"(it has {outs})",
                details={"output_key": output_key, "outputs": outs},
            )
        return output_key
    if len(outs) == 1:
        return outs[0]
    for key in OUTPUT_KEYS:
        if key in outs:
            return key
    raise InvalidArgument(
        f"pipeline {pipe.name!r} has outputs {outs}; name the prediction with output_key=",
        details={"outputs": outs},
    )


def _digest(pipe: Any) -> str | None:
    try:
        text = pipe.to_yaml()
    except PipelineInvalid:  # a Python step holding a function that cannot be saved
        return None
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def pipeline_candidate(
    obj: Any,
    *,
    client: Tracking,
    cache_dir: Any,
    output_key: str | None,
    owned: bool,
) -> Candidate:
    """A candidate for a ``Pipeline`` or a ``LoadedPipeline`` (``owned``: close it when done).

    A ``Pipeline`` that was never given a context runs on a shallow copy bound
    to the evaluation's client (registry prompts, ``models:/`` specs, spans),
    so nothing of the caller's object changes. A pipeline with its own context
    (and every loaded one) keeps it; its tracer is fronted by the tap until
    the candidate is closed.
    """
    prices = PriceTable.build(client.settings.home, {})
    tags = ["evaluation"]
    if isinstance(obj, LoadedPipeline):
        pipe = obj.pipeline
        spec, version, name = version_of(obj)
        tags = ["pipeline", *([f"{name}/{version}"] if name else []), "evaluation"]
    else:
        pipe, spec, version, name = obj, f"pipeline:{obj.name}", None, None
    key = _prediction_key(pipe, output_key)
    restore: tuple[Any, Any] | None = None
    if isinstance(obj, LoadedPipeline) or getattr(obj, "_context", None) is not None:
        ctx = pipe.context
        tap = UsageTap(ctx.tracer, prices)
        restore = (ctx, ctx.tracer)
        ctx.tracer = tap
    else:
        tap = UsageTap(tracing_of(client).tracer, prices)
        pipe = copy.copy(obj)
        pipe.context = RunContext(client=client, cache_dir=cache_dir, tracer=tap)

    def run(inputs: dict[str, Any]) -> Outcome:
        t = time.perf_counter()
        res = pipe.run(inputs, tags=tags)
        ms = (time.perf_counter() - t) * 1000.0
        usage = tap.pop(res.trace_id)
        o = Outcome(res.outputs.get(key), ms, extra=dict(res.outputs))
        if usage is not None:
            o.input_tokens, o.output_tokens, o.cost_usd = usage
        return o

    def close() -> None:
        if restore is not None:
            restore[0].tracer = restore[1]
        try:
            tap.flush()
        except OpsloopError:
            # Spans stay queued (and spill to disk); a tracing outage must not lose the evaluation.
            log.warning("could not write the evaluated pipeline's spans now", exc_info=True)
        finally:
            if owned:
                obj.close()

    params: dict[str, Any] = {"pipeline": pipe.name, "pipeline_output": key}
    digest = _digest(pipe)
    if digest is not None:
        params["pipeline_digest"] = digest
    return Candidate(
        spec,
        "pipeline",
        run,
        model_name=name,
        model_version=version,
        close=close,
        inputs=list(pipe.inputs),
        params=params,
        tags={"opsloop.eval.pipeline": pipe.name},
    )
