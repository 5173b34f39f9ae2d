"""Regenerate the not-yet-released migration from the tables in code (development aid).

    .venv/bin/python scripts/regen_migration.py 0002 "datasets and registry"

Deletes versions/<rev>_*.py, then autogenerates it against a database at the
previous revision. Only for a revision that has not landed on main yet.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from opsloop.rooms import load_all_tables
from opsloop.store.migrate import alembic_config

rev, message = sys.argv[1], sys.argv[2]
versions = Path(__file__).resolve().parents[1] / "src/opsloop/store/migrations/versions"
for f in versions.glob(f"{rev}_*.py"):
    f.unlink()
prev = f"{int(rev) - 1:04d}"
with tempfile.TemporaryDirectory() as d:
    url = f"sqlite:///{d}/gen.db"
    command.upgrade(alembic_config(url), prev)
    cfg = alembic_config(url)
    cfg.attributes["target_metadata"] = load_all_tables()  # every declared room's tables
    command.revision(cfg, message=message, autogenerate=True, rev_id=rev)
print("regenerated", rev)
