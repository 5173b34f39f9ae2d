"""``opsloop deployments``: list and show model servers recorded by ``opsloop serve``; export
the files to run one in a container or on Kubernetes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from opsloop.core.cli import (
    Col,
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    fit_table,
    fmt_time,
    out,
    print_json,
    resolve_settings,
    room_app,
)
from opsloop.deployments._client import Deployments
from opsloop.deployments._export import ExportOptions, export_deployment

app = room_app(
    "deployments",
    "Model servers started with `opsloop serve`: what they serve, where, and whether they run; "
    "`export` writes a Dockerfile or Kubernetes manifests for one.",
)

_STYLE = {"running": "green", "stopped": "dim", "failed": "red", "lost": "yellow"}


@contextlib.contextmanager
def _deployments(ctx: typer.Context, home: Path | None) -> Iterator[Deployments]:
    with command_context(ctx, home) as context:
        yield context.room(Deployments)


@app.command("list")
def list_command(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="Only deployments of this registered model.")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status: running, stopped, failed or lost.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1)] = 100,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """List deployments, newest first (a server silent for 3 heartbeats shows `lost`)."""
    with _deployments(ctx, home) as deps:
        items = deps.list(model_name=model, status=status, limit=limit)
    if json_:
        print_json([d.model_dump(mode="json") for d in items])
        return
    cols = [
        Col("ID", key=True),
        Col("Serves", key=True),
        Col("Version", drop=3),
        Col("URL", drop=0),
        Col("Status", drop=0),
        Col("Started", drop=2, min_width=19),
        Col("Last heartbeat", drop=1, min_width=19),
    ]
    rows = []
    for d in items:
        style = _STYLE.get(d.status, "")
        rows.append(
            [
                d.id,
                esc(d.name),
                "" if d.version is None else str(d.version),
                esc(d.url),
                f"[{style}]{d.status}[/]" if style else d.status,
                fmt_time(d.started_at),
                fmt_time(d.last_heartbeat_at),
            ]
        )
    out().print(fit_table(cols, rows, title=f"{len(items)} deployment(s)"))


@app.command("show")
def show_command(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument(metavar="ID", help="Deployment id.")],
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Show one deployment."""
    with _deployments(ctx, home) as deps:
        d = deps.get(deployment_id)
    if json_:
        print_json(d.model_dump(mode="json"))
        return
    for key, value in d.model_dump().items():
        if key.endswith("_at"):
            value = fmt_time(value) if value else ""
        out().print(f"[bold]{key}[/]: {esc('' if value is None else value)}")


@app.command("export")
def export_command(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL", help="`models:/NAME@ALIAS`, `models:/NAME/VERSION` or NAME."
        ),
    ],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="`docker` (Dockerfile, pinned requirements, the model files) or `kubernetes`.",
        ),
    ] = "docker",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="A new or empty folder (default: ./opsloop-export-NAME-FORMAT).",
            show_default=False,
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            help="The image the pods run (default: opsloop-NAME:VERSION).", show_default=False
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(help="The port the server listens on.", min=1, max=65535)
    ] = 8000,
    replicas: Annotated[int, typer.Option(help="Pods at first.", min=1)] = 1,
    min_replicas: Annotated[int, typer.Option(help="Fewest pods the autoscaler keeps.", min=1)] = 1,
    max_replicas: Annotated[int, typer.Option(help="Most pods the autoscaler starts.", min=1)] = 4,
    target_cpu: Annotated[
        int, typer.Option(help="CPU utilisation (%) the autoscaler aims at.", min=1, max=100)
    ] = 70,
    cpu: Annotated[
        str, typer.Option(help="CPU request per pod (cores or millicores: 1, 500m).")
    ] = "1",
    memory: Annotated[
        int | None,
        typer.Option(
            help="Memory request per pod in MiB (default: measured by loading the model).",
            min=16,
            show_default=False,
        ),
    ] = None,
    follow: Annotated[
        str | None,
        typer.Option(
            "--follow-registry",
            metavar="URL",
            help="Bundle no model files: serve MODEL from this opsloop server (alias moves hot-swap in the pods).",
            show_default=False,
        ),
    ] = None,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            metavar="TYPE",
            help="Trust this type name in a skops model file (repeatable).",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Write the files a platform needs to run MODEL's server: a Dockerfile or Kubernetes manifests.

    `--format docker` writes a Dockerfile, a requirements.txt pinned to the
    library versions the model recorded when saved, and the version's files
    (`model/`). `--format kubernetes` writes kubernetes.yaml: a Deployment
    (readiness on /ready, liveness on /health), a Service and a
    HorizontalPodAutoscaler, with the memory request measured by loading the
    model. Checked against the Kubernetes API's model classes, not a live cluster.

    Examples:

        opsloop deployments export models:/churn@champion --format docker -o build/
        opsloop deployments export models:/churn@champion --format kubernetes --image registry.example/churn:3
    """
    settings = resolve_settings(home=home, ctx=ctx)
    name = model.removeprefix("models:/").split("@")[0].split("/")[0]
    out_dir = output or Path(f"opsloop-export-{name}-{format_}")
    opts = ExportOptions(
        image=image,
        port=port,
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu_percent=target_cpu,
        cpu=cpu,
        memory_mib=memory,
        tracking_uri=follow,
        trusted_types=list(trust or []),
    )
    files = export_deployment(model, settings, out_dir, format_, opts)  # type: ignore[arg-type]
    for f in files:
        out().print(f"wrote {esc(str(f))}")
