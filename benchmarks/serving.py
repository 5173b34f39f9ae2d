"""Model serving, side by side on this machine: opsloop vs ``mlflow models serve``, and LLM batching.

    .venv/bin/python benchmarks/serving.py              # full run (a few minutes)
    .venv/bin/python benchmarks/serving.py --quick      # smoke run (~1-2 min after the first)
    .venv/bin/python benchmarks/serving.py --json out.json --skip-llm
    .venv/bin/python benchmarks/serving.py --ray --skip-tabular --skip-llm   # (c) only

(a) Tabular: one 50-tree ``RandomForestClassifier`` (fitted once) is served by
``opsloop serve models:/bench-rf@prod`` (registered in a temporary home) and by
``mlflow models serve -m models:/... --env-manager local`` (logged with
``mlflow.sklearn`` into a temporary SQLite store). Both run as subprocesses on
127.0.0.1 with their defaults (one uvicorn worker each), one at a time. The
same load hits both: 8 concurrent closed-loop clients, each sending single-row
``POST /invocations {"dataframe_records": [row]}`` (identical bytes; MLflow's
format, which opsloop also accepts) over keep-alive connections, for a fixed
duration after a warm-up. The load generator is a minimal asyncio HTTP/1.1
client in this process, so its own cost is small and the same for both.

(b) LLM: SmolLM2-135M-Instruct (the bundled GGUF) served by ``opsloop serve``;
8 chat requests with ``max_tokens`` T and ``ignore_eos`` (every request
generates exactly T tokens) sent one at a time, then all at once. The figure
is total generated tokens per second of wall time.

(c) ``--ray``: the same forest on a local Ray Serve instance: a plain Ray Serve
deployment with ``@serve.batch`` against ``opsloop serve --on ray`` with one
and two replicas (see ``_serving_ray.py``).

Benchmarks print figures; they assert nothing. See docs/serving.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port, server_process, write_json

TREE = "sklearn.tree._tree.Tree"
N_FEATURES = 10


@dataclass
class LoadResult:
    system: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        d.update(rps=self.rps, p50_ms=self.pct(0.50), p90_ms=self.pct(0.90), p99_ms=self.pct(0.99))
        return d


# ---------------------------------------------------------------- load generator


async def _one_client(
    port: int, request: bytes, stop_at: float, measure_from: float, out: LoadResult
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    try:
        while True:
            t0 = loop.time()
            if t0 >= stop_at:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            t1 = loop.time()
            if t0 >= measure_from:
                out.requests += 1
                out.latencies_ms.append((t1 - t0) * 1000)
                if status != 200:
                    out.errors += 1
    finally:
        writer.close()


def run_load(
    system: str, port: int, body: bytes, *, clients: int, warmup_s: float, duration_s: float
) -> LoadResult:
    """``clients`` closed-loop keep-alive connections POSTing ``body``; measured after the warm-up."""
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    out = LoadResult(system, 0, 0, duration_s)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s
        await asyncio.gather(
            *[_one_client(port, request, stop_at, measure_from, out) for _ in range(clients)]
        )

    asyncio.run(main())
    return out


# ---------------------------------------------------------------- (a) random forest


def train_forest() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    x, y = make_classification(
        n_samples=5000, n_features=N_FEATURES, n_informative=6, random_state=0
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(N_FEATURES)])
    return RandomForestClassifier(n_estimators=50, random_state=0).fit(frame, y), frame


def opsloop_home(tmp: Path) -> Any:
    from opsloop.settings import Settings

    return Settings(home=tmp / "opsloop-home", flush_interval_s=60.0)


def register_opsloop_forest(model: Any, frame: Any, tmp: Path) -> None:
    import opsloop
    from opsloop.registry import Registry
    from opsloop.registry.flavors import save_sklearn

    folder = save_sklearn(model, tmp / "rf-opsloop", input_example=frame.head(5).to_dict("records"))
    client = opsloop.Client(settings=opsloop_home(tmp))
    try:
        reg = Registry(client)
        mv = reg.register("bench-rf", folder)
        reg.set_alias("bench-rf", "prod", mv.version)
    finally:
        client.close()


def log_mlflow_forest(model: Any, frame: Any, tmp: Path) -> tuple[str, str]:
    import logging

    import mlflow
    import mlflow.sklearn

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    # With a database store MLflow puts artifacts in ./mlruns unless told otherwise.
    exp = mlflow.create_experiment(
        "bench-serving", artifact_location=(tmp / "mlflow-artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=exp)
    with warnings.catch_warnings(), mlflow.start_run():
        warnings.simplefilter("ignore")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=frame.head(2),
            skops_trusted_types=[TREE],
            pip_requirements=["scikit-learn"],  # skip requirement inference (slow, irrelevant here)
        )
    return info.model_uri, uri


def check_answer(port: int, body: bytes, want: Any) -> str:
    import httpx

    r = httpx.post(
        f"http://127.0.0.1:{port}/invocations",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    got = r.json().get("predictions") if r.status_code == 200 else None
    return "ok" if got == want else f"WRONG ANSWER: {r.status_code} {r.text[:200]}"


def prepare_forest(tmp: Path) -> tuple[Any, Any, bytes, Any]:
    """The fitted forest, its frame, the request body and its answer; registered in opsloop."""
    print("random forest: training 50 trees, registering it ...", flush=True)
    model, frame = train_forest()
    row = frame.iloc[[123]].to_dict("records")
    body = json.dumps({"dataframe_records": row}).encode()
    want = model.predict(frame.iloc[[123]]).tolist()
    register_opsloop_forest(model, frame, tmp)
    return model, frame, body, want


def bench_tabular(args: argparse.Namespace, tmp: Path, forest: tuple[Any, ...]) -> list[LoadResult]:
    print("(a) random forest: opsloop serve and mlflow models serve ...", flush=True)
    model, frame, body, want = forest
    mlflow_uri, tracking = log_mlflow_forest(model, frame, tmp)
    results = []
    load = {"clients": args.clients, "warmup_s": args.warmup, "duration_s": args.duration}

    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "opsloop.serving.cli",
        "models:/bench-rf@prod",
        "--home",
        str(tmp / "opsloop-home"),
        "--trust",
        TREE,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--max-wait-ms",
        str(args.max_wait_ms),
    ]
    print("  opsloop serve ...", flush=True)
    with server_process(cmd, f"http://127.0.0.1:{port}/ready", log_path=tmp / "opsloop.log"):
        note = check_answer(port, body, want)
        res = run_load("opsloop", port, body, **load)
        import httpx

        stats = httpx.get(f"http://127.0.0.1:{port}/v1/stats").json().get("predict", {})
        res.note = f"{note}; mean batch {stats.get('mean_batch_rows', 0):.1f} rows"
        results.append(res)

    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        mlflow_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    print("  mlflow models serve ...", flush=True)
    # MLflow starts `uvicorn` by name: the venv's bin folder must be on PATH.
    env = {
        "MLFLOW_TRACKING_URI": tracking,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with server_process(cmd, f"http://127.0.0.1:{port}/ping", log_path=tmp / "mlflow.log", env=env):
        note = check_answer(port, body, want)
        res = run_load("mlflow", port, body, **load)
        res.note = note
        results.append(res)
    return results


# ---------------------------------------------------------------- (b) SmolLM2


PROMPTS = [
    "Write a story about a lighthouse keeper.",
    "Explain how rain forms.",
    "Describe a busy market in the morning.",
    "Write a letter to a friend about a trip.",
    "Explain why the sky is blue.",
    "Describe your favourite meal.",
    "Write a poem about autumn leaves.",
    "Explain how a bicycle works.",
]


@dataclass
class LlmResult:
    dtype: str
    mode: str
    requests: int
    tokens: int
    seconds: float

    @property
    def tps(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def register_smollm2(tmp: Path) -> None:
    import opsloop
    from opsloop.registry import Registry, bundled_gguf

    client = opsloop.Client(settings=opsloop_home(tmp))
    try:
        reg = Registry(client)
        mv = reg.register(
            "bench-smol",
            bundled_gguf("smollm2"),
            flavor="transformers",
            options={"model_id": "SmolLM2-135M-Instruct"},
        )
        reg.set_alias("bench-smol", "prod", mv.version)
    finally:
        client.close()


def bench_llm_dtype(
    args: argparse.Namespace, tmp: Path, dtype: str
) -> tuple[list[LlmResult], dict[str, Any]]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cache = Path(args.model_cache).expanduser()
    cmd = [
        sys.executable,
        "-m",
        "opsloop.serving.cli",
        "models:/bench-smol@prod",
        "--home",
        str(tmp / "opsloop-home"),
        "--cache-dir",
        str(cache),
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--llm-max-batch-size",
        "8",
        "--device",
        args.device,
        "--dtype",
        dtype,
    ]
    if args.torch_threads:
        cmd += ["--torch-threads", str(args.torch_threads)]
    print(
        f"  opsloop serve --dtype {dtype} (the first run ever converts the GGUF into {cache}) ...",
        flush=True,
    )
    with server_process(
        cmd, f"{url}/ready", log_path=tmp / f"llm-{dtype}.log", start_timeout_s=900
    ):

        async def chat(c: httpx.AsyncClient, prompt: str, max_tokens: int) -> int:
            r = await c.post(
                f"{url}/v1/chat/completions",
                json={
                    "model": "bench-smol",
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_tokens,
                    "temperature": 0,
                    "ignore_eos": True,
                },
            )
            r.raise_for_status()
            return int(r.json()["usage"]["completion_tokens"])

        async def run() -> list[LlmResult]:
            async with httpx.AsyncClient(timeout=900) as c:
                await chat(c, "Hello", 4)  # warm-up
                t = time.perf_counter()
                seq = [await chat(c, p, args.max_tokens) for p in PROMPTS]
                seq_s = time.perf_counter() - t
                t = time.perf_counter()
                conc = await asyncio.gather(*[chat(c, p, args.max_tokens) for p in PROMPTS])
                conc_s = time.perf_counter() - t
            return [
                LlmResult(dtype, "one at a time", len(PROMPTS), sum(seq), seq_s),
                LlmResult(dtype, "8 concurrent", len(PROMPTS), sum(conc), conc_s),
            ]

        results = asyncio.run(run())
        stats = httpx.get(f"{url}/v1/stats").json().get("generation", {})
    return results, stats


def bench_llm(args: argparse.Namespace, tmp: Path) -> tuple[list[LlmResult], dict[str, Any]]:
    print("(b) SmolLM2: registering the bundled GGUF ...", flush=True)
    register_smollm2(tmp)
    results: list[LlmResult] = []
    stats: dict[str, Any] = {}
    for dtype in args.dtypes.split(","):
        res, st = bench_llm_dtype(args, tmp, dtype.strip())
        results += res
        stats[dtype.strip()] = st
    return results, stats


# ---------------------------------------------------------------- report


def print_report(
    tab: list[LoadResult], llm: list[LlmResult], gen_stats: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=160)
    summary: dict[str, Any] = {}
    if tab:
        t = Table(
            title=f"(a) 50-tree random forest, {args.clients} concurrent clients, "
            f"single-row requests, {args.duration:g} s measured"
        )
        for col in ("server", "requests", "errors", "throughput", "p50", "p90", "p99", "check"):
            t.add_column(col, justify="left" if col in ("server", "check") else "right")
        for r in tab:
            t.add_row(
                r.system,
                f"{r.requests:,}",
                str(r.errors),
                f"{r.rps:,.0f} req/s",
                f"{r.pct(0.5):.1f} ms",
                f"{r.pct(0.9):.1f} ms",
                f"{r.pct(0.99):.1f} ms",
                r.note,
            )
        con.print(t)
        ours, theirs = tab[0], tab[1]
        ratio = ours.rps / theirs.rps if theirs.rps else float("inf")
        p99_ratio = theirs.pct(0.99) / ours.pct(0.99) if ours.pct(0.99) else float("inf")
        ok = ratio >= 10 and ours.pct(0.99) < theirs.pct(0.99)
        con.print(
            f"throughput opsloop/MLflow: [bold]{ratio:.1f}x[/] (goal >= 10x); "
            f"p99 MLflow/opsloop: [bold]{p99_ratio:.1f}x[/] (goal: opsloop lower) -> "
            + ("[green]goal met[/]" if ok else "[red]goal MISSED[/]")
        )
        summary["tabular"] = {
            "results": [r.summary() for r in tab],
            "throughput_ratio": ratio,
            "p99_ratio": p99_ratio,
            "goal_met": ok,
        }
    if llm:
        threads = args.torch_threads or "default"
        t = Table(
            title=f"(b) SmolLM2-135M-Instruct on {args.device} (torch threads: {threads}): "
            f"8 chat requests x {args.max_tokens} tokens"
        )
        for col in ("dtype", "mode", "requests", "tokens", "wall time", "tokens/s", "speed-up"):
            t.add_column(col, justify="left" if col in ("dtype", "mode") else "right")
        summary["llm"] = {}
        for i in range(0, len(llm), 2):
            one, many = llm[i], llm[i + 1]
            ratio = many.tps / one.tps if one.tps else float("inf")
            verdict = "[green]>= 3x ok[/]" if ratio >= 3 else "[red]< 3x MISSED[/]"
            t.add_row(
                one.dtype,
                one.mode,
                str(one.requests),
                f"{one.tokens:,}",
                f"{one.seconds:.2f} s",
                f"{one.tps:,.1f}",
                "",
            )
            t.add_row(
                many.dtype,
                many.mode,
                str(many.requests),
                f"{many.tokens:,}",
                f"{many.seconds:.2f} s",
                f"{many.tps:,.1f}",
                f"{ratio:.1f}x {verdict}",
            )
            st = gen_stats.get(one.dtype, {})
            summary["llm"][one.dtype] = {
                "one_at_a_time_tps": one.tps,
                "concurrent_tps": many.tps,
                "speedup": ratio,
                "goal_met": ratio >= 3,
                "engine": st,
            }
        con.print(t)
        con.print(
            "goal: >= 3x tokens/s with 8 concurrent requests (batched) vs one at a time; "
            "engine batch sizes per dtype: "
            + ", ".join(
                f"{d}: max {s.get('max_batch')}, mean {s.get('mean_batch')}"
                for d, s in gen_stats.items()
            )
        )
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="shorter load and generations")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=None, help="measured seconds per server")
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="opsloop micro-batch wait")
    p.add_argument("--max-tokens", type=int, default=None, help="tokens per LLM request")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--dtypes",
        default="float32,bfloat16",
        help="LLM weight dtypes to run, comma-separated (one server each)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="PyTorch threads in the LLM server (0: PyTorch's default)",
    )
    p.add_argument(
        "--model-cache",
        default=os.environ.get(
            "OPSLOOP_TEST_MODEL_CACHE", str(Path.home() / ".cache" / "opsloop-bench" / "models")
        ),
        help="where the converted GGUF is kept between runs",
    )
    p.add_argument("--skip-tabular", action="store_true")
    p.add_argument("--skip-llm", action="store_true")
    p.add_argument(
        "--ray",
        action="store_true",
        help="add (c): plain Ray Serve with @serve.batch vs opsloop on Ray, 1 and 2 replicas",
    )
    p.add_argument("--ray-port", type=int, default=8127, help="Ray Serve's HTTP port for (c)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args()
    args.duration = args.duration or (5.0 if args.quick else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    args.max_tokens = args.max_tokens or (24 if args.quick else 64)
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True
    )
    with tempfile.TemporaryDirectory(prefix="opsloop-bench-serving-") as d:
        tmp = Path(d)
        forest = prepare_forest(tmp) if not args.skip_tabular or args.ray else None
        tab = [] if args.skip_tabular or forest is None else bench_tabular(args, tmp, forest)
        ray_rows = []
        if args.ray and forest is not None:
            from _serving_ray import bench_ray

            ray_rows = bench_ray(args, tmp, *forest)
        llm, gen_stats = ([], {}) if args.skip_llm else bench_llm(args, tmp)
    summary = print_report(tab, llm, gen_stats, args)
    if ray_rows:
        from _serving_ray import ray_report
        from rich.console import Console
        from rich.table import Table

        summary["ray"] = ray_report(Console(width=160), Table, ray_rows, args)
    if args.json:
        write_json(args.json, {"args": vars(args), **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
