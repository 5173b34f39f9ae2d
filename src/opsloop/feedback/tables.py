"""The feedback room's annotations table, for rooms that react to new feedback (the workflows
room's "N new feedback items" trigger counts it). Read-only by convention."""

from opsloop.feedback._tables import annotations_t

__all__ = ["annotations_t"]
