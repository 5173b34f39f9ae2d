"""``opsloop gc`` on a local home: how long a scan and a removal take.

    .venv/bin/python benchmarks/gc.py                    # 20k referenced + 20k garbage blobs
    .venv/bin/python benchmarks/gc.py --referenced 100000 --garbage 50000 --json out.json

A SQLite home with one run whose artifacts name ``--referenced`` blobs, plus
``--garbage`` blobs no row names (all small, written straight into the store's
layout so the set-up is quick). Timed, in the same run:

- **baseline**: listing the blob folder and reading every file's size and age
  (``os.scandir`` + ``stat``), the floor for any scan;
- **dry run**: ``collect_garbage(min_age_s=0)``: list, read the references, report;
- **delete**: the same with ``delete=True`` (each batch checked again, each blob
  moved aside, its age read, removed).

Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Comparison, Figure, print_table, write_json


def _write_blob(root: Path, data: bytes) -> str:
    hexpart = hashlib.sha256(data).hexdigest()
    d = root / "blobs" / "sha256" / hexpart[:2]
    d.mkdir(parents=True, exist_ok=True)
    (d / hexpart).write_bytes(data)
    return "sha256:" + hexpart


def _baseline_scan(root: Path) -> int:
    n = 0
    for shard in os.scandir(root / "blobs" / "sha256"):
        for entry in os.scandir(shard.path):
            entry.stat()
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--referenced", type=int, default=20_000)
    ap.add_argument("--garbage", type=int, default=20_000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import opsloop
    from opsloop.rooms import load_all_tables
    from opsloop.settings import Settings
    from opsloop.store import Database, LocalArtifactStore, collect_garbage
    from opsloop.tracking.tables import artifacts

    with tempfile.TemporaryDirectory(prefix="opsloop-gc-bench-") as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home)
        with opsloop.Client(settings=settings) as c:
            run = c.create_run(experiment_name="gc-bench")
        root = home / "artifacts"
        t0 = time.perf_counter()
        rows = []
        for i in range(args.referenced):
            d = _write_blob(root, f"referenced {i}".encode())
            rows.append(
                {
                    "run_id": run.id,
                    "path": f"files/{i}.txt",
                    "digest": d,
                    "size": 20,
                    "media_type": "text/plain",
                    "created_at": 0,
                }
            )
        for i in range(args.garbage):
            _write_blob(root, f"garbage {i}".encode())
        db = Database(settings.resolved_database_url)
        with db.write() as conn:
            for i in range(0, len(rows), 5000):
                conn.execute(artifacts.insert(), rows[i : i + 5000])
        setup = time.perf_counter() - t0
        store = LocalArtifactStore(root)
        total = args.referenced + args.garbage

        t0 = time.perf_counter()
        assert _baseline_scan(root) == total
        base = time.perf_counter() - t0

        md = load_all_tables()
        dry = collect_garbage(db, store, md, min_age_s=0)
        assert len(dry.garbage) == args.garbage and dry.referenced == args.referenced
        rm = collect_garbage(db, store, md, min_age_s=0, delete=True)
        assert len(rm.deleted) == args.garbage
        db.dispose()

    rows_out = [
        Comparison("gc dry run (scan + references)", "local+sqlite", "blobs",
                   Figure(total, dry.seconds), Figure(total, base)),
        Comparison("gc --yes (scan + re-check + remove)", "local+sqlite", "blobs",
                   Figure(total, rm.seconds), Figure(total, base)),
    ]  # fmt: skip
    print(f"set-up: {total:,} blobs and {args.referenced:,} rows in {setup:.1f} s")
    print_table("opsloop gc vs listing the blob folder", rows_out, ours="gc", theirs="scandir+stat")
    print(
        f"dry run: {dry.seconds:.2f} s; delete: {rm.seconds:.2f} s "
        f"({len(rm.deleted):,} removed, {args.garbage / max(rm.seconds, 1e-9):,.0f} blobs/s overall)"
    )
    if args.json:
        write_json(args.json, {"rows": [r.as_dict() for r in rows_out], "setup_s": setup})


if __name__ == "__main__":
    main()
