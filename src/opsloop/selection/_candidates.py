"""Candidates: parse their specs, open them as chat models, and measure what they hold in memory.

A candidate is a provider spec (``local:smollm2``, ``local:gemma3``,
``models:/NAME@ALIAS``, ``openai:MODEL`` or ``openai:MODEL@http://host/v1``)
or an ``opsloop.llm`` Provider object. Specs open through
``opsloop.llm.get_provider``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument
from opsloop.registry import bundled_gguf
from opsloop.registry.flavors import save_gguf

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.tracking import Tracking

BUNDLED = {"smollm2": "SmolLM2-135M-Instruct", "gemma3": "gemma-3-270m"}
_URL_MARKERS = ("@http://", "@https://")


@dataclass(frozen=True)
class CandidateSpec:
    """A parsed candidate: what it is called on the leaderboard and how to open it."""

    label: str
    kind: str  # local | models | openai | provider
    target: str  # bundled name, models:/ URI, or endpoint model name
    base_url: str | None = None
    provider_obj: Any = None

    @property
    def spec(self) -> str:
        if self.kind == "local":
            return f"local:{self.target}"
        if self.kind == "openai":
            return f"openai:{self.target}"
        return self.target


def parse_candidate(c: Any) -> CandidateSpec:
    """``InvalidArgument`` for anything that is not a known spec or a provider object."""
    if not isinstance(c, str):
        if callable(getattr(c, "chat", None)):
            label = str(getattr(c, "spec", "") or getattr(c, "model", "") or type(c).__name__)
            return CandidateSpec(label, "provider", label, provider_obj=c)
        raise InvalidArgument(f"a candidate must be a provider spec or a Provider, not {c!r}")
    text = c.strip()
    if text.startswith("models:/"):
        return CandidateSpec(text, "models", text)
    prefix, sep, rest = text.partition(":")
    if not sep or not rest:
        raise InvalidArgument(
            f"candidate {c!r} must look like local:NAME, models:/NAME@ALIAS, "
            "openai:MODEL or openai:MODEL@http://host:port/v1"
        )
    if prefix == "local":
        if rest not in BUNDLED and not Path(rest).expanduser().is_dir():
            raise InvalidArgument(
                f"unknown local model in candidate {c!r}: use local:{', local:'.join(BUNDLED)} "
                "or local:/path/to/a/saved/model",
                details={"candidate": text},
            )
        return CandidateSpec(text, "local", rest)
    if prefix == "openai":
        for marker in _URL_MARKERS:
            model, found, url = rest.partition(marker)
            if found:
                if not model:
                    raise InvalidArgument(f"candidate {c!r} names no model before the URL")
                return CandidateSpec(text, "openai", model, base_url=marker[1:] + url)
        return CandidateSpec(text, "openai", rest)
    raise InvalidArgument(
        f"unknown candidate kind {prefix!r} in {c!r}; use local:, models:/ or openai:"
    )


@dataclass
class Reply:
    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = None


class Opened:
    """A candidate opened for chat; ``reply`` answers one conversation."""

    provider = "opsloop-local"
    model = ""

    def reply(self, messages: list[dict[str, str]], max_tokens: int) -> Reply:
        raise NotImplementedError

    def weights_bytes(self) -> int | None:
        return _torch_bytes(self)

    def close(self) -> None:
        pass


class ProviderCandidate(Opened):
    def __init__(self, p: Any) -> None:
        self.p = p
        self.provider = str(getattr(p, "provider", "") or "opsloop-local")
        self.model = str(getattr(p, "model", "") or "")

    def reply(self, messages: list[dict[str, str]], max_tokens: int) -> Reply:
        r = self.p.chat(messages, max_tokens=max_tokens, temperature=0.0)
        u = r.usage
        return Reply(r.text, int(u.input_tokens), int(u.output_tokens), r.cost_usd)

    def weights_bytes(self) -> int | None:
        return _torch_bytes(self.p)

    def close(self) -> None:
        close = getattr(self.p, "close", None)
        if callable(close):
            close()


def open_candidate(
    c: CandidateSpec, *, client: Tracking | Context, cache_dir: Path, timeout_s: float = 120.0
) -> Opened:
    """Load or connect to the candidate (the expensive part: model loading happens here).

    Calls are not traced (a span write per request would be timed with it),
    and endpoints are not retried: every failed request counts as an error
    and every latency is one request's.
    """
    if c.kind == "provider":
        return ProviderCandidate(c.provider_obj)
    from opsloop.llm import get_provider  # lazy: loads sqlalchemy and httpx

    kw: dict[str, Any] = {"client": client, "trace": False}
    if c.kind == "openai":
        if c.base_url:
            kw["base_url"] = c.base_url
        kw.update(timeout_s=timeout_s, max_retries=0)
    else:
        kw["cache_dir"] = cache_dir
    return ProviderCandidate(get_provider(c.spec, **kw))


def bundled_folder(name: str, cache_dir: Path) -> Path:
    """A saved-model folder for a bundled GGUF (made once under ``cache_dir``)."""
    if name not in BUNDLED:
        raise InvalidArgument(f"unknown local model {name!r}; bundled: {sorted(BUNDLED)}")
    gguf = bundled_gguf(name, cache_dir=cache_dir / "assembled")  # shared with opsloop.llm
    folder = cache_dir / "selection" / name
    if not (folder / "opsloop-model.json").is_file():
        tmp = folder.with_name(f".{name}.{os.getpid()}.tmp")
        save_gguf(gguf, tmp, model_id=BUNDLED[name], overwrite=True)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _torch_bytes(obj: Any) -> int | None:
    """Bytes of the parameters and buffers of the torch module reachable from ``obj``."""
    seen: set[int] = set()
    stack = [obj]
    for _ in range(12):  # a short, bounded walk through wrapper attributes
        if not stack:
            break
        o = stack.pop()
        if o is None or id(o) in seen or isinstance(o, str | int | float):
            continue
        seen.add(id(o))
        if callable(getattr(o, "parameters", None)) and callable(getattr(o, "buffers", None)):
            try:
                tensors = [*o.parameters(), *o.buffers()]
                return sum(int(t.numel()) * int(t.element_size()) for t in tensors)
            except Exception:  # not a torch module after all
                continue
        for name in ("model", "lm", "_lm", "loaded", "_loaded", "_model", "p"):
            child = getattr(o, name, None) if not isinstance(o, type) else None
            if child is not None:
                stack.append(child)
    return None


class RssPeak:
    """Samples this process's resident memory in a thread; ``peak`` is the highest seen."""

    def __init__(self, interval_s: float = 0.01) -> None:
        import psutil

        self._proc = psutil.Process()
        self.baseline = int(self._proc.memory_info().rss)
        self.peak = self.baseline
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="opsloop-rss", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self._interval)

    def sample(self) -> None:
        rss = int(self._proc.memory_info().rss)
        if rss > self.peak:
            self.peak = rss

    def stop(self) -> int:
        """Stop sampling; the peak's growth over the baseline in bytes."""
        self._stop.set()
        self._thread.join()
        self.sample()
        return max(0, self.peak - self.baseline)
