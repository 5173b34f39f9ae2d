"""Causal language models with transformers: safetensors + tokenizer, or a GGUF file.

A version holds either a Hugging Face folder (``config.json``,
``*.safetensors``, tokenizer files; ``format: hf``) or one ``.gguf`` file
(``format: gguf``), or int8 weights saved by ``opsloop models quantize``
(``format: int8``, see ``_int8.py``). transformers reads a GGUF by de-quantising it
(``from_pretrained(dir, gguf_file=name)``, which needs ``gguf`` and
``accelerate``), which takes tens of seconds; the result is saved once as
safetensors under ``<cache_dir>/gguf/<sha256 of the GGUF>/`` and every later
load reads that. Weights load with ``use_safetensors``: no pickle.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry.flavors._base import (
    LoadContext,
    LoadedCausalLM,
    ModelDescriptor,
    hub_offline,
)
from opsloop.registry.flavors._common import (
    file_digest,
    library_versions,
    model_files,
    prepare_folder,
    require_files,
    write_descriptor,
)
from opsloop.registry.flavors._signature import Signature

COMPLETE = ".opsloop-complete"
_LIBS = ("transformers", "torch", "tokenizers", "safetensors")


def save_transformers(
    model: Any,
    tokenizer: Any,
    path: str | os.PathLike[str],
    *,
    model_id: str | None = None,
    signature: Signature | dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a causal LM and its tokenizer as safetensors in a model folder."""
    folder = prepare_folder(path, overwrite=overwrite)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    mid = model_id or str(getattr(model.config, "_name_or_path", "") or "") or folder.name
    sig = Signature.from_dict(signature) if isinstance(signature, dict) else signature
    write_descriptor(
        folder,
        "transformers",
        sig,
        {
            "format": "hf",
            "model_id": mid,
            "task": "text-generation",
            "library_versions": library_versions(*_LIBS),
        },
    )
    return folder


def save_gguf(
    gguf_file: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    model_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """A model folder holding a copy of one GGUF file (converted on first load, then cached)."""
    src = Path(gguf_file)
    if not src.is_file() or src.suffix != ".gguf":
        raise InvalidArgument(f"{src} is not a .gguf file")
    folder = prepare_folder(path, overwrite=overwrite)
    shutil.copyfile(src, folder / src.name)
    write_descriptor(folder, "transformers", None, _gguf_meta(src.name, model_id))
    return folder


def _gguf_meta(name: str, model_id: str | None) -> dict[str, Any]:
    return {
        "format": "gguf",
        "gguf_file": name,
        "model_id": model_id or name.removesuffix(".gguf"),
        "task": "text-generation",
        "library_versions": library_versions("gguf", *_LIBS),
    }


def describe(files: list[str], options: dict[str, Any]) -> ModelDescriptor:
    mf = model_files(files)
    ggufs = [f for f in mf if f.endswith(".gguf")]
    model_id = options.pop("model_id", None)
    if ggufs:
        name = options.pop("gguf_file", None) or (ggufs[0] if len(ggufs) == 1 else None)
        if name is None:
            raise InvalidArgument(
                f"several .gguf files {ggufs}: choose one with options gguf_file=..."
            )
        return ModelDescriptor("transformers", None, {**_gguf_meta(name, model_id), **options})
    if "config.json" in mf:
        return ModelDescriptor(
            "transformers",
            None,
            {
                "format": "hf",
                "model_id": model_id or "model",
                "task": "text-generation",
                **options,
            },
        )
    raise InvalidArgument(
        "a transformers version needs a Hugging Face folder (config.json + weights) or a .gguf file"
    )


def validate(files: list[str], desc: ModelDescriptor) -> None:
    fmt = desc.metadata.get("format", "hf")
    if fmt == "gguf":
        require_files(files, [str(desc.metadata.get("gguf_file"))], "transformers (gguf)")
    elif fmt == "hf":
        require_files(files, ["config.json"], "transformers")
        if not any(f.endswith(".safetensors") for f in files):
            raise InvalidArgument("a transformers version must hold its weights as .safetensors")
    elif fmt == "int8":  # saved by opsloop.registry.flavors._int8 (opsloop models quantize)
        require_files(files, ["config.json", "model-int8.safetensors"], "transformers (int8)")
    else:
        raise InvalidArgument(f"unknown transformers format {fmt!r} (hf, gguf or int8)")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def converted_gguf_dir(gguf: Path, cache_dir: Path, digest: str | None = None) -> Path:
    """A safetensors + tokenizer folder for ``gguf``, converted once per GGUF content digest.

    Concurrent loaders (threads or processes) wait for one conversion; a crash
    mid-way leaves only a temporary folder, never a half-written cache entry.
    """
    hexd = (digest or file_digest(gguf)).removeprefix("sha256:")
    target = cache_dir / "gguf" / hexd
    if (target / COMPLETE).is_file():
        return target
    with _file_lock(cache_dir / "gguf" / f"{hexd}.lock"):
        if (target / COMPLETE).is_file():
            return target
        tmp = cache_dir / "gguf" / f".tmp-{uuid.uuid4().hex}"
        try:
            _convert(gguf, tmp)
            (tmp / COMPLETE).write_text(str(time.time()))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> None:
    hub_offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    with _quiet(), _parse_gguf_once():
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # The de-quantised weights are plain tensors now; drop the GGUF quantizer marker so
    # they save as ordinary safetensors.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.mkdir(parents=True, exist_ok=True)
    with _quiet():
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)


