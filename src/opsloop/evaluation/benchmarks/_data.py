"""Where benchmark data lives and how it is read: JSONL, Parquet, or a ``datasets.save_to_disk`` folder.

``load_task_data`` finds a task's records, first found wins:

1. the benchmark data folder (``data_dir`` / ``--data-dir``,
   ``OPSLOOP_BENCHDATA``, or ``../shared/benchdata`` beside a source checkout);
2. the home's copy of a set loaded from the hub before
   (``<home>/cache/benchdata/<task>.jsonl``);
3. the task's standard dataset on the Hugging Face hub, when the ``datasets``
   package is importable, the hub is not switched off (``HF_HUB_OFFLINE``,
   ``HF_DATASETS_OFFLINE``) and answers; the records are then kept in the home;
4. the excerpt shipped inside the package (the first 16 records), when no
   more rows than it holds are asked for (``--limit 16`` or less).

Otherwise ``NotFound`` says which folder, flag or package would help.

A folder written by ``Dataset.save_to_disk`` holds Arrow IPC *stream* files
listed in ``state.json`` (``DatasetDict.save_to_disk`` adds
``dataset_dict.json`` and one such folder per split). They are read here with
pyarrow alone, so the runner does not need the ``datasets`` package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from opsloop.errors import InvalidArgument, NotFound
from opsloop.settings import Settings

if TYPE_CHECKING:
    from opsloop.evaluation.benchmarks._task import TaskSpec

__all__ = [
    "EXCERPTS_DIR",
    "TaskData",
    "default_data_dir",
    "load_task_data",
    "read_records",
    "resolve_source",
]

EXCERPTS_DIR = Path(__file__).parent / "excerpts"
HUB_PROBE_TIMEOUT_S = 3.0

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


# ---------------------------------------------------------------- finding a task's data


@dataclass(frozen=True)
class TaskData:
    """A task's records and where they came from (``folder``, ``hub``, ``hub-cache``, ``excerpt``)."""

    records: list[dict[str, Any]]
    origin: str
    location: str


def hub_cache_file(home: Path, task: str) -> Path:
    return Path(home).expanduser() / "cache" / "benchdata" / f"{task}.jsonl"


def _hub_unavailable() -> str | None:
    """Why the hub cannot be tried now (None: try it)."""
    if importlib.util.find_spec("datasets") is None:
        return "the `datasets` package is not installed (pip install datasets)"
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var} is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        return f"{host} cannot be reached ({exc.strerror or exc})"
    return None


def _load_from_hub(spec: TaskSpec, home: Path) -> list[dict[str, Any]]:
    """The task's hub dataset as records, kept in ``<home>/cache/benchdata`` for next time."""
    import datasets  # lazy: optional, heavy

    assert spec.hub is not None
    ds = datasets.load_dataset(
        spec.hub.path,
        spec.hub.name,
        split=spec.hub.split,
        cache_dir=str(Path(home).expanduser() / "cache" / "huggingface"),
    )
    records = [dict(r) for r in ds]
    target = hub_cache_file(home, spec.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, default=str) + "\n")
    os.replace(tmp, target)
    return records


def excerpt_file(task: str) -> Path:
    return EXCERPTS_DIR / f"{task}.jsonl"


def load_task_data(
    spec: TaskSpec,
    data_dir: Path | None,
    *,
    home: Path,
    limit: int | None,
    explicit_dir: bool = False,
) -> TaskData:
    """``spec``'s records from the first place that has them (see the module's docstring).

    ``explicit_dir``: ``data_dir`` was asked for by name (argument, flag or
    setting), so a file missing there is an error rather than a reason to look
    further.
    """
    source = Path(spec.source).expanduser()
    if source.is_absolute() or (data_dir is not None and (data_dir / source).exists()):
        path = resolve_source(spec.source, data_dir, task=spec.name)
        return TaskData(read_records(path, split=spec.split, task=spec.name), "folder", str(path))
    if explicit_dir and data_dir is not None:
        resolve_source(spec.source, data_dir, task=spec.name)  # raises NotFound naming the file
    cached = hub_cache_file(home, spec.name)
    if spec.hub is not None and cached.is_file():
        return TaskData(read_records(cached, task=spec.name), "hub-cache", str(cached))
    why_not_hub = "the task names no hub dataset"
    if spec.hub is not None:
        why_not_hub = _hub_unavailable() or ""
        if not why_not_hub:
            try:
                records = _load_from_hub(spec, home)
            except Exception as exc:  # any failure of the optional hub path falls back
                why_not_hub = f"loading it failed: {type(exc).__name__}: {str(exc)[:200]}"
            else:
                where = spec.hub.path + (f" ({spec.hub.name})" if spec.hub.name else "")
                return TaskData(records, "hub", f"{where} {spec.hub.split}")
    excerpt = excerpt_file(spec.name)
    shipped = read_records(excerpt, task=spec.name) if excerpt.is_file() else []
    if shipped and limit is not None and limit <= len(shipped):
        return TaskData(shipped, "excerpt", str(excerpt))
    raise NotFound(_no_data_message(spec, data_dir, why_not_hub, len(shipped)), details={
        "task": spec.name,
        "source": spec.source,
        "data_dir": None if data_dir is None else str(data_dir),
        "hub": None if spec.hub is None else spec.hub.path,
        "excerpt_rows": len(shipped),
    })  # fmt: skip


def _no_data_message(spec: TaskSpec, data_dir: Path | None, why_not_hub: str, rows: int) -> str:
    where = f"{data_dir / spec.source} does not exist" if data_dir else "no data folder is set"
    parts = [
        f"task {spec.name!r} has no data here ({where}): put {Path(spec.source).name} in a "
        "folder and pass --data-dir FOLDER (Python: data_dir=FOLDER) or set "
        "OPSLOOP_BENCHDATA=FOLDER"
    ]
    if spec.hub is not None:
        hub = spec.hub.path + (f" {spec.hub.name}" if spec.hub.name else "")
        parts.append(
            f"or let opsloop download {hub} from the Hugging Face hub (needs "
            f"`pip install datasets` and network access; now: {why_not_hub})"
        )
    if rows:
        parts.append(f"or run on the {rows} records shipped with opsloop: --limit {rows} or less")
    return "; ".join(parts)
