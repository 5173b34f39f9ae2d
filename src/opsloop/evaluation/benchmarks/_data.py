"""Where benchmark data lives and how it is read: JSONL, Parquet, or a ``datasets.save_to_disk`` folder.

A folder written by ``Dataset.save_to_disk`` holds Arrow IPC *stream* files
listed in ``state.json`` (``DatasetDict.save_to_disk`` adds
``dataset_dict.json`` and one such folder per split). They are read here with
pyarrow alone, so the runner does not need the ``datasets`` package.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument, NotFound
from opsloop.settings import Settings

__all__ = ["default_data_dir", "read_records", "resolve_source"]

# src/opsloop/evaluation/benchmarks/_data.py -> the repository root is four folders up.
_REPO_ROOT = Path(__file__).resolve().parents[4]


def default_data_dir(settings: Settings | None = None) -> Path | None:
    """``settings.benchdata`` (``$OPSLOOP_BENCHDATA``), else ``../shared/benchdata`` beside a checkout."""
    configured = getattr(settings, "benchdata", None) if settings is not None else None
    if configured is None and settings is None:
        configured = getattr(Settings(), "benchdata", None)
    if configured:
        return Path(configured).expanduser()
    beside = _REPO_ROOT.parent / "shared" / "benchdata"
    return beside if beside.is_dir() else None


def resolve_source(source: str, data_dir: Path | None, *, task: str) -> Path:
    """The file or folder a task's ``source`` names (absolute, or relative to ``data_dir``)."""
    p = Path(source).expanduser()
    if not p.is_absolute():
        if data_dir is None:
            raise NotFound(
                f"task {task!r} reads {source!r} relative to the benchmark data folder, and none "
                "is set: pass data_dir / --data-dir or set OPSLOOP_BENCHDATA",
                details={"task": task, "source": source},
            )
        p = data_dir / p
    if not p.exists():
        raise NotFound(
            f"task {task!r}: data source {p} does not exist",
            details={"task": task, "source": str(p)},
        )
    return p


def read_records(path: Path, *, split: str | None = None, task: str = "") -> list[dict[str, Any]]:
    """Every record of a ``.jsonl``/``.json`` file, a ``.parquet`` file or a saved HF dataset folder."""
    if path.is_dir():
        return _read_hf_folder(path, split, task)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return list(_read_jsonl(path, task))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_table(path).to_pylist())
    raise InvalidArgument(
        f"task {task!r}: cannot read {path.name}: use .jsonl, .parquet or a folder "
        "written by datasets' save_to_disk",
        details={"task": task, "source": str(path)},
    )


def _read_jsonl(path: Path, task: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(
                    f"task {task!r}: {path.name} line {lineno} is not JSON: {exc.msg}",
                    details={"task": task, "source": str(path), "line": lineno},
                ) from None
            if not isinstance(rec, dict):
                raise InvalidArgument(
                    f"task {task!r}: {path.name} line {lineno} is not a JSON object",
                    details={"task": task, "source": str(path), "line": lineno},
                )
            yield rec


def _read_hf_folder(folder: Path, split: str | None, task: str) -> list[dict[str, Any]]:
    dict_file = folder / "dataset_dict.json"
    if dict_file.is_file():
        splits = list(json.loads(dict_file.read_text()).get("splits") or [])
        if split is None:
            if len(splits) != 1:
                raise InvalidArgument(
                    f"task {task!r}: {folder} holds the splits {splits}; name one with 'split'",
                    details={"task": task, "splits": splits},
                )
            split = splits[0]
        if split not in splits:
            raise NotFound(
                f"task {task!r}: {folder} has no split {split!r} (it has {splits})",
                details={"task": task, "split": split, "splits": splits},
            )
        folder = folder / split
    files = _arrow_files(folder)
    if not files:
        raise InvalidArgument(
            f"task {task!r}: {folder} is neither a dataset saved with save_to_disk nor a folder "
            "of .arrow files",
            details={"task": task, "source": str(folder)},
        )
    import pyarrow as pa

    rows: list[dict[str, Any]] = []
    for f in files:
        with pa.memory_map(os.fspath(f)) as src:
            try:
                table = pa.ipc.open_stream(src).read_all()
            except pa.ArrowInvalid:
                src.seek(0)
                table = pa.ipc.open_file(src).read_all()
        rows.extend(table.to_pylist())
    return rows


def _arrow_files(folder: Path) -> list[Path]:
    state = folder / "state.json"
    if state.is_file():
        names = [d["filename"] for d in json.loads(state.read_text()).get("_data_files", [])]
        return [folder / n for n in names]
    return sorted(folder.glob("*.arrow"))
