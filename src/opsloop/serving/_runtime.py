"""The model being served, and the swap to a new version when its alias moves.

A ``Runtime`` is one loaded version with its batching machinery (a predict
batcher, an embedding batcher or a generation engine). ``ModelHolder`` keeps
the current runtime. Every request takes a reference to the runtime current
when it starts and keeps it to the end, so a swap never touches a request in
flight: the new version takes new requests at once, and the old one is
closed only after its last request has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from opsloop.errors import InvalidArgument, Unavailable
from opsloop.serving._batcher import MicroBatcher
from opsloop.serving._engine import GenerationEngine
from opsloop.serving._options import ServeOptions
from opsloop.serving._source import ModelSource, Resolved

__all__ = ["ModelHolder", "Runtime", "model_kind"]

log = logging.getLogger("opsloop.serving")


def model_kind(model: Any) -> str:
    """``llm``, ``embedder`` or ``tabular``: which endpoints a loaded model gets."""
    if all(hasattr(model, a) for a in ("model", "tokenizer", "apply_chat_template")):
        return "llm"
    if hasattr(model, "embed"):
        return "embedder"
    if hasattr(model, "predict"):
        return "tabular"
    raise InvalidArgument(
        f"cannot serve a {type(model).__name__}: it has no predict, embed or generate"
    )


def _prepare_torch(model: Any, options: ServeOptions) -> None:
    """Apply the torch thread count and weight dtype the options ask for."""
    import torch

    if options.torch_threads:
        torch.set_num_threads(options.torch_threads)  # process-wide, as PyTorch has it
    if options.dtype != "auto":
        inner = getattr(model, "model", None)
        if inner is not None and hasattr(inner, "to"):
            inner.to(getattr(torch, options.dtype))


class Runtime:
    """One loaded model version and the machinery that batches requests for it."""

    def __init__(self, model: Any, resolved: Resolved, options: ServeOptions) -> None:
        self.model = model
        self.resolved = resolved
        self.options = options
        self.kind = model_kind(model)
        self.loaded_at = time.time()
        self.inflight = 0
        self._retired = False
        self._drained = asyncio.Event()
        self.predict: MicroBatcher[dict[str, Any], Any] | None = None
        self.predict_proba: MicroBatcher[dict[str, Any], Any] | None = None
        self.embed: MicroBatcher[str, list[float]] | None = None
        self.engine: Any = None
        if self.kind in ("llm", "embedder"):
            _prepare_torch(model, options)
        if self.kind == "tabular":
            self.predict = MicroBatcher(
                model.predict,
                max_batch_size=options.max_batch_size,
                max_wait_ms=options.max_wait_ms,
                name="opsloop-predict",
            )
            if getattr(model, "supports_proba", False):
                self.predict_proba = MicroBatcher(
                    model.predict_proba,
                    max_batch_size=options.max_batch_size,
                    max_wait_ms=options.max_wait_ms,
                    name="opsloop-proba",
                )
        elif self.kind == "embedder":
            self.embed = MicroBatcher(
                model.embed,
                max_batch_size=options.max_batch_size,
                max_wait_ms=options.max_wait_ms,
                name="opsloop-embed",
            )
        else:
            self.engine = GenerationEngine(
                model.model,
                model.tokenizer,
                max_batch_size=options.llm_max_batch_size,
                max_wait_ms=options.llm_max_wait_ms,
            )

    @property
    def fingerprint(self) -> str:
        """Names the loaded version in answers (OpenAI's ``system_fingerprint``)."""
        return "opsloop-" + hashlib.sha256(self.resolved.key.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        return self.options.model_name or self.resolved.name

    def info(self) -> dict[str, Any]:
        """What ``/v1/metadata`` answers: the model's name, version, flavor and signature."""
        sig: Any = getattr(self.model, "signature", None)
        info: dict[str, Any] = {
            "name": self.name,
            "version": self.resolved.version,
            "flavor": self.resolved.flavor or getattr(self.model, "flavor", None),
            "kind": self.kind,
            "uri": self.resolved.uri,
            "signature": sig.to_dict() if hasattr(sig, "to_dict") else sig,
            "loaded_at": self.loaded_at,
            "pid": os.getpid(),
        }
        if self.resolved.extra.get("alias"):
            info["alias"] = self.resolved.extra["alias"]
        model_id = getattr(self.model, "model_id", None)
        if model_id:
            info["model_id"] = model_id
        if self.kind == "embedder":
            info["dimension"] = getattr(self.model, "dimension", None)
        if self.engine is not None:
            info["context_length"] = self.engine.context_length
        return info

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inflight": self.inflight}
        for key, b in (
            ("predict", self.predict),
            ("predict_proba", self.predict_proba),
            ("embeddings", self.embed),
        ):
            if b is not None:
                out[key] = b.stats.as_dict()
        if self.engine is not None:
            out["generation"] = self.engine.stats.as_dict()
        return out

    def acquire(self) -> None:
        self.inflight += 1

    def release(self) -> None:
        self.inflight -= 1
        if self._retired and self.inflight == 0:
            self._drained.set()

    async def retire(self) -> None:
        """Wait for the requests using this version to finish, then stop its machinery."""
        self._retired = True
        if self.inflight == 0:
            self._drained.set()
        await self._drained.wait()
        for b in (self.predict, self.predict_proba, self.embed):
            if b is not None:
                await b.close()
        if self.engine is not None:
            await self.engine.close()


class ModelHolder:
    """The current ``Runtime``, its initial load, alias watching and atomic swaps."""

    def __init__(
        self,
        source: ModelSource,
        options: ServeOptions,
        *,
        preloaded: tuple[Resolved, Any] | None = None,
    ) -> None:
        self.source = source
        self._preloaded = preloaded
        self.options = options
        self.current: Runtime | None = None
        self.load_error: str | None = None
        self.reloads = 0
        self.failed_reloads = 0
        self.last_reload_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._retiring: set[asyncio.Task[None]] = set()
        self.on_swap: Callable[[Runtime], None] | None = None

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Runtime]:
        """The current runtime, kept alive until the block ends."""
        rt = self.acquire()
        try:
            yield rt
        finally:
            rt.release()

    def acquire(self) -> Runtime:
        """The current runtime with a reference taken; pair with ``Runtime.release``."""
        rt = self.current
        if rt is None:
            detail = f": {self.load_error}" if self.load_error else "; try again shortly"
            raise Unavailable(f"the model is not loaded yet{detail}")
        rt.acquire()
        return rt

    async def _build(self, resolved: Resolved) -> Runtime:
        model = await asyncio.to_thread(self.source.load, resolved)
        # The runtime starts engine threads; build it off the event loop as well.
        return await asyncio.to_thread(Runtime, model, resolved, self.options)

    async def load_initial(self) -> None:
        """Load the model the source names now; on failure keep the error for ``/ready``."""
        try:
            if self._preloaded is not None:
                resolved, model = self._preloaded
                self._preloaded = None
                self.current = await asyncio.to_thread(Runtime, model, resolved, self.options)
                return
            resolved = await asyncio.to_thread(self.source.resolve)
            self.current = await self._build(resolved)
            self.load_error = None
            log.info("serving %s (version %s)", resolved.name, resolved.version)
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load %s", self.source.describe())

    def start(self) -> None:
        """Start loading in the background, and watching the alias when the source can move."""
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._load_then_watch()))

    async def _load_then_watch(self) -> None:
        await self.load_initial()
        if not self.source.watchable or self.options.poll_interval_s <= 0:
            return
        while True:
            await asyncio.sleep(self.options.poll_interval_s)
            await self.check_for_update()

    async def check_for_update(self) -> bool:
        """Load and swap in the version the source names now, if it changed. True on a swap."""
        try:
            resolved = await asyncio.to_thread(self.source.resolve)
            cur = self.current
            if cur is not None and cur.resolved.key == resolved.key:
                return False
            new = await self._build(resolved)
        except Exception as exc:
            # Keep serving the version we have; a broken new version must not take the server down.
            self.failed_reloads += 1
            self.last_reload_error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load the new version of %s", self.source.describe())
            return False
        old, self.current = self.current, new
        self.load_error = None
        if old is not None:
            self.reloads += 1
            log.info(
                "swapped %s: version %s -> %s", new.name, old.resolved.version, new.resolved.version
            )
            task = asyncio.get_running_loop().create_task(old.retire())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return True

    async def close(self) -> None:
        """Stop watching, finish every request in flight, stop every runtime."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        if self.current is not None:
            await self.current.retire()
        await asyncio.to_thread(self.source.close)
