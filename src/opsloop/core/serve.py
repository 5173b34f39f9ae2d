"""What every process that serves HTTP shares: URLs, port checks, schema preparation, signals.

Used by ``opsloop server`` (``opsloop.server``), ``opsloop serve`` (the
serving room) and the quickstart.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import threading
from collections.abc import Iterator

from opsloop.errors import InvalidArgument, Unavailable
from opsloop.settings import Settings


def server_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) only listens on this machine."""
    if host.strip("[]").lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_not_open(settings: Settings, host: str, *, allow_open: bool) -> None:
    """Refuse to serve without authentication on an address other machines can reach."""
    if settings.auth or allow_open or is_loopback(host):
        return
    raise InvalidArgument(
        f"refusing to serve without authentication on {host}: anyone who reaches it could "
        "read and change everything. Turn authentication on (`--auth`, `OPSLOOP_AUTH=1`, "
        "with tokens from `opsloop tokens create`) or pass `--allow-open` to serve open anyway",
        details={"host": host},
    )


def prepare_database(settings: Settings) -> bool:
    """Create the schema in an empty database; raise ``SchemaOutOfDate`` for an old one.

    Returns True when the schema was just created.
    """
    from opsloop.store import Database  # lazy: loads sqlalchemy

    db = Database(settings.resolved_database_url)
    try:
        created = db.current_revision() is None and db.is_empty()
        db.ensure_schema(create_if_empty=True)
        return created
    finally:
        db.dispose()


def check_port_free(host: str, port: int) -> None:
    """Raise ``Unavailable`` now, with a useful message, if uvicorn could not bind."""
    if not 0 < port < 65536:
        raise InvalidArgument(f"port must be between 1 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # The same option uvicorn sets, so a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise Unavailable(
                f"cannot listen on {server_url(host, port)}: {exc.strerror or exc}; "
                "pick another --port or stop the program using it"
            ) from None


@contextlib.contextmanager
def quiet_signal_reraise() -> Iterator[None]:
    """Make a SIGINT/SIGTERM that stopped the server end the command normally.

    uvicorn shuts down gracefully on these signals and then re-raises them to
    the handlers it found; no-op handlers here turn that into a clean return
    (exit 0) instead of a KeyboardInterrupt traceback or death by SIGTERM.
    """

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in saved:
        signal.signal(sig, lambda *_: None)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
