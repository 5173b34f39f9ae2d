"""The datasets room's SQL tables, for rooms that read dataset lineage inside their own
transactions (the registry's cards and lineage). Read-only by convention: rows are written
through the datasets service."""

from opsloop.datasets._tables import dataset_versions, datasets, run_inputs

__all__ = ["dataset_versions", "datasets", "run_inputs"]
