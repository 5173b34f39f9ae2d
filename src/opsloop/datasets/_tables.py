"""Dataset tables: datasets, their immutable content-addressed versions, and lineage.

A version's id is derived from the digest of its canonical content, so the
same content always gives the same version id. The data itself lives in the
artifact store (Parquet for tabular and LLM kinds, the original files plus
chunks for document collections); rows here hold the metadata.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

ID = sa.String(32)
MS = sa.BigInteger

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    # tabular | prompt_response | chat | documents
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False, default=""),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column(
        "id", sa.String(64), primary_key=True
    ),  # derived from dataset id + content digest (see service)
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # 1, 2, 3 ... per dataset, in creation order
    sa.Column("content_digest", sa.String(71), nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("format", sa.String(32), nullable=False),  # parquet | documents
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("schema_json", sa.JSON, nullable=False),
    sa.Column("profile_json", sa.JSON, nullable=False),
    sa.Column("sample_json", sa.JSON, nullable=False),
    sa.Column("validation_json", sa.JSON, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, default="valid"),  # valid | flagged
    # blob digests that hold the data; blob_ref: `opsloop gc` keeps them (store/_gc.py)
    sa.Column("storage_json", sa.JSON, nullable=False, info={"blob_ref": True}),
    # e.g. a split's source; versions are never deleted alone, only with their dataset
    sa.Column(
        "parent_version_id",
        sa.String(64),
        sa.ForeignKey("dataset_versions.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column(
        "derivation", sa.String(256), nullable=False, default=""
    ),  # e.g. "split train seed=0"
    sa.Column("created_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False, default=""),
    sa.UniqueConstraint("dataset_id", "content_digest", name="uq_dataset_versions_content"),
    sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_number"),
    sa.Index("ix_dataset_versions_parent", "parent_version_id"),
)

run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "dataset_version_id",
        sa.String(64),
        sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "context", sa.String(64), primary_key=True, default="train"
    ),  # train | validation | eval ...
    sa.Column("created_at", MS, nullable=False),
    sa.Index("ix_run_inputs_version", "dataset_version_id"),
)
