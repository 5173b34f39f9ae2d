"""Module-level helpers on the program's default context: ``opsloop.datasets.create(...)``,
``opsloop.datasets.log_input(version)`` inside ``with opsloop.start_run():``."""

from __future__ import annotations

from typing import Any

from opsloop.core import active_run_id, default_context
from opsloop.datasets._client import Datasets, Ref
from opsloop.datasets.entities import DatasetVersion, RunInput
from opsloop.errors import InvalidArgument


def datasets() -> Datasets:
    """The ``Datasets`` of the default context (the fluent client's, ``opsloop.get_client()``)."""
    return default_context().room(Datasets)


def create(name: str, data: Any, **kwargs: Any) -> DatasetVersion:
    """``Datasets.create`` on the default context."""
    return datasets().create(name, data, **kwargs)


def get(ref: Ref) -> DatasetVersion:
    """``Datasets.get`` on the default context."""
    return datasets().get(ref)


def load(ref: Ref, *, columns: list[str] | None = None) -> Any:
    """A version's rows as an Arrow table (``Datasets.to_arrow`` on the default context)."""
    return datasets().to_arrow(ref, columns=columns)


def log_input(ref: Ref, *, context: str = "train", run_id: str | None = None) -> RunInput:
    """Record that the active run (or ``run_id``) read this dataset version."""
    if run_id is None:
        run_id = active_run_id()
        if run_id is None:
            raise InvalidArgument(
                "no active run: call inside `with opsloop.start_run():` or pass run_id"
            )
    return datasets().log_input(run_id, ref, context=context)
