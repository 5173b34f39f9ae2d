"""``client.prompts``: the prompt registry SDK, embedded or against a server, with a cache.

``get`` keeps what it fetched for ``cache_ttl_s`` seconds (default 60) in
memory, and a copy under ``<home>/cache/prompts/``. When the store cannot be
reached (a connection failure, or the server answering 5xx) it serves the
last good version it has, from memory or (in a fresh process) from that
folder, and logs a warning on the ``opsloop.prompts`` logger; without one, the
error is raised. Writes made through this client drop its cached entries for
that prompt, so a client reads its own writes at once; other writers' changes
show once the TTL has passed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opsloop.core import Context, HasContext, context_of
from opsloop.errors import InvalidArgument, OpsloopError, Unavailable
from opsloop.prompts import _ref as R
from opsloop.prompts._backend import EmbeddedPrompts, PromptsBackend
from opsloop.prompts._remote import RemotePrompts
from opsloop.prompts.entities import Prompt, PromptDiff, PromptLabel, PromptVersion

logger = logging.getLogger("opsloop.prompts")

DEFAULT_TTL_S = 60.0


def _embedded(ctx: Context) -> PromptsBackend:
    return EmbeddedPrompts(ctx)


def _remote(ctx: Context) -> PromptsBackend:
    return RemotePrompts(ctx)


def _check_ttl(ttl: Any) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl >= 0:
        raise InvalidArgument(f"cache_ttl_s must be a number >= 0, got {ttl!r}")
    return float(ttl)


def _is_outage(exc: OpsloopError) -> bool:
    """The store could not answer (as opposed to answering "no")."""
    return isinstance(exc, Unavailable) or exc.http_status >= 500


class Prompts:
    """Versioned prompt templates: create, get (cached), label, diff, render.

    ``cache_ttl_s`` (seconds, ``0`` = always ask the store) applies to ``get``
    and ``render``; each call may override it with ``cache_ttl_s=``.
    """

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._ctx = ctx
        self.actor = ctx.user
        self._backend: PromptsBackend = ctx.seam(_embedded, _remote)
        self._source = self._backend.source
        self._ttl = DEFAULT_TTL_S
        self._cache: dict[str, tuple[PromptVersion, float]] = {}
        self._lock = threading.Lock()
        self.cache_dir = Path(ctx.settings.home) / "cache" / "prompts"

    @property
    def context(self) -> Context:
        return self._ctx

    @property
    def is_remote(self) -> bool:
        return self._ctx.is_remote

    @property
    def cache_ttl_s(self) -> float:
        return self._ttl

    @cache_ttl_s.setter
    def cache_ttl_s(self, value: float) -> None:
        self._ttl = _check_ttl(value)

    # -- writes ----------------------------------------------------------------------

    def create(
        self,
        name: str,
        template: str | Sequence[Mapping[str, str]],
        *,
        message: str | None = None,
        variables: Sequence[str] | None = None,
        labels: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> PromptVersion:
        """A new version of ``name`` (created with its first version); see ``PromptService.create``."""
        if isinstance(labels, str):
            labels = [labels]
        pv = self._backend.create(
            name,
            template,
            message=message,
            variables=variables,
            labels=labels,
            metadata=metadata,
        )
        self.invalidate(name)
        return pv

    def set_label(self, name: str, label: str, version: int | str) -> PromptLabel:
        """Move ``label`` to ``version`` atomically (``latest`` cannot be set: it follows the newest)."""
        out = self._backend.set_label(name, label, version)
        self.invalidate(name)
        return out

    def delete_label(self, name: str, label: str) -> None:
        self._backend.delete_label(name, label)
        self.invalidate(name)

    # -- reads ---------------------------------------------------------------------

    def _fetch(self, ref: R.PromptRef) -> PromptVersion:
        return self._backend.get(ref.name, version=ref.version, label=ref.label)

    def get(
        self,
        name: str,
        *,
        version: int | str | None = None,
        label: str | None = None,
        cache_ttl_s: float | None = None,
    ) -> PromptVersion:
        """A version by number or label (default ``latest``); ``name`` may be ``prompts:/NAME@label``.

        Served from the cache while younger than the TTL; when the store cannot
        be reached, the last good version this client (or an earlier process
        with the same home) fetched is served, with a warning logged.
        """
        ref = R.make_ref(name, version, label)
        ttl = self._ttl if cache_ttl_s is None else _check_ttl(cache_ttl_s)
        with self._lock:
            hit = self._cache.get(ref.key)
        now = time.monotonic()
        if hit is not None and now - hit[1] < ttl:
            return hit[0]
        try:
            pv = self._fetch(ref)
        except OpsloopError as exc:
            if not _is_outage(exc):
                raise
            stale = hit[0] if hit is not None else self._read_disk(ref)
            if stale is None:
                raise
            where = "memory" if hit is not None else "disk"
            logger.warning(
                "serving cached prompt %s (version %d, from %s): the store cannot be reached: %s",
                ref.key,
                stale.version,
                where,
                exc.message,
            )
            return stale
        with self._lock:
            self._cache[ref.key] = (pv, time.monotonic())
        if hit is None or hit[0] != pv:
            self._write_disk(ref, pv)
        return pv

    def render(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        version: int | str | None = None,
        label: str | None = None,
        cache_ttl_s: float | None = None,
    ) -> str | list[dict[str, str]]:
        """``get(...)`` then ``render``: a string (text) or messages (chat)."""
        pv = self.get(name, version=version, label=label, cache_ttl_s=cache_ttl_s)
        return pv.render_from(variables or {})

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of ``name``, newest first (never cached)."""
        return self._backend.versions(name)

    def labels(self, name: str) -> list[PromptLabel]:
        return self._backend.labels(name)

    def get_prompt(self, name: str) -> Prompt:
        """A prompt's summary: newest version, version count and labels."""
        return self._backend.get_prompt(name)

    def diff(self, name: str, a: int | str, b: int | str) -> PromptDiff:
        """What changed from ``a`` to ``b`` (version numbers, labels or ``latest``)."""
        return self._backend.diff(name, a, b)

    # -- cache ---------------------------------------------------------------------

    def invalidate(self, name: str | None = None) -> None:
        """Forget cached versions (of one prompt, or all) in memory; the disk copy stays."""
        with self._lock:
            if name is None:
                self._cache.clear()
                return
            for k in [k for k in self._cache if k.startswith((f"{name}/", f"{name}@"))]:
                del self._cache[k]

    def _disk_path(self, ref: R.PromptRef) -> Path:
        h = hashlib.sha256(f"{self._source}\n{ref.key}".encode()).hexdigest()[:40]
        return self.cache_dir / f"{h}.json"

    def _write_disk(self, ref: R.PromptRef, pv: PromptVersion) -> None:
        data = {
            "source": self._source,
            "key": ref.key,
            "saved_at": time.time(),
            "prompt": pv.model_dump(mode="json"),
        }
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh)
                os.replace(tmp, self._disk_path(ref))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            # The cache is a fallback: a read-only home must not break reads that work.
            logger.debug("could not write the prompt cache in %s: %s", self.cache_dir, exc)

    def _read_disk(self, ref: R.PromptRef) -> PromptVersion | None:
        try:
            data = json.loads(self._disk_path(ref).read_text(encoding="utf-8"))
            if data.get("source") != self._source or data.get("key") != ref.key:
                return None
            saved = float(data.get("saved_at", math.nan))
            pv = PromptVersion.model_validate(data["prompt"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if not math.isnan(saved):
            logger.debug(
                "prompt %s read from the disk cache (saved %.0f s ago)",
                ref.key,
                time.time() - saved,
            )
        return pv

    # ``list`` last: defined earlier, it would shadow ``list[...]`` in the annotations above.
    def list(self, *, name_contains: str | None = None, max_results: int = 1000) -> list[Prompt]:
        """Prompts by name, each with its newest version and labels."""
        return self._backend.list_prompts(name_contains=name_contains, max_results=max_results)
