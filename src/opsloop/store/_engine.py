"""Engines, transactions and the schema-version check.

SQLite is opened in WAL mode with a long busy timeout, and every write
transaction starts with ``BEGIN IMMEDIATE``: a writer takes the write lock up
front and waits for it, instead of upgrading a read lock later and failing at
once with "database is locked" when another process got there first. Readers
never block in WAL mode.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from opsloop.errors import InvalidArgument, SchemaOutOfDate, Unavailable

# The Alembic revision this code expects. tests/test_migrations.py checks it
# equals the head of store/migrations, so the server can check the schema
# without importing Alembic on every start.
SCHEMA_HEAD = "0010"

_BUSY_TIMEOUT_MS = 120_000


def _sqlite_path(url: sa.URL) -> Path | None:
    db = url.database
    if not db or db == ":memory:":
        return None
    return Path(db)


def create_db_engine(url: str) -> Engine:
    """An engine with opsloop's connection settings for SQLite or PostgreSQL."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InvalidArgument(f"not a database URL: {url!r} ({exc})") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidArgument(
            f"opsloop keeps its metadata in SQLite or PostgreSQL, not "
            f"{parsed.get_backend_name()!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB",
            details={"backend": parsed.get_backend_name()},
        )
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidArgument(
                    f"cannot make the folder of the database {path}: {exc.strerror or exc} "
                    "(is the home a file?)",
                    details={"path": str(path.parent)},
                ) from None
        engine = sa.create_engine(
            parsed,
            connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_pre_ping=False,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would defer it).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable against process crashes in WAL
            cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("opsloop_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except ImportError as exc:
        raise InvalidArgument(
            f"a PostgreSQL database needs its driver ({exc.name or exc}): "
            "pip install 'opsloop[postgres]'"
        ) from None


@contextlib.contextmanager
def _connected(engine: Engine, safe_url: str) -> Iterator[Connection]:
    """A connection; a database that cannot be reached is ``Unavailable`` naming it."""
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as exc:
        reason = " ".join(str(exc.orig).split())  # one line: drivers add hints on new lines
        raise Unavailable(f"cannot connect to the database at {safe_url}: {reason}") from exc
    with conn:
        yield conn


class Database:
    """An engine plus the transaction helpers every service uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any error."""
        try:
            conn = self.engine.connect()
        except sa.exc.OperationalError as exc:
            reason = " ".join(str(exc.orig).split())
            raise Unavailable(f"cannot connect to the database: {reason}") from exc
        with conn:
            if self.is_sqlite:
                conn.execution_options(opsloop_begin="IMMEDIATE")
            try:
                with conn.begin():
                    yield conn
            except sa.exc.OperationalError as exc:
                if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                    raise Unavailable(
                        f"the database stayed locked by another writer for longer than the "
                        f"{_BUSY_TIMEOUT_MS // 1000} s busy timeout; nothing was written, try again"
                    ) from exc
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot (one transaction, never writes)."""
        try:
            conn = self.engine.connect()
        except sa.exc.OperationalError as exc:
            reason = " ".join(str(exc.orig).split())
            raise Unavailable(f"cannot connect to the database: {reason}") from exc
        with conn, conn.begin():
            yield conn

    # -- schema -------------------------------------------------------------

    def current_revision(self) -> str | None:
        """The Alembic revision stored in the database, or None for an empty database."""
        with _connected(self.engine, self.safe_url) as conn:
            insp = sa.inspect(conn)
            if not insp.has_table("alembic_version"):
                return None
            row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
            return None if row is None else str(row[0])

    def is_empty(self) -> bool:
        with _connected(self.engine, self.safe_url) as conn:
            return not sa.inspect(conn).get_table_names()

    def check_schema(self) -> None:
        """Raise ``SchemaOutOfDate`` unless the database is at ``SCHEMA_HEAD``."""
        rev = self.current_revision()
        if rev == SCHEMA_HEAD:
            return
        if rev is None:
            raise SchemaOutOfDate(
                f"the database at {self.safe_url} has no opsloop schema: run `opsloop db upgrade`",
                details={"current": None, "required": SCHEMA_HEAD},
            )
        from opsloop.store.migrate import known_revisions  # lazy: loads alembic

        if rev in known_revisions():
            raise SchemaOutOfDate(
                f"the database schema is at revision {rev}, this opsloop needs {SCHEMA_HEAD}: "
                "run `opsloop db upgrade` (back up the database first)",
                details={"current": rev, "required": SCHEMA_HEAD},
            )
        raise SchemaOutOfDate(
            f"the database schema is at revision {rev}, which this opsloop does not know: "
            "it was written by a newer opsloop; upgrade opsloop",
            details={"current": rev, "required": SCHEMA_HEAD},
        )

    def ensure_schema(self, *, create_if_empty: bool = True) -> None:
        """Create the schema in an empty database; otherwise check it is current.

        A database that holds data is never migrated implicitly: that is what
        ``opsloop db upgrade`` is for.
        """
        if self.current_revision() == SCHEMA_HEAD:
            return
        if create_if_empty:
            # Taken even when the database is not empty: another process may be
            # creating the schema right now (tables exist, revision not yet at head),
            # and waiting for it is what lets this one see the finished schema.
            with self._init_lock():
                if self.is_empty():
                    from opsloop.store.migrate import upgrade  # lazy: loads alembic

                    upgrade(self.url)
        self.check_schema()

    @contextlib.contextmanager
    def _init_lock(self) -> Iterator[None]:
        """Serialise first-time schema creation across processes."""
        if self.is_sqlite:
            path = _sqlite_path(self.engine.url)
            if path is None:
                yield
                return
            import fcntl

            lock_path = path.with_suffix(path.suffix + ".init.lock")
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        else:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(724001)"))
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(724001)"))
                    conn.commit()

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds, the unit of every stored timestamp."""
    return int(time.time() * 1000)
