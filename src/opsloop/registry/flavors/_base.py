"""The loading API every flavor implements and every consumer (serving, evaluation) uses.

Stable contract::

    load_model(uri, *, client=None, trusted_types=None) -> LoadedModel   (registry/_loading.py)

    LoadedModel            .flavor  .signature  .metadata  .path  .uri  .version
                           .predict(data) -> list            (records or columns, validated)
                           .predict_proba(data) -> list      (when .supports_proba)
    LoadedCausalLM         .model (transformers PreTrainedModel, eval)  .tokenizer  .model_id
                           .has_chat_template  .apply_chat_template(messages) -> str
                           .generate(prompts, max_new_tokens, temperature, top_p, stop,
                                     *, seed, repetition_penalty, no_repeat_ngram_size)
                               -> list[GenerationResult]   (batched, left padding)
                           .generation_defaults  .anti_repetition(prompt_len, rp, ngram) -> processors
    LoadedEmbedder         .embed(texts) -> list[list[float]]   .dimension

A saved model is a folder holding ``opsloop-model.json`` (the descriptor:
flavor, signature, flavor metadata) next to the flavor's files. No flavor
uses pickle; see each flavor module for what loading it trusts.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors._signature import (
    ColumnSpec,
    Signature,
    infer_signature,
    validate_input,
)

if TYPE_CHECKING:
    from opsloop.registry.entities import ModelVersion

__all__ = [
    "DESCRIPTOR_FILE",
    "FLAVORS",
    "GENERATION_DEFAULTS",
    "ColumnSpec",
    "GenerationResult",
    "LoadContext",
    "LoadedCausalLM",
    "LoadedEmbedder",
    "LoadedModel",
    "ModelDescriptor",
    "Signature",
    "hub_offline",
    "infer_signature",
]

DESCRIPTOR_FILE = "opsloop-model.json"
FORMAT_VERSION = 1
MAX_PROMPTS = 256
MAX_NEW_TOKENS = 8192

# Anti-looping defaults for local causal LMs (tiny models repeat a line until the token
# limit): chosen by measurement on the docs questions, benchmarks/generation_defaults.py
# and docs/llm.md. ``repetition_penalty`` 1.0 and ``no_repeat_ngram_size`` 0 turn them off.
GENERATION_DEFAULTS: dict[str, float] = {"repetition_penalty": 1.1, "no_repeat_ngram_size": 4}

# flavor name -> module implementing ``describe(files, options)`` and ``load(path, desc, ctx)``.
FLAVORS: dict[str, str] = {
    "sklearn": "opsloop.registry.flavors._sklearn",
    "xgboost": "opsloop.registry.flavors._boosting",
    "lightgbm": "opsloop.registry.flavors._boosting",
    "pyfunc": "opsloop.registry.flavors._pyfunc",
    "transformers": "opsloop.registry.flavors._transformers",
    "peft": "opsloop.registry.flavors._peft",
    "sentence_transformers": "opsloop.registry.flavors._embeddings",
    "pipeline": "opsloop.pipelines._flavor",  # LLM pipelines (a YAML spec; see opsloop.pipelines)
    "mlflow": "opsloop.mlflowapi._flavor",  # MLflow model folders registered through the MLflow API
}


def hub_offline() -> None:
    """Keep the Hugging Face libraries off the network (they read these at import time)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def flavor_module(name: str) -> Any:
    """The module implementing flavor ``name``; ``InvalidArgument`` for an unknown one."""
    mod = FLAVORS.get(name)
    if mod is None:
        raise InvalidArgument(
            f"unknown model flavor {name!r}; known flavors: {', '.join(sorted(FLAVORS))}",
            details={"flavor": name},
        )
    return importlib.import_module(mod)


# ---------------------------------------------------------------------------- descriptor


@dataclass
class ModelDescriptor:
    """The content of ``opsloop-model.json``."""

    flavor: str
    signature: Signature | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "opsloop_model": FORMAT_VERSION,
            "flavor": self.flavor,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "metadata": self.metadata,
        }

    def dumps(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True).encode()

    @classmethod
    def from_dict(cls, d: Any) -> ModelDescriptor:
        if not isinstance(d, Mapping) or not isinstance(d.get("flavor"), str):
            raise InvalidArgument(f"{DESCRIPTOR_FILE} must be an object with a 'flavor' string")
        if int(d.get("opsloop_model", 1)) > FORMAT_VERSION:
            raise InvalidArgument(
                f"{DESCRIPTOR_FILE} has format {d.get('opsloop_model')}, newer than this opsloop "
                f"understands ({FORMAT_VERSION}); upgrade opsloop"
            )
        meta = d.get("metadata") or {}
        if not isinstance(meta, Mapping):
            raise InvalidArgument(f"{DESCRIPTOR_FILE}: 'metadata' must be an object")
        return cls(d["flavor"], Signature.from_dict(d.get("signature")), dict(meta))

    @classmethod
    def loads(cls, data: bytes) -> ModelDescriptor:
        try:
            return cls.from_dict(json.loads(data))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{DESCRIPTOR_FILE} is not valid JSON: {exc}") from exc

    @classmethod
    def read(cls, folder: str | os.PathLike[str]) -> ModelDescriptor:
        p = Path(folder) / DESCRIPTOR_FILE
        if not p.is_file():
            raise InvalidArgument(
                f"{folder} is not a saved opsloop model (no {DESCRIPTOR_FILE}); "
                "save it with an opsloop.registry.flavors save_* function or register it with a flavor"
            )
        return cls.loads(p.read_bytes())

    def write(self, folder: str | os.PathLike[str]) -> Path:
        p = Path(folder) / DESCRIPTOR_FILE
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(self.dumps())
        return p


