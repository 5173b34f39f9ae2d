"""The price table: US dollars per million input and output tokens, per model.

Three layers, later ones winning:

1. defaults shipped with opsloop (list prices of a few hosted models when this
   was written, and 0 for the local models opsloop ships with);
2. ``<home>/prices.yaml`` (or ``prices.yml``/``prices.json``), edited by hand::

       gpt-4o: {input: 2.5, output: 10}
       my-finetune: {input: 0.3, output: 1.2}

3. prices set through the API, SDK or CLI, stored in the database.

A model's price is found by exact name, then by the name without a
``provider/`` prefix, then by the longest table entry the name starts with
followed by ``-``, ``:``, ``@`` or ``.`` (so ``gpt-4o-2024-08-06`` costs
what ``gpt-4o`` costs, and ``gpt-4o-mini`` keeps its own price). Matching
ignores case. Costs are computed when a span is stored; changing a price does
not rewrite stored costs.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument

log = logging.getLogger("opsloop.tracing")

PRICE_FILES = ("prices.yaml", "prices.yml", "prices.json")

# (input, output) USD per 1M tokens. Hosted prices change: edit them in the
# price file or with `opsloop traces prices set`.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-opus": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
    "gemini-1.5-flash": (0.075, 0.30),
    "gemini-1.5-pro": (1.25, 5.00),
    "gemini-2.0-flash": (0.10, 0.40),
    # Local models run on your own hardware: no per-token price.
    "smollm2": (0.0, 0.0),
    "smollm2-135m-instruct": (0.0, 0.0),
    "gemma-3-270m": (0.0, 0.0),
    "all-minilm-l6-v2": (0.0, 0.0),
}

_SEPARATORS = ("-", ":", "@", ".", "_")
MAX_PRICE = 1_000_000.0


@dataclass(frozen=True)
class Price:
    model: str
    input_per_mtok: float
    output_per_mtok: float
    source: str  # default | file | custom


def check_price(model: str, input_per_mtok: Any, output_per_mtok: Any) -> tuple[float, float]:
    """Validated ``(input, output)`` prices; ``InvalidArgument`` names the bad value."""
    if not isinstance(model, str) or not model.strip() or len(model) > 256:
        raise InvalidArgument("model name must be a non-empty string of at most 256 characters")
    out: list[float] = []
    for what, v in (("input", input_per_mtok), ("output", output_per_mtok)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidArgument(f"{what} price of {model!r} must be a number, not {v!r}")
        f = float(v)
        if not math.isfinite(f) or f < 0 or f > MAX_PRICE:
            raise InvalidArgument(
                f"{what} price of {model!r} must be between 0 and {MAX_PRICE:g} USD per 1M tokens"
            )
        out.append(f)
    return out[0], out[1]


def _parse_entry(model: Any, v: Any, path: Path) -> tuple[str, float, float]:
    if isinstance(v, dict):
        unknown = set(v) - {"input", "output"}
        if unknown or "input" not in v:
            raise InvalidArgument(
                f"{path}: entry {model!r} must look like {{input: <USD/1M>, output: <USD/1M>}}"
            )
        inp, outp = v["input"], v.get("output", 0.0)
    elif isinstance(v, (list, tuple)) and len(v) == 2:
        inp, outp = v
    else:
        raise InvalidArgument(
            f"{path}: entry {model!r} must look like {{input: <USD/1M>, output: <USD/1M>}}"
        )
    try:
        i, o = check_price(str(model), inp, outp)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{path}: {exc.message}") from None
    return str(model), i, o


_FILE_CACHE: dict[Path, tuple[float, dict[str, tuple[float, float]]]] = {}


def price_file(home: Path) -> Path | None:
    """The price file in ``home``, if there is one."""
    for name in PRICE_FILES:
        p = home / name
        if p.is_file():
            return p
    return None


def load_price_file(home: Path) -> dict[str, tuple[float, float]]:
    """Prices from the home's price file (cached until the file changes).

    Raises ``InvalidArgument`` saying what is wrong with a malformed file.
    """
    path = price_file(home)
    if path is None:
        return {}
    mtime = path.stat().st_mtime
    cached = _FILE_CACHE.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            data = json.loads(text) if text.strip() else {}
        else:
            try:
                import yaml
            except ImportError as exc:
                raise InvalidArgument(
                    f"{path}: reading YAML needs PyYAML (pip install 'opsloop[tracing]'), "
                    "or write the prices as prices.json"
                ) from exc
            data = yaml.safe_load(text) or {}
    except (ValueError, ImportError) as exc:
        raise InvalidArgument(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError without importing yaml at module level
        raise InvalidArgument(f"{path}: not valid YAML: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("prices"), dict) and len(data) == 1:
        data = data["prices"]
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: must be a mapping of model name to prices")
    prices: dict[str, tuple[float, float]] = {}
    for model, v in data.items():
        name, i, o = _parse_entry(model, v, path)
        prices[name] = (i, o)
    _FILE_CACHE[path] = (mtime, prices)
    return prices


class PriceTable:
    """Merged prices with name matching; ``cost`` is what a call costs in US dollars."""

    def __init__(self, prices: list[Price]) -> None:
        self.prices = prices
        self._by_key = {p.model.lower(): p for p in prices}
        self._keys = sorted(self._by_key, key=len, reverse=True)
        self._memo: dict[str, Price | None] = {}

    @classmethod
    def build(
        cls, home: Path | None, custom: dict[str, tuple[float, float]], *, strict: bool = False
    ) -> PriceTable:
        """Defaults, then the home's file, then ``custom`` (the database's prices).

        A malformed price file raises when ``strict``; otherwise it is skipped
        with a logged warning, so a typo never makes span ingest fail.
        """
        merged: dict[str, Price] = {
            m.lower(): Price(m, i, o, "default") for m, (i, o) in DEFAULT_PRICES.items()
        }
        if home is not None:
            try:
                filed = load_price_file(home)
            except InvalidArgument as exc:
                if strict:
                    raise
                log.warning("ignoring the price file: %s", exc.message)
                filed = {}
            for m, (i, o) in filed.items():
                merged[m.lower()] = Price(m, i, o, "file")
        for m, (i, o) in custom.items():
            merged[m.lower()] = Price(m, i, o, "custom")
        return cls(sorted(merged.values(), key=lambda p: p.model.lower()))

    def lookup(self, model: str) -> Price | None:
        """The price entry that applies to ``model``, or None when no entry matches."""
        if model in self._memo:
            return self._memo[model]
        found = self._match(model.lower())
        if found is None and "/" in model:
            found = self._match(model.rsplit("/", 1)[1].lower())
        self._memo[model] = found
        return found

    def _match(self, key: str) -> Price | None:
        hit = self._by_key.get(key)
        if hit is not None:
            return hit
        for k in self._keys:  # longest first
            if key.startswith(k) and key[len(k)] in _SEPARATORS:
                return self._by_key[k]
        return None

    def cost(
        self, model: str | None, input_tokens: int | None, output_tokens: int | None
    ) -> float | None:
        """US dollars for one call, or None for an unknown model or no token counts."""
        if not model or (input_tokens is None and output_tokens is None):
            return None
        p = self.lookup(model)
        if p is None:
            return None
        return (
            (input_tokens or 0) * p.input_per_mtok + (output_tokens or 0) * p.output_per_mtok
        ) / 1e6
