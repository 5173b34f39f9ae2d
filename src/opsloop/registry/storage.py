"""The registry's SQL rows, for rooms whose entities are registry entries (prompts are
registered models of kind ``prompt``): row look-ups and writes that keep the registry's
rules (locks, aliases, version numbers, the event log) inside the caller's transaction.

Everything here takes an open ``Connection``; ``RegistryService`` is the way to change
registry entries otherwise.
"""

from opsloop.registry._events import new_id, record_event
from opsloop.registry._rows import (
    alias_rows,
    alias_version_row,
    delete_alias,
    insert_model,
    model_row,
    model_summaries,
    models_query,
    move_alias,
    newest_version,
    next_version,
    touch_model,
    version_aliases,
    version_row,
    version_rows,
)
from opsloop.registry._tables import model_versions

__all__ = [
    "alias_rows",
    "alias_version_row",
    "delete_alias",
    "insert_model",
    "model_row",
    "model_summaries",
    "model_versions",
    "models_query",
    "move_alias",
    "new_id",
    "newest_version",
    "next_version",
    "record_event",
    "touch_model",
    "version_aliases",
    "version_row",
    "version_rows",
]