@dataclass
class LoadContext:
    """What a flavor's ``load`` may use besides the folder.

    ``digests`` maps file paths in the folder to their ``sha256:`` digests when
    the folder came from the registry (so caches need not re-hash).
    ``load_ref`` loads another model by URI or folder with the same options (a
    PEFT adapter's base model); ``load_model`` passes it, so flavors never
    import the loader (they sit below it).
    """

    trusted_types: list[str] = field(default_factory=list)
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".opsloop" / "cache" / "models")
    device: str | None = None
    client: Any = None
    digests: dict[str, str] = field(default_factory=dict)
    load_ref: Callable[[str], LoadedModel] | None = None


# ---------------------------------------------------------------------------- loaded models


class LoadedModel:
    """A model ready to predict. Subclasses implement ``_predict`` (and ``_predict_proba``)."""

    supports_proba: bool = False

    def __init__(
        self,
        flavor: str,
        signature: Signature | None,
        metadata: Mapping[str, Any] | None = None,
        *,
        path: Path | None = None,
    ) -> None:
        self.flavor = flavor
        self.signature = signature
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.path = path
        self.uri: str = "" if path is None else str(path)
        self.version: ModelVersion | None = None  # set when loaded from the registry

    def predict(self, data: Any) -> list[Any]:
        """One output per input row. ``data``: records (list of dicts) or columns (dict of lists).

        Raises ``InvalidArgument`` naming the column and row when the input
        does not match the signature.
        """
        columns, n = validate_input(self.signature, data)
        out = self._predict(columns, n)
        return self._check_output(out, n)

    def predict_proba(self, data: Any) -> list[list[float]]:
        """Class probabilities per row (classifiers that support it; see ``supports_proba``)."""
        if not self.supports_proba:
            raise InvalidArgument(f"this {self.flavor} model has no predict_proba")
        columns, n = validate_input(self.signature, data)
        return self._check_output(self._predict_proba(columns, n), n)

    def _predict(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        raise NotImplementedError

    def _predict_proba(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        raise NotImplementedError

    def _check_output(self, out: Any, n: int) -> list[Any]:
        if hasattr(out, "tolist"):
            out = out.tolist()
        result: list[Any] = list(out)
        if len(result) != n:
            raise InvalidArgument(
                f"the {self.flavor} model returned {len(result)} outputs for {n} input rows"
            )
        return result

    def __repr__(self) -> str:
        return f"<{type(self).__name__} flavor={self.flavor} uri={self.uri!r}>"


@dataclass(frozen=True)
class GenerationResult:
    """One completion. ``finish_reason``: ``stop`` (end of sequence or a stop string) or ``length``."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def _check_messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise InvalidArgument("messages must be a non-empty list of {role, content} objects")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise InvalidArgument(f"message {i} must be an object with a 'role' string")
        content = m.get("content")
        if not isinstance(content, str):
            raise InvalidArgument(f"message {i} must have a 'content' string")
        out.append({"role": m["role"], "content": content})
    return out


class LoadedCausalLM(LoadedModel):
    """A causal language model (transformers), in eval mode, with its tokenizer.

    ``predict`` takes a ``prompt`` string column and returns the generated
    texts (greedy, ``metadata['max_new_tokens']`` or 64 tokens; a model with a
    chat template gets each prompt as one user message); ``generate`` gives
    full control over the raw prompt text. Safe to call from several threads: generation is
    serialised by a lock (batch requests instead to use the hardware well).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str,
        flavor: str = "transformers",
        signature: Signature | None = None,
        metadata: Mapping[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        if signature is None:
            signature = Signature([ColumnSpec("prompt", "string")], [ColumnSpec("text", "string")])
        super().__init__(flavor, signature, metadata, path=path)
        model.eval()
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        # Batched generation appends on the right, so prompts are padded on the left.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._lock = threading.Lock()
        # A version may pin its own (metadata ``generation``); callers may still pass others.
        pinned = self.metadata.get("generation")
        self.generation_defaults: dict[str, float] = dict(GENERATION_DEFAULTS)
        if isinstance(pinned, Mapping):
            self.generation_defaults.update(
                {k: v for k, v in pinned.items() if k in GENERATION_DEFAULTS}
            )

    def anti_repetition(
        self,
        prompt_len: int,
        repetition_penalty: float | None = None,
        no_repeat_ngram_size: int | None = None,
    ) -> list[Any]:
        """Logits processors for these settings (None: the model's default), or none when off.

        They look at the generated tokens only (those after ``prompt_len``):
        transformers' own ``repetition_penalty`` and ``no_repeat_ngram_size``
        also count the prompt, which keeps a retrieval pipeline's answer from
        quoting its sources (measured: benchmarks/generation_defaults.py).
        """
        rp = self.generation_defaults["repetition_penalty"]
        rp = float(rp if repetition_penalty is None else repetition_penalty)
        ng = self.generation_defaults["no_repeat_ngram_size"]
        ng = int(ng if no_repeat_ngram_size is None else no_repeat_ngram_size)
        if not 1.0 <= rp <= 2.0:
            raise InvalidArgument(
                f"repetition_penalty must be in [1, 2], got {rp:g}",
                details={"param": "repetition_penalty"},
            )
        if not 0 <= ng <= 64:
            raise InvalidArgument(
                f"no_repeat_ngram_size must be in 0..64, got {ng}",
                details={"param": "no_repeat_ngram_size"},
            )
        if rp == 1.0 and ng == 0:
            return []
        return [_GeneratedRepetition(prompt_len, rp, ng)]

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer carries a chat template (else ``apply_chat_template`` uses a plain transcript)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def eos_token_ids(self) -> list[int]:
        ids = getattr(self.model.generation_config, "eos_token_id", None)
        if ids is None:
            ids = self.tokenizer.eos_token_id
        if ids is None:
            return []
        return [int(i) for i in (ids if isinstance(ids, list | tuple) else [ids])]

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The prompt text for a conversation, ending where the assistant's reply starts."""
        msgs = _check_messages(messages)
        if self.has_chat_template:
            text = self.tokenizer.apply_chat_template(
                msgs, tokenize=False, add_generation_prompt=True
            )
            return str(text)
        lines = [f"{m['role']}: {m['content']}" for m in msgs]
        return "\n".join([*lines, "assistant:"])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | None = None,
        *,
        seed: int | None = None,
        repetition_penalty: float | None = None,
        no_repeat_ngram_size: int | None = None,
    ) -> list[GenerationResult]:
        """Complete every prompt in one batch (left-padded). ``temperature=0`` is greedy.

        ``repetition_penalty`` / ``no_repeat_ngram_size``: None takes the
        model's ``generation_defaults`` (``GENERATION_DEFAULTS`` unless the
        version pins its own); 1.0 / 0 turn them off.
        """
        prompts = self._check_generate_args(prompts, max_new_tokens, temperature, top_p, stop)
        import torch
        from transformers import GenerationConfig

        tok = self.tokenizer
        bos = tok.bos_token
        # Chat templates usually write the BOS token themselves; never add a second one.
        add_special = not (bos and all(p.startswith(bos) for p in prompts))
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=add_special)
        device = next(self.model.parameters()).device
        enc = {k: v.to(device) for k, v in enc.items()}
        eos = self.eos_token_ids
        cfg: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": eos or None,
            "do_sample": temperature > 0,
        }
        if temperature > 0:
            cfg.update(temperature=temperature, top_p=top_p, top_k=0)
        stops = [s for s in (stop or []) if s]
        gen_kw: dict[str, Any] = {}
        anti = self.anti_repetition(
            int(enc["input_ids"].shape[1]), repetition_penalty, no_repeat_ngram_size
        )
        if anti:
            from transformers import LogitsProcessorList

            gen_kw["logits_processor"] = LogitsProcessorList(anti)
        if stops:
            cfg["stop_strings"] = stops
            gen_kw["tokenizer"] = tok  # stop strings are matched on decoded text
        gen_kw["generation_config"] = GenerationConfig(**cfg)  # type: ignore[no-untyped-call]
        with self._lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(**enc, **gen_kw)
        input_len = enc["input_ids"].shape[1]
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        results = []
        eos_set = set(eos)
        for row, plen in zip(out[:, input_len:].tolist(), prompt_lens, strict=True):
            n, finished = len(row), False
            for i, t in enumerate(row):
                if t in eos_set:
                    n, finished = i + 1, True
                    break
            if not finished:
                # A row stopped by a stop string is padded up to the batch's longest row.
                while n > 0 and row[n - 1] == tok.pad_token_id:
                    n -= 1
            text = tok.decode(row[:n], skip_special_tokens=True)
            reason = "stop" if finished or n < max_new_tokens else "length"
            cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                text, reason = text[:cut], "stop"
            results.append(GenerationResult(text, int(plen), n, reason))
        return results

    @staticmethod
    def _check_generate_args(
        prompts: Any, max_new_tokens: Any, temperature: Any, top_p: Any, stop: Any
    ) -> list[str]:
        if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
            raise InvalidArgument("prompts must be a non-empty list of strings")
        if len(prompts) > MAX_PROMPTS:
            raise InvalidArgument(f"at most {MAX_PROMPTS} prompts per call, got {len(prompts)}")
        if not all(isinstance(p, str) for p in prompts):
            raise InvalidArgument("every prompt must be a string")
        if not isinstance(max_new_tokens, int) or not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
            raise InvalidArgument(f"max_new_tokens must be an integer in 1..{MAX_NEW_TOKENS}")
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 10:
            raise InvalidArgument("temperature must be a number in 0..10")
        if not isinstance(top_p, int | float) or not 0 < top_p <= 1:
            raise InvalidArgument("top_p must be a number in (0, 1]")
        if stop is not None and (
            isinstance(stop, str) or not all(isinstance(s, str) for s in stop) or len(stop) > 16
        ):
            raise InvalidArgument("stop must be a list of at most 16 strings")
        return list(prompts)

    def _predict(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        # A chat model answers a bare prompt best as one user turn.
        prompts = [
            self.apply_chat_template([{"role": "user", "content": p}])
            if self.has_chat_template
            else p
            for p in columns["prompt"]
        ]
        max_new = int(self.metadata.get("max_new_tokens", 64))
        return [r.text for r in self.generate(prompts, max_new_tokens=max_new)]


class _GeneratedRepetition:
    """A logits processor: repetition penalty and n-gram blocking over the generated tokens only.

    ``penalty`` (> 1) divides positive logits and multiplies negative ones of
    every token generated so far (as transformers' ``repetition_penalty``);
    ``ngram`` (> 0) bans any token that would repeat a generated ``ngram``-gram.
    """

    def __init__(self, prompt_len: int, penalty: float, ngram: int) -> None:
        self.prompt_len = prompt_len
        self.penalty = penalty
        self.ngram = ngram

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        gen = input_ids[:, self.prompt_len :]
        if gen.shape[1] == 0:
            return scores
        if self.penalty != 1.0:
            picked = torch.gather(scores, 1, gen)
            picked = torch.where(picked > 0, picked / self.penalty, picked * self.penalty)
            scores = scores.scatter(1, gen, picked)
        n = self.ngram
        if n > 0 and gen.shape[1] >= n:
            rows = gen.tolist()
            for b, toks in enumerate(rows):
                prefix = tuple(toks[len(toks) - n + 1 :]) if n > 1 else ()
                banned = [
                    toks[i + n - 1]
                    for i in range(len(toks) - n + 1)
                    if tuple(toks[i : i + n - 1]) == prefix
                ]
                if banned:
                    scores[b, banned] = -float("inf")
        return scores


def embedding_dimension(model: Any) -> int:
    """A SentenceTransformer's output size (the method was renamed in sentence-transformers 6)."""
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


class LoadedEmbedder(LoadedModel):
    """A sentence-embedding model: ``embed(texts)`` gives one vector per text."""

    def __init__(
        self,
        model: Any,
        *,
        model_id: str,
        flavor: str = "sentence_transformers",
        signature: Signature | None = None,
        metadata: Mapping[str, Any] | None = None,
        path: Path | None = None,
        batch_size: int = 32,
    ) -> None:
        dim = embedding_dimension(model)
        if signature is None:
            signature = Signature(
                [ColumnSpec("text", "string")], [ColumnSpec("embedding", "tensor", shape=(-1, dim))]
            )
        super().__init__(flavor, signature, metadata, path=path)
        model.eval()
        self.model = model
        self.model_id = model_id
        self.dimension = dim
        self.batch_size = batch_size
        self._lock = threading.Lock()

    @property
    def max_seq_length(self) -> int | None:
        v = getattr(self.model, "max_seq_length", None)
        return None if v is None else int(v)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One ``dimension``-long vector per text (normalised if the model normalises)."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidArgument("texts must be a list of strings")
        if not all(isinstance(t, str) for t in texts):
            raise InvalidArgument("every text to embed must be a string")
        if not texts:
            return []
        with self._lock:
            vecs = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [[float(x) for x in v] for v in vecs]

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _predict(self, columns: dict[str, list[Any]], n: int) -> list[Any]:
        return self.embed(columns["text"])
