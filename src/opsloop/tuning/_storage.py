"""Where a study's Optuna state lives, so a study survives a crash and workers can share it.

- opsloop on SQLite (the embedded default): a separate SQLite file next to
  opsloop's, ``<home>/tuning.db``. Optuna brings its own tables and its own
  Alembic version table, which must not meet opsloop's; a second file keeps
  them apart and lets processes and Ray workers on one machine share it.
- opsloop on PostgreSQL: the same database, in its own schema
  (``opsloop_tuning``), so machines of a Ray cluster share it.
- opsloop as a remote server (``tracking_uri``): the client's home,
  ``<home>/tuning.db``, unless ``storage=`` names a PostgreSQL URL (what
  several machines need).
- ``storage="memory"``: nothing persists (no resume, no process or Ray workers).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.settings import Settings

PG_SCHEMA = "opsloop_tuning"
_SQLITE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class StorageSpec:
    """A resolved study storage. ``url`` may hold a password; ``display`` never does."""

    kind: str  # memory | sqlite | postgresql | other
    url: str = ""
    display: str = ""
    engine_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def persistent(self) -> bool:
        return self.kind != "memory"

    @property
    def shared_across_machines(self) -> bool:
        return self.kind in ("postgresql", "other")


def _display(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


class _SQLiteConnection(sqlite3.Connection):
    """Optuna's SQLite connections, set up like opsloop's own.

    WAL with ``synchronous=NORMAL`` survives a killed process (only a power
    cut can lose the last commits) and skips an fsync per commit, which is
    most of Optuna's per-trial cost on SQLite.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA synchronous=NORMAL")
        self.execute(f"PRAGMA busy_timeout={int(_SQLITE_TIMEOUT_S * 1000)}")


def _sqlite(path: Path) -> StorageSpec:
    url = f"sqlite:///{path.resolve()}"
    return StorageSpec(
        kind="sqlite",
        url=url,
        display=url,
        engine_kwargs={
            "connect_args": {"timeout": _SQLITE_TIMEOUT_S, "factory": _SQLiteConnection}
        },
    )


def _postgres(url: str, schema: str = PG_SCHEMA) -> StorageSpec:
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    full = parsed.render_as_string(hide_password=False)
    return StorageSpec(
        kind="postgresql",
        url=full,
        display=f"{_display(full)} (schema {schema})",
        engine_kwargs={
            "connect_args": {"options": f"-c search_path={schema}"},
            "pool_pre_ping": True,
        },
    )


def resolve_storage(
    settings: Settings, storage: str | os.PathLike[str] | None = None
) -> StorageSpec:
    """The storage a study of ``settings``' opsloop uses (see the module docstring).

    ``storage`` overrides it: ``"memory"``, a SQLite or PostgreSQL URL, or a
    file path (a SQLite file).
    """
    if storage is not None:
        s = os.fspath(storage)
        if s == "memory":
            return StorageSpec(kind="memory", display="memory")
        if s.startswith("sqlite:"):
            db = s.split(":///", 1)[1] if ":///" in s else ""
            if not db or db == ":memory:":
                raise InvalidArgument(
                    "an in-memory SQLite URL cannot hold a study; use storage='memory'"
                )
            return _sqlite(Path(db))
        if s.startswith("postgresql"):
            return _postgres(s)
        if "://" in s:
            return StorageSpec(kind="other", url=s, display=_display(s))
        return _sqlite(Path(s).expanduser())
    if settings.is_remote or not settings.database_url:
        return _sqlite(settings.home / "tuning.db")
    db_url = settings.database_url
    if db_url.startswith("postgresql"):
        return _postgres(db_url)
    if db_url.startswith("sqlite:") and ":///" in db_url:
        db_path = Path(db_url.split(":///", 1)[1])
        if str(db_path) not in ("", ".", ":memory:"):
            return _sqlite(db_path.with_name(f"{db_path.stem}-tuning.db"))
    return _sqlite(settings.home / "tuning.db")


def _prepare(spec: StorageSpec) -> None:
    if spec.kind == "sqlite":
        path = Path(spec.url.split(":///", 1)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        # WAL lets readers (the UI, `tune show`) work while trials write, and
        # survives a killed process; the mode is stored in the file, once.
        con = sqlite3.connect(path, timeout=_SQLITE_TIMEOUT_S)
        try:
            con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()
    elif spec.kind == "postgresql":
        import sqlalchemy as sa

        engine = sa.create_engine(spec.url, isolation_level="AUTOCOMMIT")
        try:
            # Two processes creating the schema at once: the loser's error is harmless.
            with engine.connect() as conn, contextlib.suppress(sa.exc.IntegrityError):
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{PG_SCHEMA}"'))
        finally:
            engine.dispose()


StaleCallback = Callable[[Any, Any], None]


def open_storage(
    spec: StorageSpec,
    *,
    heartbeat_s: int | None = None,
    on_stale: StaleCallback | None = None,
) -> Any:
    """An Optuna storage for ``spec``; with ``heartbeat_s``, trials of dead workers go stale.

    Trials whose heartbeat is older than three intervals are failed by the
    next trial any worker starts, and ``on_stale(study, trial)`` runs for each.
    """
    import optuna
    from optuna.exceptions import ExperimentalWarning

    if spec.kind == "memory":
        return optuna.storages.InMemoryStorage()
    _prepare(spec)
    kwargs: dict[str, Any] = {"engine_kwargs": dict(spec.engine_kwargs)}
    if heartbeat_s:
        kwargs.update(
            heartbeat_interval=int(heartbeat_s),
            grace_period=int(heartbeat_s) * 3,
            heartbeat_stale_trial_callback=on_stale,
        )
    try:
        with warnings.catch_warnings():
            # Optuna marks its heartbeat experimental; it is what cluster workers need.
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.storages.RDBStorage(spec.url, **kwargs)
    except ImportError as exc:
        raise InvalidArgument(f"cannot open study storage {spec.display}: {exc}") from exc
