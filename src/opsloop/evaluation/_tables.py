"""Evaluation tables: promotion gates (one policy per registered model).

Evaluation runs themselves are ordinary tracking runs (tagged
``opsloop.eval``), so they need no table of their own. A gate is keyed by the
model's name rather than its id so that a policy can be written before the
model is first registered and outlives a delete and re-register.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

MS = sa.BigInteger

promotion_gates = sa.Table(
    "promotion_gates",
    metadata,
    sa.Column("model_name", sa.String(256), primary_key=True),
    sa.Column("rules_json", sa.JSON, nullable=False),  # list of rule objects
    sa.Column("aliases_json", sa.JSON, nullable=True),  # aliases it guards; null = every alias
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False, default=""),
)
