"""``opsloop serve MODEL``: serve one model over HTTP.

``serve_command`` is the command; the main CLI mounts it with
``app.command("serve")(serve_command)`` so it reads ``opsloop serve
models:/NAME@ALIAS``. ``app`` is a Typer app holding only that command
(Typer runs a one-command app as that command: ``python -m
opsloop.serving.cli MODEL``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from opsloop.core.cli import (
    HomeOption,
    exit_code_for,
    importable_cwd,
    out,
    passes_through,
    report_error,
    resolve_settings,
    unexpected_error,
)
from opsloop.errors import InvalidArgument, OpsloopError

__all__ = ["app", "serve_command"]

app = typer.Typer(help="Serve a model over HTTP.", pretty_exceptions_show_locals=False)


def serve_command(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="`models:/NAME@ALIAS`, `models:/NAME/VERSION`, `models:/NAME` (latest), "
            "a bundled model (`local:smollm2`, `local:gemma3`, `local:minilm`), "
            "a `.gguf` file or a saved model folder.",
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on (`0.0.0.0` for all).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes; each loads the model and batches its own requests.", min=1
        ),
    ] = 1,
    max_batch_size: Annotated[
        int,
        typer.Option(
            help="Rows per model call when micro-batching predict/embedding requests.", min=1
        ),
    ] = 64,
    max_wait_ms: Annotated[
        float,
        typer.Option(help="How long a request may wait for others to share its batch.", min=0),
    ] = 2.0,
    llm_max_batch_size: Annotated[
        int, typer.Option(help="Sequences a language model decodes together.", min=1)
    ] = 8,
    llm_max_wait_ms: Annotated[
        float,
        typer.Option(
            help="How long an idle language model waits to prefill a burst together.", min=0
        ),
    ] = 20.0,
    dtype: Annotated[
        str,
        typer.Option(
            help="Cast language/embedding model weights: auto, float32, bfloat16, float16 "
            "(bfloat16: several times faster on CPUs with AMX or AVX512-BF16)."
        ),
    ] = "auto",
    torch_threads: Annotated[
        int | None,
        typer.Option(
            help="PyTorch threads (default: one per core; 1 is best on a machine shared with other busy work).",
            min=1,
            show_default=False,
        ),
    ] = None,
    poll_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between checks of where the alias points (0: never reload).", min=0
        ),
    ] = 5.0,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            metavar="TYPE",
            help="Trust this type name in a skops model file (repeatable).",
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="`cpu` or `cuda` (default: CUDA when available).", show_default=False),
    ] = None,
    home: HomeOption = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where model files and converted weights are cached.", show_default=False
        ),
    ] = None,
    monitoring: Annotated[
        bool,
        typer.Option(
            help="Log predictions and keep live metrics (GET /metrics); see docs/monitoring.md."
        ),
    ] = True,
    log_sample_ratio: Annotated[
        float,
        typer.Option(help="Share of predict requests whose inputs and outputs are logged."),
    ] = 1.0,
    on: Annotated[
        str,
        typer.Option(
            help="`local` (uvicorn on this machine) or `ray` (Ray Serve replicas on a Ray cluster)."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="--on ray: an existing Ray cluster (`ray://HOST:10001`, `HOST:6379`, `auto`); "
            "default: a local Ray instance started and stopped with the command.",
            show_default=False,
        ),
    ] = None,
    replicas: Annotated[
        int | None,
        typer.Option(
            help="--on ray: a fixed number of replicas (default 1).", min=1, show_default=False
        ),
    ] = None,
    min_replicas: Annotated[
        int, typer.Option(help="--on ray with --max-replicas: fewest replicas kept.", min=0)
    ] = 1,
    max_replicas: Annotated[
        int | None,
        typer.Option(
            help="--on ray: autoscale between --min-replicas and this many replicas.",
            min=1,
            show_default=False,
        ),
    ] = None,
    target_ongoing_requests: Annotated[
        float,
        typer.Option(help="--on ray autoscaling: requests in flight per replica to aim at."),
    ] = 32.0,
    upscale_delay: Annotated[
        float,
        typer.Option(help="--on ray autoscaling: seconds above the target before adding.", min=0),
    ] = 30.0,
    downscale_delay: Annotated[
        float,
        typer.Option(help="--on ray autoscaling: seconds below the target before removing.", min=0),
    ] = 600.0,
    replica_cpus: Annotated[
        float, typer.Option(help="--on ray: CPUs Ray reserves for each replica.", min=0)
    ] = 1.0,
    replica_gpus: Annotated[
        float, typer.Option(help="--on ray: GPUs Ray reserves for each replica.", min=0)
    ] = 0.0,
    direct_port: Annotated[
        int | None,
        typer.Option(
            help="--on ray: each replica also answers on this port itself (shared by the "
            "replicas of a node; Linux), skipping Ray's proxy: several times the throughput.",
            min=1,
            max=65535,
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve one model: predict endpoints for tabular models, OpenAI-compatible ones for LLMs.

    Tabular and Python-function models answer `POST /v1/predict` (and
    `/invocations`) with concurrent requests micro-batched. Language models
    answer `POST /v1/chat/completions` and `/v1/completions` (streaming too),
    embedders `POST /v1/embeddings`. `GET /health`, `/ready`, `/v1/metadata`.
    Serving `@ALIAS` follows the alias: when it moves, the new version loads
    in the background and takes over without failing a request. Stops
    gracefully on Ctrl-C or SIGTERM (requests in flight finish first).

    `--on ray` deploys the same server as Ray Serve replicas (each loads the
    model and batches its own requests; `--replicas`, or `--min-replicas` and
    `--max-replicas` to autoscale), on a local Ray instance or the cluster at
    `--address`. See docs/serving.md#scaling-out.

    Examples:

        opsloop serve models:/churn@champion --port 8080
        opsloop serve models:/smollm2/3 --workers 2
        opsloop serve local:smollm2
        opsloop serve ./my-model.Q4_K_M.gguf
        opsloop serve models:/churn@champion --on ray --min-replicas 1 --max-replicas 4
    """
    from opsloop.serving._options import ServeOptions  # lazy: loads fastapi
    from opsloop.serving._run import serve  # lazy: loads fastapi

    importable_cwd()  # a pyfunc or pipeline model's code may live beside the user
    settings = resolve_settings(home=home, ctx=ctx)
    try:
        options = ServeOptions(
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            llm_max_batch_size=llm_max_batch_size,
            llm_max_wait_ms=llm_max_wait_ms,
            dtype=dtype,  # type: ignore[arg-type]
            torch_threads=torch_threads,
            poll_interval_s=poll_interval,
            trusted_types=list(trust or []),
            cache_dir=cache_dir,
            device=device,
            monitoring=monitoring,
            log_sample_ratio=log_sample_ratio,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidArgument(f"--{field.replace('_', '-')}: {first['msg']}") from None

    def ready(url: str) -> None:
        out().print(f"[bold]opsloop serve:[/] {model} at {url}  (GET /ready, /v1/metadata)")

    if on not in ("local", "ray"):
        raise InvalidArgument(f"--on: use local or ray, not {on!r}")
    ray_flags = (address, replicas, max_replicas, direct_port)
    if on == "local" and any(f is not None for f in ray_flags):
        raise InvalidArgument(
            "--address, --replicas, --max-replicas and --direct-port need --on ray"
        )
    if on == "ray":
        if workers != 1:
            raise InvalidArgument(
                "--workers is for one machine; on Ray use --replicas or --max-replicas"
            )
        from opsloop.serving._ray import RayOptions, serve_on_ray  # lazy: loads fastapi

        try:
            ray_options = RayOptions(
                replicas=replicas,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                target_ongoing_requests=target_ongoing_requests,
                upscale_delay_s=upscale_delay,
                downscale_delay_s=downscale_delay,
                replica_cpus=replica_cpus,
                replica_gpus=replica_gpus,
                direct_port=direct_port,
            )
        except ValidationError as exc:
            raise InvalidArgument(f"--on ray: {exc.errors()[0]['msg']}") from None
        serve_on_ray(
            model,
            settings,
            options=options,
            ray_options=ray_options,
            address=address,
            host=host,
            port=port,
            on_ready=ready,
        )
        out().print("opsloop serve: stopped")
        return

    serve(
        model,
        settings,
        options=options,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.lower(),
        access_log=access_log,
        on_ready=ready,
    )
    out().print("opsloop serve: stopped")


app.command("serve")(serve_command)


def main() -> None:
    """Run ``app`` on its own (``python -m opsloop.serving.cli MODEL ...``), errors as the main CLI shows them."""
    try:
        app()
    except OpsloopError as exc:
        report_error(exc)
        sys.exit(exit_code_for(exc))
    except Exception as exc:
        if passes_through(exc):
            raise
        report_error(unexpected_error(exc))
        sys.exit(1)


if __name__ == "__main__":
    main()