@contextlib.contextmanager
def _parse_gguf_once() -> Iterator[None]:
    """Let transformers parse the GGUF once per conversion instead of four times.

    Loading the tokenizer and the model each re-open the file and re-parse its
    metadata (for Gemma 3, a 262k-entry vocabulary), which is most of the
    conversion time. While converting, the reader and the metadata-only parse
    are memoised per path (the parse is deep-copied: callers change it); both
    are restored afterwards. If the library internals move, this does nothing.
    """

    try:
        import gguf as gguf_lib
        import transformers.modeling_gguf_pytorch_utils as tg
    except ImportError:  # pragma: no cover - the loaders raise the real error
        yield
        return
    reader_cls = getattr(gguf_lib, "GGUFReader", None)
    load_ckpt = getattr(tg, "load_gguf_checkpoint", None)
    if reader_cls is None or load_ckpt is None:  # pragma: no cover - other versions
        yield
        return
    readers: dict[tuple[str, str], Any] = {}
    parsed: dict[str, Any] = {}

    def reader(path: Any, mode: str = "r") -> Any:
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = reader_cls(path, mode)
        return readers[key]

    def load(path: Any, return_tensors: bool = False, **kw: Any) -> Any:
        if return_tensors or kw:
            return load_ckpt(path, return_tensors=return_tensors, **kw)
        key = os.fspath(path)
        if key not in parsed:
            parsed[key] = load_ckpt(path, return_tensors=False)
        return copy.deepcopy(parsed[key])

    gguf_lib.GGUFReader = reader  # type: ignore[misc,assignment]
    tg.load_gguf_checkpoint = load  # type: ignore[assignment]
    # Its per-tensor tqdm bar would draw over a CLI's own progress display.
    bar = getattr(tg, "tqdm", None)
    if bar is not None:
        setattr(tg, "tqdm", functools.partial(bar, disable=True))  # noqa: B010
    try:
        yield
    finally:
        gguf_lib.GGUFReader = reader_cls  # type: ignore[misc]
        tg.load_gguf_checkpoint = load_ckpt
        if bar is not None:
            setattr(tg, "tqdm", bar)  # noqa: B010
        readers.clear()
        parsed.clear()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Library warnings are not errors of the caller's; keep them out of its warning filters.

    Also no progress bars of transformers' own (loading weights, de-quantizing
    a GGUF): they would write over a CLI's rich progress display.
    """

    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _device(ctx: LoadContext) -> str:
    if ctx.device:
        return ctx.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_hf(folder: Path, ctx: LoadContext) -> tuple[Any, Any]:
    """Model (eval, on the context's device) and tokenizer from a Hugging Face folder."""
    hub_offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet():
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True
        )
    model.to(_device(ctx))
    model.eval()
    return model, tok


def load(path: Path, desc: ModelDescriptor, ctx: LoadContext) -> LoadedCausalLM:
    meta = desc.metadata
    folder = path
    if meta.get("format") == "gguf":
        name = str(meta["gguf_file"])
        folder = converted_gguf_dir(path / name, ctx.cache_dir, ctx.digests.get(name))
    if meta.get("format") == "int8":
        from opsloop.registry.flavors._int8 import load_int8  # lazy: torch

        model, tok = load_int8(folder, ctx)
    else:
        model, tok = load_hf(folder, ctx)
    return LoadedCausalLM(
        model,
        tok,
        model_id=str(meta.get("model_id") or path.name),
        flavor="transformers",
        signature=desc.signature,
        metadata=meta,
        path=path,
    )
