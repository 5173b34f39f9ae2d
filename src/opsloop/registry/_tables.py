"""Registry tables: registered models (models, prompts, pipelines), versions, aliases, audit.

Aliases are one row per (model, alias): moving an alias is a single UPDATE in
one transaction, so a reader sees the old or the new version, never neither.
Every change is appended to ``registry_events`` with who and when.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

ID = sa.String(32)
MS = sa.BigInteger

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False, default="model"),  # model | prompt | pipeline
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False, default=""),
)

registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    sa.Column(
        "model_id", ID, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "model_id", ID, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column(
        "flavor", sa.String(64), nullable=False
    ),  # sklearn | pyfunc | transformers | peft | sentence_transformers ...
    sa.Column(
        "source_run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column(
        "source", sa.Text, nullable=False, default=""
    ),  # runs:/<id>/<path> or a local path it came from
    # {path: {digest, size}} of the stored files; blob_ref: `opsloop gc` keeps them (store/_gc.py)
    sa.Column("manifest_json", sa.JSON, nullable=False, info={"blob_ref": True}),
    sa.Column("signature_json", sa.JSON, nullable=True),
    sa.Column("card_json", sa.JSON, nullable=True),  # model card (generated, then editable)
    sa.Column(
        "metadata_json", sa.JSON, nullable=False
    ),  # flavor settings, library versions, trusted types
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("status", sa.String(16), nullable=False, default="READY"),
    # Adapters (peft) sit on a base version; deleting a base that adapters use is refused.
    sa.Column("base_version_id", ID, nullable=True),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False, default=""),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_number"),
    sa.Index("ix_model_versions_run", "source_run_id"),
    sa.Index("ix_model_versions_base", "base_version_id"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column(
        "version_id", ID, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column(
        "model_id", ID, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column(
        "version_id", ID, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False, default=""),
)

registry_events = sa.Table(
    "registry_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    # No foreign key: the history outlives a deleted model.
    sa.Column("model_id", ID, nullable=False),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("version_id", ID, nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column(
        "action", sa.String(64), nullable=False
    ),  # model_created | version_created | alias_set | alias_deleted | tag_set | card_edited ...
    sa.Column("detail_json", sa.JSON, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False, default=""),
    sa.Column("at", MS, nullable=False),
    sa.Index("ix_registry_events_model", "model_id", "id"),
    sa.Index("ix_registry_events_name", "model_name", "id"),
)
