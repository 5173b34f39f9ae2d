"""The same ``mlflow`` client against opsloop's MLflow API and against ``mlflow server``.

    .venv/bin/python benchmarks/mlflow_protocol.py            # ~3-5 min on 2 CPUs
    .venv/bin/python benchmarks/mlflow_protocol.py --quick    # smoke test

Both servers run as subprocesses on 127.0.0.1 with SQLite behind them
(``opsloop server``; ``mlflow server --backend-store-uri sqlite:///...`` from
``.venv-mlflow``, made by ``scripts/mlflow_venv.sh``). The client side is one
process of the real ``mlflow`` client (``_mlflow_client_work.py``, run by
``.venv-mlflow/bin/python``) doing the same calls against each: per-call
``log_metric``, ``log_batch`` of 1000 points, run creation (a run and its 10
params), reading a metric's history back, and ``search_runs`` with a filter and
an order. Figures are rates; the goal is opsloop >= 3x on each.

Both servers are up together and take turns: each scenario is cut into
``--rounds`` parts (5), run against one server then the other (the order
flipping every round), so a machine whose load changes (a shared one) loads
both sides alike. ``--sequential`` runs all the work against opsloop first and
then against ``mlflow server``, each alone (how figures before 2026-12 were
taken; on a busy machine its ratios move with the load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Comparison, Figure, free_port, print_table, server_process

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).resolve().parent / "_mlflow_client_work.py"
FULL = {
    "per_call": 1000,
    "batches": 20,
    "runs": 200,
    "history_reads": 5,
    "search_runs": 500,
    "searches": 30,
}
QUICK = {
    "per_call": 100,
    "batches": 3,
    "runs": 20,
    "history_reads": 2,
    "search_runs": 200,  # f1 > 0.5 needs runs past the 51st
    "searches": 5,
}
UNITS = {
    "log_metric": "points",
    "log_batch": "points",
    "create_run": "runs",
    "metric_history": "points",
    "search_runs": "searches",
}


def _work(py: Path, urls: list[str], sizes: dict[str, int], rounds: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    proc = subprocess.run(
        [str(py), str(WORK), json.dumps(sizes), str(rounds), *urls],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"client work failed against {urls}:\n{proc.stderr[-4000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--rounds", type=int, default=5, help="turns per scenario (interleaved)")
    ap.add_argument("--sequential", action="store_true",
                    help="all work against opsloop, then against mlflow server, each alone")  # fmt: skip
    ap.add_argument("--python", default=str(ROOT / ".venv-mlflow" / "bin" / "python"),
                    help="the interpreter with mlflow installed")  # fmt: skip
    args = ap.parse_args(argv)
    py = Path(args.python)
    if not py.exists():
        print(f"{py} is missing: run scripts/mlflow_venv.sh first", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else FULL
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opsloop-mlflow-bench-") as tmp_s:
        tmp = Path(tmp_s)
        logs = tmp / "logs"
        logs.mkdir()
        p_ours, p_theirs = free_port(), free_port()
        ours_cmd = [sys.executable, "-m", "opsloop.cli", "server", "--home", str(tmp / "home"),
                    "--port", str(p_ours), "--log-level", "warning"]  # fmt: skip
        ours_url, theirs_url = f"http://127.0.0.1:{p_ours}", f"http://127.0.0.1:{p_theirs}"
        theirs_cmd = [str(py.with_name("mlflow")), "server", "--backend-store-uri",
                      f"sqlite:///{tmp / 'mlflow.db'}", "--default-artifact-root",
                      (tmp / "mlartifacts").as_uri(), "--host", "127.0.0.1", "--port", str(p_theirs)]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

        def ours_server() -> Any:
            print("opsloop server ...", flush=True)
            return server_process(
                ours_cmd, f"{ours_url}/api/v1/health", log_path=logs / "opsloop.log"
            )

        def theirs_server() -> Any:
            print("mlflow server ...", flush=True)
            return server_process(
                theirs_cmd, f"{theirs_url}/health", log_path=logs / "mlflow.log",
                env=env, cwd=tmp, start_timeout_s=240,
            )  # fmt: skip

        if args.sequential:
            with ours_server():
                ours = _work(py, [ours_url], sizes, 1)[ours_url]
            with theirs_server():
                theirs = _work(py, [theirs_url], sizes, 1)[theirs_url]
        else:
            with ours_server(), theirs_server():
                both = _work(py, [ours_url, theirs_url], sizes, max(1, args.rounds))
            ours, theirs = both[ours_url], both[theirs_url]
        version = subprocess.run(
            [str(py), "-c", "import mlflow; print(mlflow.__version__)"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    rows = [
        Comparison(
            name,
            "server",
            UNITS[name],
            Figure(int(ours[name]["n"]), ours[name]["seconds"]),
            Figure(int(theirs[name]["n"]), theirs[name]["seconds"]),
            goal=None if args.quick else 3.0,
        )
        for name in UNITS
    ]
    title = (
        f"mlflow {version} client: opsloop's MLflow API vs mlflow server, "
        f"{'quick' if args.quick else 'full'} run, "
        f"{'sequential' if args.sequential else f'interleaved x{args.rounds}'}, "
        f"{time.perf_counter() - t0:.0f} s, "
        f"{os.cpu_count()} CPUs, load {load0:.1f}→{os.getloadavg()[0]:.1f}, "
        f"Python {platform.python_version()}"
    )
    print_table(title, rows, theirs="mlflow server")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
