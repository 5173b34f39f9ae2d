"""The registry's change log table, for rooms that react to registry changes (the workflows
room's event triggers poll it). Read-only by convention: rows are written by the registry."""

from opsloop.registry._tables import registry_events

__all__ = ["registry_events"]
