"""Alembic environment: runs migrations on the URL opsloop hands it."""

from __future__ import annotations

from alembic import context

from opsloop.store._engine import create_db_engine

config = context.config
# Upgrades run the migration scripts and need no metadata; autogenerate
# (scripts/regen_migration.py) passes the rooms' complete metadata in.
target_metadata = config.attributes.get("target_metadata")


def run_migrations_online() -> None:
    url = config.attributes.get("opsloop_url") or config.get_main_option("sqlalchemy.url")
    engine = create_db_engine(str(url))
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=engine.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
