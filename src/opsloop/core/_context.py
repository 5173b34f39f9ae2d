"""``Context``: what a room is given instead of a ``Client``.

A context holds the settings, the acting identity, and the way to storage:
embedded, the database and the blob store (opened on first use); remote, one
``Transport`` to a server. Rooms build their backends from it through
``seam(embedded, remote)``, chosen once from the settings, and keep one
instance of each room object per context (``room(factory)``), so every part
of a program that shares a context shares buffers, caches and connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from opsloop.core._identity import resolve_user
from opsloop.errors import InvalidArgument
from opsloop.settings import Settings

if TYPE_CHECKING:
    from opsloop.core._transport import Transport  # lazy: loads httpx
    from opsloop.store import ArtifactStore, Database

__all__ = [
    "Context",
    "HasContext",
    "active_run_id",
    "context_of",
    "default_context",
    "pop_active_run",
    "push_active_run",
    "set_default_context",
]

T = TypeVar("T")


class Context:
    """Settings, identity and storage access for the rooms of one program or request.

    ``Context(settings)`` opens nothing until asked: ``database`` and
    ``blobs`` open on first use (embedded), ``transport`` on first use
    (remote). ``close()`` releases them and closes every room object that
    has a ``close`` method.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        user: str | None = None,
        database: Database | None = None,
        blobs: ArtifactStore | None = None,
        create_schema: bool = True,
    ) -> None:
        self.settings = settings or Settings()
        self._user = user
        self._database = database
        self._blobs = blobs
        self._transport: Transport | None = None
        self._create_schema = create_schema
        self._rooms: dict[object, Any] = {}
        self._lock = threading.RLock()
        self._closed = False

    # -- identity and mode ---------------------------------------------------------

    @property
    def user(self) -> str:
        """The acting user (see ``opsloop.core.resolve_user``)."""
        return resolve_user(self.settings, self._user)

    @property
    def is_remote(self) -> bool:
        """True when rooms talk to a server over HTTP rather than to the store."""
        return self.settings.is_remote

    # -- storage -------------------------------------------------------------------

    @property
    def database(self) -> Database:
        """The metadata database (embedded contexts only), schema checked on first use."""
        if self.is_remote:
            raise InvalidArgument("a remote context has no database: use its transport")
        with self._lock:
            if self._database is None:
                from opsloop.store import Database  # lazy: loads sqlalchemy

                db = Database(self.settings.resolved_database_url)
                db.ensure_schema(create_if_empty=self._create_schema)
                self._database = db
            return self._database

    @property
    def blobs(self) -> ArtifactStore:
        """The content-addressed blob store (embedded contexts only)."""
        if self.is_remote:
            raise InvalidArgument("a remote context has no blob store: use its transport")
        with self._lock:
            if self._blobs is None:
                from opsloop.store import open_artifact_store  # lazy: loads sqlalchemy

                s = self.settings
                self._blobs = open_artifact_store(
                    s.resolved_artifact_uri, endpoint_url=s.s3_endpoint_url, region=s.s3_region
                )
            return self._blobs

    @property
    def transport(self) -> Transport:
        """The HTTP transport to the server (remote contexts only)."""
        if not self.is_remote:
            raise InvalidArgument("an embedded context has no transport: use its database")
        with self._lock:
            if self._transport is None:
                from opsloop.core._transport import Transport  # lazy: loads httpx

                self._transport = Transport(self.settings, user=self.user)
            return self._transport

    # -- room objects ----------------------------------------------------------------

    def room(self, factory: Callable[[Context], T]) -> T:
        """The one ``factory(self)`` of this context (made on first use, then kept)."""
        with self._lock:
            obj = self._rooms.get(factory)
            if obj is None:
                obj = factory(self)
                self._rooms[factory] = obj
            return obj

    def provide(self, factory: Callable[[Context], Any], obj: object) -> None:
        """Make ``obj`` what ``room(factory)`` returns from now on (a client built first)."""
        with self._lock:
            self._rooms[factory] = obj

    def seam(self, embedded: Callable[[Context], T], remote: Callable[[Context], T]) -> T:
        """A room's backend: ``embedded(self)`` over the store, or ``remote(self)`` over HTTP."""
        return self.room(remote if self.is_remote else embedded)

    def close(self) -> None:
        """Close every room object, then the transport, database and blob store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            rooms = list(self._rooms.values())
        errors: list[BaseException] = []
        for obj in rooms:
            close = getattr(obj, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:  # close the rest, then report the first
                    errors.append(exc)
        if self._transport is not None:
            self._transport.close()
        if self._database is not None:
            self._database.dispose()
        if errors:
            raise errors[0]

    def __repr__(self) -> str:
        where = self.settings.tracking_uri if self.is_remote else self.settings.home
        return f"Context({str(where)!r})"


@runtime_checkable
class HasContext(Protocol):
    """Anything that carries a context (``opsloop.Client``, every room client)."""

    @property
    def context(self) -> Context: ...


_default: Context | None = None
_default_lock = threading.Lock()


def default_context() -> Context:
    """The program's shared context (``Settings()`` from the environment unless set)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Context(Settings())
        return _default


def set_default_context(ctx: Context | None) -> None:
    """Make ``ctx`` the shared context (None: build a fresh one on next use)."""
    global _default
    with _default_lock:
        _default = ctx


def context_of(obj: Context | HasContext | None) -> Context:
    """The context of ``obj``: itself, its ``.context``, or the shared default for None."""
    if obj is None:
        return default_context()
    if isinstance(obj, Context):
        return obj
    ctx = getattr(obj, "context", None)
    if isinstance(ctx, Context):
        return ctx
    raise InvalidArgument(f"expected an opsloop Client or Context, got {type(obj).__name__}")


_active_runs: list[str] = []
_runs_lock = threading.Lock()


def push_active_run(run_id: str) -> None:
    """Record ``run_id`` as the innermost active run (the fluent API's ``start_run``)."""
    with _runs_lock:
        _active_runs.append(run_id)


def pop_active_run(run_id: str) -> None:
    """Forget ``run_id`` as an active run (it ended)."""
    with _runs_lock:
        for i in range(len(_active_runs) - 1, -1, -1):  # the innermost entry of that run
            if _active_runs[i] == run_id:
                del _active_runs[i]
                return


def active_run_id() -> str | None:
    """The innermost run started with ``opsloop.start_run()`` and not yet ended, or None."""
    with _runs_lock:
        return _active_runs[-1] if _active_runs else None
