"""How fast the web UI charts a metric with 1,000,000 points, against fetching every point.

    .venv/bin/python benchmarks/ui_chart.py                 # 1M points, 5 repeats
    .venv/bin/python benchmarks/ui_chart.py --points 200000 --repeat 3
    .venv/bin/python benchmarks/ui_chart.py --json out.json

Builds a home with one run whose metric ``loss`` has ``--points`` points,
starts ``opsloop server`` on it (a subprocess on 127.0.0.1) and measures:

(a) the API: ``GET /runs/{id}/metric-histories?keys=loss&max_points=2000``
    (what the run page asks for) against ``GET /runs/{id}/metric-history?key=loss``
    (every point, no downsampling): median wall time and bytes;
(b) headless Chromium: from ``page.goto`` of the run page until the chart's
    canvas is painted (the chart sets ``data-drawn``), median over fresh pages;
(c) in the page, the same chart code (``charts.js`` ``lineChart``) fed by
    ``fetch`` + JSON parse of the downsampled answer against all points, so
    the baseline is the same work minus the server's downsampling.

Needs Debian's /usr/bin/chromium and Playwright (the dev extra). Prints the
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_seconds, free_port, python_cmd, server_process, write_json

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CHUNK = 100_000
MAX_POINTS = 2000
T0 = 1_700_000_000_000

# Runs in the page: fetch a history URL, parse it, draw it with the UI's own chart code,
# and answer the milliseconds spent in each phase.
IN_PAGE = """
async ([url, wrapped]) => {
  const charts = await import('/ui/static/js/charts.js');
  const box = document.createElement('div');
  box.style.width = '800px';
  document.body.appendChild(box);
  const t0 = performance.now();
  const res = await fetch(url);
  const text = await res.text();
  const t1 = performance.now();
  const body = JSON.parse(text);
  const hist = wrapped ? body.histories[0] : body;
  const t2 = performance.now();
  const c = charts.lineChart(box, {
    series: [{label: hist.key, color: '#4e79a7', xs: hist.steps, ys: hist.values}],
  });
  while (box.dataset.drawn !== '1') await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => requestAnimationFrame(() => r()));
  const t3 = performance.now();
  c.destroy();
  box.remove();
  return {fetch_ms: t1 - t0, parse_ms: t2 - t1, draw_ms: t3 - t2, total_ms: t3 - t0,
          points: hist.steps.length, bytes: text.length};
}
"""


def build_home(home: Path, points: int) -> str:
    """One run with ``points`` points of ``loss``, logged with ``log_batch`` in 100k chunks."""
    from opsloop import Client

    with Client(home=home) as c:
        run = c.create_run(experiment_name="ui-bench", name=f"{points:,} points")
        t = time.perf_counter()
        for start in range(0, points, CHUNK):
            stop = min(points, start + CHUNK)
            c.log_batch(
                run.id,
                metrics=[
                    ("loss", math.exp(-s / (points / 5)) + 0.05 * math.sin(s / 997), s, T0 + s)
                    for s in range(start, stop)
                ],
            )
        c.flush()
        print(f"  logged {points:,} points in {time.perf_counter() - t:.1f} s", flush=True)
        return run.id


def get(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as resp:
        n = len(resp.read())
    return time.perf_counter() - t, n


def api_figures(base: str, run_id: str, repeat: int) -> dict[str, Any]:
    down_url = f"{base}/api/v1/runs/{run_id}/metric-histories?keys=loss&max_points={MAX_POINTS}"
    full_url = f"{base}/api/v1/runs/{run_id}/metric-history?key=loss"
    get(down_url)  # warm-up: first query, page cache
    down = [get(down_url) for _ in range(repeat)]
    full = [get(full_url) for _ in range(max(1, min(repeat, 3)))]
    return {
        "downsampled_s": statistics.median(t for t, _ in down),
        "downsampled_bytes": down[0][1],
        "full_s": statistics.median(t for t, _ in full),
        "full_bytes": full[0][1],
    }


def browser_figures(base: str, run_id: str, repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            nav: list[float] = []
            for i in range(repeat + 1):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                t = time.perf_counter()
                page.goto(f"{base}/ui/#/runs/{run_id}")
                page.wait_for_selector(
                    "[data-testid=metric-charts] [data-key=loss] .chart-area[data-drawn='1']",
                    timeout=120_000,
                )
                if i:  # the first load warms the browser's and the server's caches
                    nav.append(time.perf_counter() - t)
                if i == repeat:
                    down_url = (
                        f"/api/v1/runs/{run_id}/metric-histories?keys=loss&max_points={MAX_POINTS}"
                    )
                    full_url = f"/api/v1/runs/{run_id}/metric-history?key=loss"
                    down = [page.evaluate(IN_PAGE, [down_url, True]) for _ in range(repeat)]
                    full = [
                        page.evaluate(IN_PAGE, [full_url, False])
                        for _ in range(max(1, min(repeat, 3)))
                    ]
                    out["in_page_downsampled"] = _median_dict(down)
                    out["in_page_full"] = _median_dict(full)
                page.close()
            out["navigate_to_chart_s"] = statistics.median(nav)
        finally:
            browser.close()
    return out


def _median_dict(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: install Debian's chromium package", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="opsloop-uibench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        print(f"building a home with one {args.points:,}-point metric...", flush=True)
        run_id = build_home(home, args.points)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server_args = ["server", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)]
        cmd = [*python_cmd("from opsloop.cli import main; main()"), *server_args]
        with server_process(cmd, f"{base}/api/v1/health", log_path=Path(tmp) / "server.log"):
            api = api_figures(base, run_id, args.repeat)
            ui = browser_figures(base, run_id, args.repeat)

    d, f = ui["in_page_downsampled"], ui["in_page_full"]
    print()
    print(f"metric with {args.points:,} points; the UI asks for max_points={MAX_POINTS}")
    print("(a) API, median wall time")
    print(
        f"    downsampled histories : {fmt_seconds(api['downsampled_s']):>9}  "
        f"{api['downsampled_bytes'] / 1e3:,.0f} kB"
    )
    print(
        f"    every point           : {fmt_seconds(api['full_s']):>9}  "
        f"{api['full_bytes'] / 1e6:,.1f} MB"
    )
    print(
        f"    ratio                 : {api['full_s'] / api['downsampled_s']:.1f}x faster downsampled"
    )
    print("(b) headless Chromium, navigation to the run page until the chart canvas is drawn")
    print(f"    run page              : {fmt_seconds(ui['navigate_to_chart_s']):>9}")
    print("(c) in the page: fetch + parse + draw with the UI's chart code, median ms")
    for name, r in (("downsampled", d), ("every point", f)):
        print(
            f"    {name:<22}: {r['total_ms']:>8.0f} ms  (fetch {r['fetch_ms']:.0f}, "
            f"parse {r['parse_ms']:.0f}, draw {r['draw_ms']:.0f}; {int(r['points']):,} points)"
        )
    print(f"    ratio                 : {f['total_ms'] / d['total_ms']:.1f}x faster downsampled")
    if args.json:
        write_json(
            args.json, {"points": args.points, "max_points": MAX_POINTS, "api": api, "ui": ui}
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
