"""``opsloop index``: list, inspect, search, build (from a document collection) and drop
vector indexes under the home folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from opsloop.core.cli import (
    Col,
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    fit_table,
    fmt_bytes,
    fmt_time,
    out,
    print_json,
    resolve_settings,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.retrieval._embedder import Embedder
from opsloop.retrieval._index import VectorIndex
from opsloop.retrieval._retriever import check_collection, check_mode, index_collection

app = room_app(
    "index", "Vector indexes: build one from a document collection, search it, inspect, drop."
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Index name.", show_default=False)]
EmbedderOpt = Annotated[
    str,
    typer.Option(
        "--embedder",
        metavar="SPEC",
        help="Embedding model: `local:minilm` (bundled), a `models:/` URI or a model folder.",
    ),
]


def _home(ctx: typer.Context, home: Path | None) -> Path:
    return Path(resolve_settings(home=home, ctx=ctx).home)


@app.command("list")
def list_(ctx: typer.Context, home: HomeOption = None, json_: JsonOpt = False) -> None:
    """The indexes in the home folder."""

    root = _home(ctx, home)
    infos = []
    for name in VectorIndex.list(root):
        with VectorIndex.open(name, home=root, create=False) as idx:
            infos.append(idx.info())
    if json_:
        print_json(infos)
        return
    if not infos:
        out().print("[dim]no indexes[/]")
        return
    cols = [
        Col("name", key=True),
        Col("vectors", justify="right", drop=0),
        Col("dim", justify="right", drop=3),
        Col("metric", drop=4),
        Col("search", drop=5),
        Col("size", justify="right", drop=2),
        Col("created", drop=1, min_width=19),
    ]
    rows = [
        [
            esc(i["name"]),
            f"{i['count']:,}",
            str(i["dim"] or "-"),
            i["metric"],
            i["search"],
            fmt_bytes(i["size_bytes"]),
            fmt_time(i["created_at"]),
        ]
        for i in infos
    ]
    out().print(fit_table(cols, rows))


@app.command("info")
def info(
    ctx: typer.Context, name: NameArg, home: HomeOption = None, json_: JsonOpt = False
) -> None:
    """What an index holds and how it searches."""

    with VectorIndex.open(name, home=_home(ctx, home), create=False) as idx:
        data = idx.info()
    if json_:
        print_json(data)
        return
    t = Table(show_header=False, box=None)
    for key, value in data.items():
        shown = fmt_bytes(value) if key == "size_bytes" else value
        shown = fmt_time(value) if key == "created_at" else shown
        t.add_row(f"[bold]{key}[/]", esc("-" if shown is None else shown))
    out().print(t)


@app.command("search")
def search(
    ctx: typer.Context,
    name: NameArg,
    query: Annotated[
        str, typer.Argument(metavar="QUERY", help="The question.", show_default=False)
    ],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="Hits to show.")] = 4,
    filter_: Annotated[
        str | None,
        typer.Option(
            "--filter", metavar="JSON", help='Metadata filter, e.g. \'{"source": "a.md"}\'.'
        ),
    ] = None,
    exact: Annotated[bool, typer.Option("--exact", help="Exact search (no IVF).")] = False,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            metavar="MODE",
            help="dense (embed QUERY), keyword (BM25 over the texts) or hybrid (both, fused).",
        ),
    ] = "dense",
    embedder: EmbedderOpt = "local:minilm",
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Show the chunks of index NAME nearest to QUERY (embedded, by keywords, or both)."""

    flt: Any = None
    if filter_:
        try:
            flt = json.loads(filter_)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"--filter is not valid JSON: {exc}") from None
    check_mode(mode)
    root = _home(ctx, home)
    with VectorIndex.open(name, home=root, create=False) as idx:
        if len(idx) == 0:
            hits = []
        elif mode == "keyword":
            hits = idx.keyword_search(query, k, filter=flt)
        else:
            vector = Embedder(embedder, cache_dir=root / "cache" / "models").embed([query])[0]
            if mode == "hybrid":
                hits = idx.hybrid_search(vector, query, k, filter=flt)
            else:
                hits = idx.search(vector, k, filter=flt, exact=exact)
    if json_:
        print_json(
            [{"id": h.id, "score": h.score, "metadata": h.metadata, "text": h.text} for h in hits]
        )
        return
    if not hits:
        out().print("[dim]no hits[/]")
        return
    for rank, h in enumerate(hits, 1):
        where = h.metadata.get("source") or h.id
        out().print(f"[bold]{rank}.[/] [cyan]{h.score:.4f}[/]  {esc(where)}  [dim]{esc(h.id)}[/]")
        if h.text:
            snippet = " ".join(h.text.split())
            out().print(f"   {esc(snippet[:300])}{'…' if len(snippet) > 300 else ''}")


@app.command("build")
def build(
    ctx: typer.Context,
    name: NameArg,
    collection: Annotated[
        str,
        typer.Option(
            "--collection",
            "-c",
            metavar="DATASET@VERSION",
            help="A document collection (dataset of kind documents).",
        ),
    ],
    embedder: EmbedderOpt = "local:minilm",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Texts per batch.")] = 64,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Embed a document collection's chunks into index NAME (created if new; chunks already
    there are replaced)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with (
        command_context(ctx, home) as context,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out(),
            transient=True,
            disable=json_,
        ) as bar,
    ):
        root = Path(context.settings.home)
        # The collection is named before the (slow) embedder load if it is wrong.
        version = check_collection(context, collection)
        task = bar.add_task("loading the embedder", total=None)
        emb = Embedder(embedder, cache_dir=root / "cache" / "models")
        bar.update(task, description=f"embedding {collection}")

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        idx = index_collection(
            context, version, name, emb, batch_size=batch_size, progress=progress, home=root
        )
        with idx:
            data = idx.info()
    if json_:
        print_json(data)
        return
    out().print(
        f"[bold]{esc(name)}[/]: {data['count']:,} vectors ({data['dim']} dimensions, "
        f"{data['search']} search) in {esc(data['path'])}"
    )


@app.command("drop")
def drop(
    ctx: typer.Context,
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    home: HomeOption = None,
) -> None:
    """Delete index NAME and its files."""

    root = _home(ctx, home)
    if not yes and not typer.confirm(f"Delete vector index {name!r}?"):
        raise typer.Exit(1)
    VectorIndex.drop(name, home=root)
    out().print(f"dropped index [bold]{esc(name)}[/]")
