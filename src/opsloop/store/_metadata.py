"""The one SQLAlchemy ``MetaData`` every domain's ``_tables.py`` registers on."""

from __future__ import annotations

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


def load_all_tables() -> sa.MetaData:
    """Import every domain's tables so ``metadata`` is complete (migrations, tests)."""
    from opsloop.datasets import _tables as _datasets  # noqa: F401
    from opsloop.deployments import _tables as _deployments  # noqa: F401
    from opsloop.evaluation import _tables as _evaluation  # noqa: F401
    from opsloop.registry import _tables as _registry  # noqa: F401
    from opsloop.tracing import _tables as _tracing  # noqa: F401
    from opsloop.tracking import _tables as _tracking  # noqa: F401
    from opsloop.tuning import _tables as _tuning  # noqa: F401

    return metadata
