"""Dataset versions from big CSV files: throughput and bounded memory, versus loading whole.

    .venv/bin/python benchmarks/datasets.py                    # 1M and 4M rows (a few minutes)
    .venv/bin/python benchmarks/datasets.py --rows 300000      # quick
    .venv/bin/python benchmarks/datasets.py --json out.json

For each size it writes a CSV of mixed columns (ints, floats, a category, a
short text, a bool, a timestamp), then runs, each in a fresh process so the
peak resident memory (``VmHWM``) belongs to that task alone:

- ``baseline``: the imports only (python, pyarrow, opsloop);
- ``opsloop``: ``Datasets.create`` on the file, which streams it once
  (read, canonical types, profile, content digest, Parquet) and stores the
  version in a fresh home;
- ``pyarrow.csv.read_csv`` and ``pandas.read_csv`` (when pandas is
  installed): the naive way, which holds the whole file in memory.

It prints rows/s, MB/s and peak RSS, and the RSS above the baseline against
the file size. Bounded memory shows as opsloop's figure staying flat as the
file grows while the naive loaders grow with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_json

CHUNK = 250_000

TASKS = {
    "baseline": """
import pyarrow, pyarrow.csv, opsloop, opsloop.datasets._client
""",
    "opsloop": """
import opsloop
from opsloop.datasets import Datasets
c = opsloop.Client(home=HOME)
v = Datasets(c).create("bench", PATH, message="benchmark")
OUT["rows"] = v.row_count
OUT["parquet_bytes"] = v.size_bytes
OUT["digest"] = v.content_digest
c.close()
""",
    "pyarrow.read_csv": """
import pyarrow.csv
t = pyarrow.csv.read_csv(PATH)
OUT["rows"] = t.num_rows
""",
    "pandas.read_csv": """
import pandas
df = pandas.read_csv(PATH)
OUT["rows"] = len(df)
""",
}

RUNNER = """
import json, resource, sys, time
HOME, PATH = sys.argv[1], sys.argv[2]
OUT = {}
t0 = time.perf_counter()
exec(compile(sys.argv[3], "task", "exec"))
OUT["seconds"] = time.perf_counter() - t0
try:  # VmHWM: this process's own peak (ru_maxrss on Linux carries the parent's over exec)
    with open("/proc/self/status") as fh:
        OUT["peak_rss"] = next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    OUT["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(OUT))
"""


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A CSV of ``rows`` mixed rows, written in chunks (the generator is streaming too)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    cats = np.array([f"cat_{i:02d}" for i in range(20)])
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    writer = None
    done = 0
    t0 = np.datetime64("2024-01-01T00:00:00", "s")
    while done < rows:
        n = min(CHUNK, rows - done)
        w = words[rng.integers(0, len(words), size=(n, 4))]
        text = np.char.add(np.char.add(w[:, 0], " "), np.char.add(w[:, 1], " "))
        text = np.char.add(text, np.char.add(w[:, 2], np.char.add(" ", w[:, 3])))
        x = rng.normal(50, 10, n)
        x[rng.random(n) < 0.01] = np.nan
        table = pa.table(
            {
                "id": np.arange(done, done + n),
                "x": pa.array(x, from_pandas=True),
                "y": rng.exponential(2.0, n),
                "count": rng.integers(0, 1000, n),
                "category": cats[rng.integers(0, len(cats), n)],
                "text": text,
                "flag": rng.random(n) < 0.3,
                "ts": t0 + rng.integers(0, 365 * 86400, n).astype("timedelta64[s]"),
            }
        )
        if writer is None:
            writer = pacsv.CSVWriter(str(path), table.schema)
        writer.write_table(table)
        done += n
    assert writer is not None
    writer.close()


def run_task(name: str, path: Path, home: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(home), str(path), TASKS[name]],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", default="1000000,4000000", help="comma-separated sizes in rows")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    ap.add_argument("--no-pandas", action="store_true", help="skip the pandas baseline")
    args = ap.parse_args()
    sizes = [int(s) for s in args.rows.split(",") if s.strip()]
    try:
        import pandas  # noqa: F401

        have_pandas = not args.no_pandas
    except ImportError:
        have_pandas = False
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="opsloop-bench-datasets-") as tmp:
        for rows in sizes:
            path = Path(tmp) / f"data_{rows}.csv"
            t0 = time.perf_counter()
            make_csv(path, rows)
            size = path.stat().st_size
            print(
                f"\n{rows:,} rows, {size / 1e6:,.0f} MB CSV (written in {time.perf_counter() - t0:.1f} s)"
            )
            base = run_task("baseline", path, Path(tmp) / "h0")
            names = ["opsloop", "pyarrow.read_csv"] + (["pandas.read_csv"] if have_pandas else [])
            for name in names:
                home = Path(tmp) / f"home_{name}_{rows}"
                r = run_task(name, path, home)
                r.update(
                    task=name, rows_in=rows, file_bytes=size, baseline_rss=base.get("peak_rss")
                )
                results.append(r)
                if "error" in r:
                    print(f"  {name:18s} failed: {r['error']}")
                    continue
                above = r["peak_rss"] - (base.get("peak_rss") or 0)
                print(
                    f"  {name:18s} {r['seconds']:7.2f} s  {rows / r['seconds'] / 1e6:6.2f} M rows/s  "
                    f"{size / r['seconds'] / 1e6:7.1f} MB/s  peak RSS {r['peak_rss'] / 2**20:7.0f} MiB "
                    f"({above / 2**20:6.0f} MiB above imports = {above / size:5.2f}x the file)"
                )
                if name == "opsloop":
                    print(
                        f"  {'':18s} parquet {r['parquet_bytes'] / 1e6:,.0f} MB, "
                        f"digest {r['digest'][:23]}…"
                    )
            print(f"  {'imports only':18s} peak RSS {base['peak_rss'] / 2**20:7.0f} MiB")
            os.unlink(path)
    if args.json:
        write_json(args.json, {"results": results})


if __name__ == "__main__":
    main()
