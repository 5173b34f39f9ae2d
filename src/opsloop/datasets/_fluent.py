"""Module-level helpers on the fluent client: ``opsloop.datasets.create(...)``,
``opsloop.datasets.log_input(version)`` inside ``with opsloop.start_run():``."""

from __future__ import annotations

import threading
from typing import Any

from opsloop.datasets._client import Datasets, Ref
from opsloop.datasets.entities import DatasetVersion, RunInput
from opsloop.errors import InvalidArgument

_lock = threading.Lock()
_cached: tuple[Any, Datasets] | None = None


def datasets() -> Datasets:
    """A ``Datasets`` over the fluent API's client (``opsloop.get_client()``)."""
    global _cached
    from opsloop.sdk._fluent import get_client

    client = get_client()
    with _lock:
        if _cached is None or _cached[0] is not client:
            _cached = (client, Datasets(client))
        return _cached[1]


def create(name: str, data: Any, **kwargs: Any) -> DatasetVersion:
    """``Datasets.create`` on the fluent client."""
    return datasets().create(name, data, **kwargs)


def get(ref: Ref) -> DatasetVersion:
    """``Datasets.get`` on the fluent client."""
    return datasets().get(ref)


def load(ref: Ref, *, columns: list[str] | None = None) -> Any:
    """A version's rows as an Arrow table (``Datasets.to_arrow`` on the fluent client)."""
    return datasets().to_arrow(ref, columns=columns)


def log_input(ref: Ref, *, context: str = "train", run_id: str | None = None) -> RunInput:
    """Record that the active run (or ``run_id``) read this dataset version."""
    if run_id is None:
        from opsloop.sdk._fluent import active_run

        run = active_run()
        if run is None:
            raise InvalidArgument(
                "no active run: call inside `with opsloop.start_run():` or pass run_id"
            )
        run_id = run.run_id
    return datasets().log_input(run_id, ref, context=context)
