"""``opsloop.Client``: one surface over every room, the same embedded or against a server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, load_ref
from opsloop.errors import InvalidArgument
from opsloop.rooms import client_properties
from opsloop.settings import Settings
from opsloop.tracking import Tracking

if TYPE_CHECKING:
    # One line per room with a client property (``Room.client`` in its ``_room.py``);
    # tests/test_rooms.py checks this list against the declarations.
    from opsloop.datasets import Datasets
    from opsloop.deployments import Deployments
    from opsloop.evaluation import Evaluation
    from opsloop.feedback import Feedback
    from opsloop.finetune import Finetune
    from opsloop.gateway import Gateway
    from opsloop.governance import Governance
    from opsloop.monitoring import Monitoring
    from opsloop.prompts import Prompts
    from opsloop.registry import Registry
    from opsloop.retrieval import Indexes
    from opsloop.tracing import Tracing
    from opsloop.tuning import Tuning
    from opsloop.workflows import Workflows

__all__ = ["Client", "settings_for"]


def settings_for(
    tracking_uri: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> Settings:
    """The settings a ``Client(tracking_uri, home=, settings=)`` works with."""
    s = settings or Settings()
    updates: dict[str, Any] = {}
    if home is not None:
        updates["home"] = Path(home).expanduser()
        if settings is None:
            updates["tracking_uri"] = None
    if tracking_uri is not None:
        if tracking_uri.startswith(("http://", "https://")):
            updates["tracking_uri"] = tracking_uri
        elif tracking_uri.startswith(("sqlite:", "postgresql")):
            updates["database_url"] = tracking_uri
            updates["tracking_uri"] = None
        else:
            updates["home"] = Path(tracking_uri.removeprefix("file://")).expanduser()
            updates["tracking_uri"] = None
    return s.model_copy(update=updates) if updates else s


class Client(Tracking):
    """Experiments, runs, params, metrics, tags and artifacts, and every room's SDK.

    ``Client()`` works embedded on ``~/.opsloop`` (or ``OPSLOOP_HOME``);
    ``Client("http://host:5000")`` or ``OPSLOOP_TRACKING_URI`` talks to a
    server; ``Client(home="/path")`` uses another home folder;
    ``Client(context=ctx)`` works in an existing ``opsloop.core.Context``.
    Metric points logged with ``log_metric``/``log_metrics`` are buffered and
    written in the background; ``flush()`` writes them now and raises if it
    cannot. Each room adds a property (``client.datasets``,
    ``client.registry``, ...), declared in the room's ``_room.py``.
    """

    if TYPE_CHECKING:
        datasets: Datasets
        deployments: Deployments
        feedback: Feedback
        evaluation: Evaluation
        finetune: Finetune
        gateway: Gateway
        governance: Governance
        monitoring: Monitoring
        prompts: Prompts
        registry: Registry
        indexes: Indexes
        tracing: Tracing
        tuning: Tuning
        workflows: Workflows

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        settings: Settings | None = None,
        context: Context | None = None,
    ) -> None:
        if context is None:
            context = Context(settings_for(tracking_uri, home=home, settings=settings))
            self._owns_context = True
        elif tracking_uri is not None or home is not None or settings is not None:
            raise InvalidArgument("give either a context or tracking_uri/home/settings, not both")
        else:
            self._owns_context = False
        super().__init__(context)
        # Rooms that log runs on this context (``context.room(Tracking)``) share this client.
        context.provide(Tracking, self)

    def close(self) -> None:
        """Flush buffered points and spans (raising if that fails), then release connections."""
        try:
            super().close()
        finally:
            if self._owns_context:
                self.context.close()

    def __enter__(self) -> Client:
        return self


class _RoomProperty:
    """``client.<name>``: the room's client on the client's context, built on first use.

    It is ``client.context.room(RoomClient)``, so rooms that ask the context for it get
    the same object; the class is imported only when the property is first read.
    """

    def __init__(self, name: str, ref: str, doc: str) -> None:
        self.name = name
        self.ref = ref
        self.__doc__ = doc

    def __get__(self, obj: Client | None, owner: type[Client]) -> Any:
        if obj is None:
            return self
        value = obj.context.room(load_ref(self.ref))
        obj.__dict__[self.name] = value  # later reads skip the descriptor
        return value


def install_room_properties() -> None:
    """Give ``Client`` a property per declared room client (done once, at import)."""
    for name, prop in client_properties().items():
        current = Client.__dict__.get(name)
        if isinstance(current, _RoomProperty) and current.ref == prop.factory:
            continue
        if current is not None and not isinstance(current, _RoomProperty):
            raise TypeError(f"room client property {name!r} clashes with a Client attribute")
        setattr(Client, name, _RoomProperty(name, prop.factory, prop.doc))


install_room_properties()
