"""Feedback: the trace list filtered by score, against the plain trace list, in one run.

    .venv/bin/python benchmarks/feedback_filter.py            # 20,000 traces
    .venv/bin/python benchmarks/feedback_filter.py --quick    # 2,000 traces
    .venv/bin/python benchmarks/feedback_filter.py --database-url postgresql+psycopg://127.0.0.1/test

Seeds ``--traces`` one-span traces through ``TraceService.ingest`` and gives
30% of them a human ``helpful`` score (1-5), 10% a judge's, 30% a thumbs (10% both); then
times a page of 50 traces (``TraceService.list_traces``, in process) for each
filter, many times, and prints p50/p95 and the ratio to the unfiltered page.
Score conditions are ``EXISTS`` subqueries on the annotations'
``(trace_id, name, value_num)`` index (``opsloop/feedback/_filter.py``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from opsloop.feedback._tables import annotations_t
from opsloop.settings import Settings
from opsloop.store import Database
from opsloop.tracing import TraceService

FILTERS = {
    "no filter": None,
    'name = "t-17"': 'name = "t-17"',
    "score.helpful >= 4": "score.helpful >= 4",
    "score.helpful.llm_judge < 2": "score.helpful.llm_judge < 2",
    'score.thumbs = "false"': 'score.thumbs = "false"',
    "score.helpful is null": "score.helpful is null",
    'score.helpful >= 4 and score.thumbs = "true"': 'score.helpful >= 4 and score.thumbs = "true"',
}


def seed(db: Database, n: int) -> None:
    svc = TraceService(db)
    rng = random.Random(1)
    t0 = 1_700_000_000_000_000
    ids = [uuid.uuid4().hex for _ in range(n)]
    for start in range(0, n, 1000):
        spans = [
            {
                "trace_id": tid,
                "span_id": tid[:16],
                "name": f"t-{i % 100}",
                "start_us": t0 + i * 1000,
                "end_us": t0 + i * 1000 + rng.randint(100, 100_000),
                "attributes": {"gen_ai.request.model": "m"},
            }
            for i, tid in enumerate(ids[start : start + 1000], start=start)
        ]
        svc.ingest(spans)
    rows = []
    now = int(time.time() * 1000)

    def row(
        tid: str, name: str, kind: str, num: float, text: str | None, src: str, who: str
    ) -> None:
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "target_kind": "trace",
                "target_id": tid,
                "trace_id": tid,
                "name": name,
                "kind": kind,
                "value_num": num,
                "value_text": text,
                "source": src,
                "author": who,
                "created_at": now,
                "updated_at": now,
            }
        )

    for tid in ids:
        r = rng.random()
        if r < 0.3:
            row(tid, "helpful", "numeric", rng.randint(1, 5), None, "human", "ann")
        if r < 0.1:
            row(tid, "helpful", "numeric", rng.randint(1, 5), None, "llm_judge", "judge")
        if 0.2 <= r < 0.5:
            up = rng.random() < 0.7
            row(tid, "thumbs", "boolean", float(up), "true" if up else "false", "human", "user")
    with db.write() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(annotations_t.insert(), rows[i : i + 5000])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=20_000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument("--database-url", default=None)
    a = ap.parse_args()
    n = 2_000 if a.quick else a.traces
    home = Path(tempfile.mkdtemp(prefix="bench-feedback-"))
    settings = Settings(home=home, database_url=a.database_url)
    db = Database(settings.resolved_database_url)
    db.ensure_schema()
    t = time.perf_counter()
    seed(db, n)
    print(f"seeded {n} traces in {time.perf_counter() - t:.1f} s ({db.url.split(':')[0]})")
    svc = TraceService(db)
    base = None
    print(f"{'filter':48} {'p50 ms':>8} {'p95 ms':>8} {'x base':>7} {'rows':>5}")
    for label, flt in FILTERS.items():
        times = []
        rows = 0
        for _ in range(a.repeat):
            s = time.perf_counter()
            page = svc.list_traces(filter=flt, limit=50)
            times.append(1000 * (time.perf_counter() - s))
            rows = len(page.traces)
        times.sort()
        p50, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
        base = base or p50
        print(f"{label:48} {p50:8.2f} {p95:8.2f} {p50 / base:7.2f} {rows:5d}")
    db.dispose()


if __name__ == "__main__":
    main()
