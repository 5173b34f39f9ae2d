"""``rag_objective``: tune a real retrieval QA pipeline against an evaluation metric.

Each trial builds ``retrieve -> registry prompt version -> LLM`` with
``opsloop.pipelines``, answers every question, and scores the answers with an
``opsloop.evaluation`` metric. The trial params are ``chunk_size`` (words per
chunk; each size gets its own vector index under the home, built once with the
bundled MiniLM), ``top_k``, ``temperature`` and ``prompt_version`` (version
numbers of one registered prompt). ``context_tokens``, ``input_tokens``,
``output_tokens`` and ``latency_ms`` come back too, so a study can minimise
one of them as a second objective.

Nothing heavy is imported here at module level: the pipeline, the metric
registry, numpy and the models load on first use.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, context_of
from opsloop.errors import InvalidArgument
from opsloop.pipelines import (
    FILTERS,
    LLMStep,
    Pipeline,
    PromptStep,
    RetrieveStep,
    RunContext,
)
from opsloop.prompts import Prompts, make_ref
from opsloop.retrieval import VectorIndex, check_name, index_chunks
from opsloop.tuning._rag_parts import (
    CONTEXT_METRICS,
    DEFAULT_CHUNK,
    DEFAULT_TOP_K,
    KNOWN_INPUTS,
    PARAMS,
    RAG_PIPELINE_SPACE,
    RagAnswer,
    RagResult,
    RagSettings,
    check_values,
    check_variables,
    chunk_corpus,
    load_corpus,
    load_questions,
    space_error,
    token_counter,
    values_of,
    version_of,
)
from opsloop.tuning._space import Categorical, Float, SearchSpace, check_space

if TYPE_CHECKING:
    import os

    from opsloop.evaluation import Metric
    from opsloop.tracking import Tracking
    from opsloop.tuning._trial import Trial

__all__ = [
    "RAG_PIPELINE_SPACE",
    "RagAnswer",
    "RagObjective",
    "RagResult",
    "RagSettings",
    "rag_objective",
]


class RagObjective:
    """An objective for ``study.optimize`` that tunes a real RAG pipeline
    (``rag_objective`` is this class).

    ``corpus``: a folder of ``.md``/``.txt``/``.rst`` files, or ``(path, text)`` pairs.
    ``questions``: rows ``{question, answer}`` (``answer`` a text or a list of accepted
    texts), pairs, or a ``.jsonl``/``.json`` file. ``provider``: a provider spec or a chat
    model object. ``prompt``: a registered prompt (``prompts:/NAME``) whose variables are
    ``question`` and ``context``; its version numbers are the ``prompt_version`` candidates
    (``prompts:/NAME@label`` or ``/N`` picks the version used when the space leaves it out).
    ``metric``: an ``opsloop.evaluation`` metric name or ``Metric`` (``contains``,
    ``token_f1``, ``exact_match``, ``context_recall``, ...). ``client``: where prompts,
    traces and indexes live (default: the trial's client). ``space``: checked now, against
    the registered prompt versions too, so a bad space fails before any trial
    (``objective.space`` holds the checked copy). Each trial returns the metric (under its
    run metric key) and ``context_tokens``, ``input_tokens``, ``output_tokens``,
    ``latency_ms`` (means per question), logs them, tags its index, prompt and settings, and
    stores every answer as ``tuning/answers.jsonl``.

    Call it with a ``Trial`` (what ``study.optimize`` does), or ``evaluate(params)``
    to score one set of settings outside a study (the same code path).
    """

    def __init__(
        self,
        corpus: Any,
        questions: Any,
        *,
        provider: Any = "local:smollm2",
        prompt: str = "prompts:/rag-qa",
        metric: Any = "contains",
        client: Tracking | Context | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        max_tokens: int = 32,
        embedder: str | None = None,
        chunk_overlap: int = 0,
        seed: int = 0,
        index_prefix: str = "tune-rag",
        space: Mapping[str, Any] | None = None,
        device: str | None = None,
    ) -> None:
        from opsloop.evaluation import metric_key  # lazy: loads sqlalchemy

        self.docs = load_corpus(corpus)
        self.questions = load_questions(questions)
        if (
            isinstance(max_tokens, bool)
            or not isinstance(max_tokens, int)
            or not 1 <= max_tokens <= 8192
        ):
            raise InvalidArgument(f"max_tokens must be an integer in 1..8192, got {max_tokens!r}")
        if (
            isinstance(chunk_overlap, bool)
            or not isinstance(chunk_overlap, int)
            or chunk_overlap < 0
        ):
            raise InvalidArgument(
                f"chunk_overlap must be a non-negative integer, got {chunk_overlap!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidArgument(f"seed must be an integer, got {seed!r}")
        if embedder is not None and not isinstance(embedder, str):
            raise InvalidArgument("embedder must be a provider spec or models:/ URI")
        if provider is None or (
            not isinstance(provider, str) and not callable(getattr(provider, "chat", None))
        ):
            raise InvalidArgument("provider must be a provider spec or an object with .chat()")
        self.ref = make_ref(prompt) if isinstance(prompt, str) else None
        if self.ref is None:
            raise InvalidArgument(f"prompt must be a prompt name or prompts:/ URI, got {prompt!r}")
        check_name(f"{index_prefix}-0")
        self.provider = provider
        self.metric = self._check_metric(metric)
        self.metric_key = metric_key(self.metric.name)
        self.max_tokens = max_tokens
        self.embedder = embedder
        self.chunk_overlap = chunk_overlap
        self.seed = seed
        self.index_prefix = index_prefix
        self.cache_dir = cache_dir
        self.device = device
        self._client = client
        self._init_state()
        self.space: SearchSpace | None = None
        if space is not None:
            self.space = self.check_space(space, client=client)

    def _init_state(self) -> None:
        self._lock = threading.RLock()
        self._size_locks: dict[int, threading.Lock] = {}
        self._ready: set[str] = set()  # indexes known to hold every chunk
        self._ctx: tuple[Any, RunContext] | None = None
        self._versions: dict[int, Any] | None = None
        self._default_version: int | None = None
        self._checked_studies: set[str] = set()

    # Locks, loaded models and the client stay behind when the objective is pickled
    # for process or Ray workers; each worker opens its own. The metric travels by
    # name (its function may be a lambda) and is looked up again on arrival.
    def __getstate__(self) -> dict[str, Any]:
        if not isinstance(self.provider, str):
            raise InvalidArgument(
                "an objective holding a provider object cannot go to other processes; "
                "give the provider as a spec"
            )
        keep = ("docs", "questions", "provider", "ref", "metric_key", "max_tokens", "embedder",
                "chunk_overlap", "seed", "index_prefix", "cache_dir", "device", "space")  # fmt: skip
        state = {k: self.__dict__[k] for k in keep}
        state["metric"] = (self.metric.name, dict(self.metric.params))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from opsloop.evaluation.metrics import get_metric  # lazy: loads numpy

        name, params = state.pop("metric")
        self.__dict__.update(state)
        m = get_metric(name)
        self.metric = m.bind(**params) if params else m
        self._client = None
        self._init_state()

    # -- checks ----------------------------------------------------------------------

    @staticmethod
    def _check_metric(metric: Any) -> Metric:
        from opsloop.evaluation.metrics import Metric, get_metric  # lazy: loads numpy

        m = metric if isinstance(metric, Metric) else get_metric(str(metric))
        extra = set(m.inputs) - KNOWN_INPUTS
        if extra:
            raise InvalidArgument(
                f"metric {m.name!r} needs {sorted(extra)}, which a RAG trial does not have "
                f"(it has the answer, the references, 'question' and 'contexts')",
                details={"metric": m.name},
            )
        return m

    def versions(self, client: Tracking | Context | None = None) -> dict[int, Any]:
        """The prompt's versions by number (read once from the registry)."""
        with self._lock:
            if self._versions is not None:
                return self._versions
            prompts = self._context_for(client).room(Prompts)
            assert self.ref is not None
            pvs = prompts.versions(self.ref.name)
            self._versions = {int(pv.version): pv for pv in pvs}
            if self.ref.version is not None:
                if self.ref.version not in self._versions:
                    raise InvalidArgument(
                        f"prompt {self.ref.name!r} has no version {self.ref.version}",
                        details={"prompt": self.ref.name, "versions": sorted(self._versions)},
                    )
                self._default_version = self.ref.version
            else:
                self._default_version = int(
                    prompts.get(self.ref.name, label=self.ref.label).version
                )
            return self._versions

    def check_space(
        self, space: Mapping[str, Any], *, client: Tracking | Context | None = None
    ) -> SearchSpace:
        """The checked space; ``InvalidArgument`` naming the entry (``details["path"]``) when a
        parameter is unknown, a range is out of bounds, or a prompt version does not exist."""
        checked = check_space(space)
        for name, d in checked.items():
            path = f"space.{name}"
            if name not in PARAMS:
                raise space_error(
                    path, f"rag_objective does not use it; it tunes {', '.join(PARAMS)}"
                )
            if name != "prompt_version":
                if name != "temperature" and isinstance(d, Float):
                    raise space_error(path, "must be an int range or a categorical of integers")
                check_values(name, values_of(d), path, self.chunk_overlap)
            elif not isinstance(d, Categorical):
                raise space_error(path, "must be a categorical of prompt version numbers")
            else:
                self._check_versions(d.choices, path, client)
        return checked

    def _check_versions(
        self, choices: Sequence[Any], path: str, client: Tracking | Context | None
    ) -> None:
        have = self.versions(client)
        for v in choices:
            n = version_of(v)
            if n is None or n not in have:
                name = self.ref.name if self.ref else ""
                raise InvalidArgument(
                    f"search space: {path}: prompt {name!r} has no version {v!r} "
                    f"(it has {sorted(have)})",
                    details={"path": path, "value": v, "versions": sorted(have)},
                )
            check_variables(have[n])

    def settings(
        self, params: Mapping[str, Any], *, client: Tracking | Context | None = None
    ) -> RagSettings:
        """``params`` with defaults for what they leave out, each value checked."""
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise InvalidArgument(f"unknown RAG settings {unknown}; known: {list(PARAMS)}")
        for name, v in params.items():
            if name == "prompt_version":
                self._check_versions([v], f"params.{name}", client)
            else:
                check_values(name, [v], f"params.{name}", self.chunk_overlap)
        have = self.versions(client)
        version = version_of(params.get("prompt_version", self._default_version))
        assert version is not None
        check_variables(have[version])
        return RagSettings(
            chunk_size=int(params.get("chunk_size", DEFAULT_CHUNK)),
            top_k=int(params.get("top_k", DEFAULT_TOP_K)),
            temperature=float(params.get("temperature", 0.0)),
            prompt_version=version,
        )

    # -- shared parts ----------------------------------------------------------------

    def _context_for(self, client: Tracking | Context | None) -> Context:
        """The context of ``client``, else of the objective's client, else the default one."""
        return context_of(client if client is not None else self._client)

    def context(self, client: Tracking | Context) -> RunContext:
        """The pipelines' ``RunContext`` for ``client`` (models and embedder load once)."""
        from opsloop.tracing import Tracing  # lazy: loads sqlalchemy
        from opsloop.tracking import Tracking  # lazy: loads sqlalchemy and httpx

        ctx = context_of(client)
        with self._lock:
            if self._ctx is None or self._ctx[0] is not ctx:
                run_ctx = RunContext(
                    client=ctx.room(Tracking),
                    cache_dir=self.cache_dir,
                    device=self.device,
                    tracer=ctx.room(Tracing).tracer,
                )
                self._ctx = (ctx, run_ctx)
            return self._ctx[1]

    def index_name(self, chunk_size: int) -> str:
        """The vector index for ``chunk_size``: named after the corpus, the chunking and the
        embedder, so a changed corpus never reuses a stale index."""
        h = hashlib.sha256()
        for path, text in self.docs:
            h.update(f"{path}\0{len(text)}\0".encode())
            h.update(text.encode("utf-8"))
        h.update(f"\0{self.chunk_overlap}\0{self.embedder or 'local:minilm'}".encode())
        return f"{self.index_prefix}-{h.hexdigest()[:16]}-c{chunk_size}"

    def build_index(self, chunk_size: int, client: Tracking | Context | None = None) -> str:
        """Chunk and embed the corpus into ``index_name(chunk_size)`` unless it holds every chunk
        already; returns the index name."""
        name = self.index_name(chunk_size)
        with self._lock:
            if name in self._ready:
                return name
            lock = self._size_locks.setdefault(chunk_size, threading.Lock())
        c = self._context_for(client)
        with lock:
            if name in self._ready:
                return name
            chunks = chunk_corpus(self.docs, chunk_size, self.chunk_overlap)
            ctx = self.context(c)
            with VectorIndex.open(name, home=ctx.home) as idx:
                if len(idx) != len(chunks) or not all(ch["id"] in idx for ch in chunks):
                    index_chunks(idx, ctx.embedder(self.embedder), chunks)
            with self._lock:
                self._ready.add(name)
        return name

    def pipeline(self, settings: RagSettings, index: str) -> Any:
        assert self.ref is not None
        return Pipeline(
            [
                RetrieveStep(
                    "retrieve",
                    index,
                    query="{{ question }}",
                    k=settings.top_k,
                    embedder=self.embedder,
                ),
                PromptStep(
                    "prompt",
                    prompt=f"prompts:/{self.ref.name}/{settings.prompt_version}",
                    variables={
                        "question": "{{ question }}",
                        "context": "{{ retrieve | numbered }}",
                    },
                ),
                LLMStep(
                    "answer",
                    self.provider,
                    max_tokens=self.max_tokens,
                    temperature=settings.temperature,
                    seed=self.seed,
                ),
            ],
            name="rag-tuning",
            inputs=["question"],
            outputs=["answer", "retrieve", "prompt"],
        )

    # -- running ---------------------------------------------------------------------

    def evaluate(
        self,
        params: Mapping[str, Any],
        *,
        client: Tracking | Context | None = None,
        tags: Sequence[str] = (),
    ) -> RagResult:
        """Score one set of settings on every question (what a trial does, without the trial)."""
        c = self._context_for(client)
        s = self.settings(params, client=c)
        index = self.build_index(s.chunk_size, c)
        ctx = self.context(c)
        p = self.pipeline(s, index)
        p.context = ctx
        count = token_counter(ctx.model(self.provider))
        answers: list[RagAnswer] = []
        contexts: list[list[str]] = []
        for question, refs in self.questions:
            t0 = time.perf_counter()
            res = p.run({"question": question}, tags=list(tags) or None)
            ms = (time.perf_counter() - t0) * 1000.0
            hits = res.outputs["retrieve"]
            prompt = res.outputs["prompt"]
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            answer = str(res.outputs["answer"])
            contexts.append([str(h.get("text") or "") for h in hits])
            answers.append(
                RagAnswer(
                    question=question,
                    answer=answer,
                    references=refs,
                    score=None,
                    contexts=[h["id"] for h in hits],
                    latency_ms=ms,
                    context_tokens=count(FILTERS["numbered"](hits)) if hits else 0,
                    input_tokens=count(messages),
                    output_tokens=count(answer),
                )
            )
        value, per = self._score(answers, contexts)
        scores: list[float | None] = list(per) if per is not None else [None] * len(answers)
        for a, v in zip(answers, scores, strict=True):
            a.score = v
        metrics = {
            self.metric_key: value,
            "context_tokens": statistics.fmean(a.context_tokens for a in answers),
            "input_tokens": statistics.fmean(a.input_tokens for a in answers),
            "output_tokens": statistics.fmean(a.output_tokens for a in answers),
            "latency_ms": statistics.fmean(a.latency_ms for a in answers),
        }
        return RagResult(
            settings=s,
            index=index,
            prompt=f"prompts:/{self.ref.name if self.ref else ''}/{s.prompt_version}",
            metric=self.metric_key,
            metrics=metrics,
            answers=answers,
        )

    def _score(
        self, answers: list[RagAnswer], contexts: list[list[str]]
    ) -> tuple[float, list[float] | None]:
        if self.metric.name in CONTEXT_METRICS:
            preds: list[Any] = contexts
            refs: list[Any] = [a.references[0] for a in answers]
        else:
            preds = [a.answer for a in answers]
            refs = [a.references for a in answers]
        inputs: dict[str, Any] = {}
        if "contexts" in self.metric.inputs:
            inputs["contexts"] = contexts
        if "question" in self.metric.inputs:
            inputs["question"] = [a.question for a in answers]
        r = self.metric.compute(preds, refs, **inputs)
        return float(r.value), None if r.per_example is None else [float(v) for v in r.per_example]

    def __call__(self, trial: Trial) -> dict[str, float]:
        from opsloop.tracking import Tracking  # lazy: loads sqlalchemy and httpx

        # A worker process brings its own client (the trial's).
        client = self._client if self._client is not None else trial._client
        self._check_study(trial, client)
        res = self.evaluate(
            trial.params, client=client, tags=[f"tuning:{trial.study_name}-{trial.number}"]
        )
        runs = context_of(client).room(Tracking)
        runs.set_tags(
            trial.run_id,
            {
                "opsloop.tuning.rag.index": res.index,
                "opsloop.tuning.rag.prompt": res.prompt,
                "opsloop.tuning.rag.settings": json.dumps(asdict(res.settings)),
            },
        )
        runs.log_text(
            trial.run_id,
            "".join(json.dumps(asdict(a), ensure_ascii=False) + "\n" for a in res.answers),
            "tuning/answers.jsonl",
        )
        out = dict(res.metrics)
        trial.log_metrics(out)
        if trial.objectives == ["value"] and "value" not in out:
            out["value"] = res.score
        return out

    def _check_study(self, trial: Trial, client: Tracking | Context) -> None:
        # A study started elsewhere (the CLI) hands over its space only through the store:
        # check it once, before the first trial loads a model.
        key = trial.study_name
        with self._lock:
            if key in self._checked_studies:
                return
        from opsloop.tuning._client import Tuning  # lazy: loads sqlalchemy

        info = context_of(client).room(Tuning).get_study_info(trial.study_name)
        self.check_space(info.space, client=client)
        with self._lock:
            self._checked_studies.add(key)


rag_objective = RagObjective
"""``rag_objective(corpus, questions, ...)`` is ``RagObjective(...)``: see the class."""
