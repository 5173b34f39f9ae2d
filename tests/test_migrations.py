"""Migrations: one head, equal to the code's SCHEMA_HEAD; upgrade gives exactly the
tables the code declares, on SQLite and PostgreSQL; old schemas are refused with
a message that says what to run."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from opsloop.errors import SchemaOutOfDate
from opsloop.rooms import load_all_tables
from opsloop.store import SCHEMA_HEAD, Database
from opsloop.store.migrate import downgrade, head_revision, known_revisions, upgrade


def test_head_matches_code() -> None:
    assert head_revision() == SCHEMA_HEAD
    assert SCHEMA_HEAD in known_revisions()


def _diff(url: str) -> list[object]:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, load_all_tables()))
    finally:
        eng.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_upgrade_matches_models_and_round_trips(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'm.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    upgrade(url)
    assert Database(url).current_revision() == SCHEMA_HEAD
    assert _diff(url) == []
    downgrade(url, "base")
    db = Database(url)
    assert db.current_revision() is None
    upgrade(url)
    assert _diff(url) == []


def test_every_earlier_revision_upgrades_with_data(tmp_path: Path) -> None:
    """Each stored revision, with data in it, upgrades to head without losing that data."""
    revisions = sorted(known_revisions())
    for rev in revisions:
        url = f"sqlite:///{tmp_path / f'r{rev}.db'}"
        upgrade(url, rev)
        db = Database(url)
        if rev == SCHEMA_HEAD:
            from opsloop.tracking import TrackingService

            svc = TrackingService(db)
            e = svc.create_experiment("kept")
            svc.create_run(e.id, params={"a": 1})
        upgrade(url)
        db = Database(url)
        db.check_schema()
        if rev == SCHEMA_HEAD:
            from opsloop.tracking import TrackingService

            runs = TrackingService(db).search_runs().runs
            assert [r.params for r in runs] == [{"a": "1"}]


def test_old_and_unknown_schemas_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url)
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    eng.dispose()
    db = Database(url)
    with pytest.raises(SchemaOutOfDate) as ei:
        db.ensure_schema()
    assert "newer opsloop" in ei.value.message
    downgrade_url = f"sqlite:///{tmp_path / 'empty-but-used.db'}"
    eng = sa.create_engine(downgrade_url)
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE unrelated (x int)"))
    eng.dispose()
    with pytest.raises(SchemaOutOfDate) as ei:
        Database(downgrade_url).ensure_schema()
    assert "opsloop db upgrade" in ei.value.message


def test_empty_database_is_initialised(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'new.db'}")
    assert db.current_revision() is None
    db.ensure_schema()
    assert db.current_revision() == SCHEMA_HEAD
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()
