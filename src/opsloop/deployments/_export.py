"""``opsloop deployments export``: the files a platform team needs to run a model server.

``docker``: a ``Dockerfile`` and a ``requirements.txt`` pinned to the library
versions the model version recorded when it was saved (its ``library_versions``
metadata), with the version's files copied beside them (``model/``), so the
image serves exactly that version with no registry to reach. With
``tracking_uri`` the image holds no model files and serves ``models:/NAME@ALIAS``
from that opsloop server instead (alias moves then hot-swap inside the pods).

``kubernetes``: one ``kubernetes.yaml`` holding a ``Deployment`` (readiness probe
on ``GET /ready``, liveness probe on ``GET /health``, graceful termination), a
``Service`` and a ``HorizontalPodAutoscaler``. The memory request comes from a
measurement: a child process loads the model and reports its peak resident
memory, and the request is that plus a quarter (the limit twice the request).

These files are checked here against the Kubernetes API's own model classes, not
against a live cluster.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

if sys.platform != "win32":
    import resource

from opsloop.core import VERSION, Context
from opsloop.errors import InvalidArgument
from opsloop.registry import ModelVersion, Registry, parse_model_uri
from opsloop.settings import Settings
from opsloop.tracking import Tracking

__all__ = ["ExportOptions", "export_deployment", "measure_memory", "to_yaml"]

Format = Literal["docker", "kubernetes"]
MIB = 1024 * 1024
# The opsloop extras each flavor's loader needs (beyond its recorded library pins).
_FLAVOR_EXTRAS = {
    "sklearn": ["sklearn"],
    "xgboost": [],
    "lightgbm": [],
    "pyfunc": [],
    "transformers": ["llm"],
    "peft": ["llm"],
    "sentence_transformers": ["llm"],
    "pipeline": ["pipelines", "llm"],
}
MODEL_DIR = "/opt/opsloop/model"


@dataclass
class ExportOptions:
    """What the exported files say; ``memory_mib`` None: measure it by loading the model."""

    image: str | None = None
    port: int = 8000
    replicas: int = 1
    min_replicas: int = 1
    max_replicas: int = 4
    target_cpu_percent: int = 70
    cpu: str = "1"
    memory_mib: int | None = None
    tracking_uri: str | None = None
    trusted_types: list[str] = field(default_factory=list)

    def check(self) -> None:
        if not 1 <= self.port <= 65535:
            raise InvalidArgument(f"port must be 1..65535, got {self.port}")
        if self.min_replicas < 1 or self.max_replicas < self.min_replicas:
            raise InvalidArgument(
                f"need 1 <= min replicas <= max replicas, got {self.min_replicas} and {self.max_replicas}"
            )
        if not self.min_replicas <= self.replicas <= self.max_replicas:
            raise InvalidArgument(
                f"replicas ({self.replicas}) must lie between min ({self.min_replicas}) and max ({self.max_replicas})"
            )
        if not re.fullmatch(r"\d+(\.\d+)?|\d+m", self.cpu):
            raise InvalidArgument(
                f"cpu must be cores (1, 0.5) or millicores (500m), got {self.cpu!r}"
            )
        if self.memory_mib is not None and self.memory_mib < 16:
            raise InvalidArgument(f"memory must be at least 16 MiB, got {self.memory_mib}")
        if not 1 <= self.target_cpu_percent <= 100:
            raise InvalidArgument("the target CPU utilisation is a percentage (1..100)")


def _k8s_name(name: str) -> str:
    """A DNS-1035 label from a model name (Kubernetes object names)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    label = ("m-" + label if not label[:1].isalpha() else label)[:50].rstrip("-")
    return f"opsloop-{label}" if label else "opsloop-model"


def _requirements(mv: ModelVersion) -> list[str]:
    extras = ["serving", *_FLAVOR_EXTRAS.get(mv.flavor, [])]
    lines = [f"opsloop[{','.join(extras)}]=={VERSION}"]
    pins = mv.metadata.get("library_versions") or {}
    if isinstance(pins, dict):
        for lib, ver in sorted(pins.items()):
            if re.fullmatch(r"[A-Za-z0-9._-]+", str(lib)) and re.fullmatch(
                r"[A-Za-z0-9.+!_-]+", str(ver)
            ):
                lines.append(f"{lib}=={ver}")
    return lines


def _serve_args(target: str, opts: ExportOptions) -> list[str]:
    args = ["opsloop", "serve", target, "--host", "0.0.0.0", "--port", str(opts.port)]
    for t in opts.trusted_types:
        args += ["--trust", t]
    return args


def _dockerfile(mv: ModelVersion, target: str, opts: ExportOptions) -> str:
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    lines = [
        f"# opsloop serve {mv.uri} ({mv.flavor}), exported by opsloop {VERSION}.",
        "# Build: docker build -t IMAGE .   Run: docker run -p 8000:8000 IMAGE",
        f"FROM python:{py}-slim",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OPSLOOP_HOME=/var/lib/opsloop",
        "WORKDIR /opt/opsloop",
        "COPY requirements.txt .",
        "RUN pip install --no-cache-dir -r requirements.txt",
    ]
    if opts.tracking_uri is None:
        lines.append(f"COPY model/ {MODEL_DIR}/")
    else:
        lines.append(f"ENV OPSLOOP_TRACKING_URI={json.dumps(opts.tracking_uri)}")
    lines += [
        "RUN useradd --create-home --uid 10001 opsloop && mkdir -p /var/lib/opsloop "
        "&& chown opsloop /var/lib/opsloop",
        "USER opsloop",
        f"EXPOSE {opts.port}",
        f"HEALTHCHECK CMD python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{opts.port}/ready')\"",
        "STOPSIGNAL SIGTERM",
        f"CMD {json.dumps(_serve_args(target, opts))}",
    ]
    return "\n".join(lines) + "\n"


def _quantity_mib(mib: int) -> str:
    return f"{mib}Mi"


def kubernetes_manifests(
    mv: ModelVersion, target: str, opts: ExportOptions, memory_mib: int
) -> list[dict[str, Any]]:
    """The ``Deployment``, ``Service`` and ``HorizontalPodAutoscaler`` of one model server."""
    name = _k8s_name(mv.name)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "opsloop"}
    image = opts.image or f"{name}:{mv.version}"
    env = [{"name": "OPSLOOP_HOME", "value": "/var/lib/opsloop"}]
    if opts.tracking_uri is not None:
        env.append({"name": "OPSLOOP_TRACKING_URI", "value": opts.tracking_uri})
    probe = {"httpGet": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5}
    container = {
        "name": "server",
        "image": image,
        "args": _serve_args(target, opts)[1:],
        "command": ["opsloop"],
        "ports": [{"name": "http", "containerPort": opts.port, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": opts.cpu, "memory": _quantity_mib(memory_mib)},
            "limits": {"memory": _quantity_mib(2 * memory_mib)},
        },
        # Ready once the model is loaded; restarted only when the process stops answering.
        "readinessProbe": {
            **probe,
            "httpGet": {"path": "/ready", "port": "http"},
            "failureThreshold": 3,
        },
        "livenessProbe": {
            **probe,
            "httpGet": {"path": "/health", "port": "http"},
            "initialDelaySeconds": 10,
            "failureThreshold": 6,
        },
        "startupProbe": {
            **probe,
            "httpGet": {"path": "/health", "port": "http"},
            "failureThreshold": 30,
        },
        "volumeMounts": [{"name": "home", "mountPath": "/var/lib/opsloop"}],
    }
    meta = {"name": name, "labels": labels}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **meta,
            "annotations": {"opsloop.dev/model": mv.uri, "opsloop.dev/serves": target},
        },
        "spec": {
            "replicas": opts.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # opsloop serve finishes requests in flight on SIGTERM (up to 30 s).
                    "terminationGracePeriodSeconds": 40,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                    "volumes": [{"name": "home", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": opts.min_replicas,
            "maxReplicas": opts.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": opts.target_cpu_percent,
                        },
                    },
                }
            ],
        },
    }
    return [deployment, service, hpa]


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for JSON-like values (strings double-quoted, as JSON writes them)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for k, v in value.items():
            key = json.dumps(str(k))
            if isinstance(v, dict | list) and v:
                out.append(f"{pad}{key}:\n{to_yaml(v, indent + 2)}")
            else:
                out.append(f"{pad}{key}: {to_yaml(v).strip()}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = []
        for item in value:
            body = to_yaml(item, indent + 2)
            out.append(f"{pad}- {body[indent + 2 :]}")
        return "".join(out)
    return pad + json.dumps(value) + "\n"


def measure_memory(target: str, settings: Settings, trusted_types: list[str]) -> int:
    """Peak resident memory (bytes) of a fresh process that loads ``target``'s model."""
    code = (
        "import json, sys\n"
        "from opsloop.deployments._export import _load_and_report\n"
        "_load_and_report(sys.argv[1], json.loads(sys.argv[2]), sys.stdin.read())\n"
    )
    # The settings travel on stdin: they may hold keys that a command line would show.
    proc = subprocess.run(
        [sys.executable, "-c", code, target, json.dumps(trusted_types)],
        input=settings.model_dump_json(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("peak_rss_bytes=")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise InvalidArgument(
            f"could not load {target} to measure its memory ({' / '.join(tail)}); "
            "pass the memory request yourself (--memory MiB)"
        )
    return int(lines[-1].split("=", 1)[1])


def _linux_peak_rss() -> int | None:
    """VmHWM of /proc/self/status in bytes; None where there is no such file."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        return None
    return None


def _load_and_report(target: str, trusted_types: list[str], settings_json: str) -> None:
    """In the measuring child: load the model, then print the process's peak RSS."""
    import psutil

    settings = Settings.model_validate_json(settings_json)
    with _registry(settings) as registry:
        model = registry.load(target, trusted_types=trusted_types or None)
        del model
    hwm = _linux_peak_rss()
    if hwm is not None:
        # Linux carries ru_maxrss across exec: a child spawned (vfork) by a large process
        # reports the parent's peak. VmHWM is this address space's own high-water mark.
        peak = hwm
    elif sys.platform == "win32":  # no peak figure there: the current one is the best there is
        peak = psutil.Process().memory_info().rss
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes, Linux KiB
    print(f"peak_rss_bytes={peak}", flush=True)


@contextlib.contextmanager
def _registry(settings: Settings) -> Iterator[Registry]:
    context = Context(settings)
    try:
        # The registry client takes a client carrying the context (Tracking is one).
        yield Registry(cast(Any, context.room(Tracking)))
    finally:
        context.close()


def export_deployment(
    target: str,
    settings: Settings,
    out_dir: str | os.PathLike[str],
    fmt: Format,
    options: ExportOptions | None = None,
) -> list[Path]:
    """Write ``fmt``'s files for ``target`` (``models:/...`` or a registered name) into ``out_dir``."""
    opts = options or ExportOptions()
    opts.check()
    if fmt not in ("docker", "kubernetes"):
        raise InvalidArgument(f"unknown format {fmt!r}; use docker or kubernetes")
    if not target.startswith("models:/"):
        target = f"models:/{target}"
    parse_model_uri(target)  # a clear error for a malformed URI
    with _registry(settings) as registry:
        mv = registry.resolve(target)
    # The image serves the bundled folder, or follows the URI on a remote registry.
    served = MODEL_DIR if opts.tracking_uri is None else target
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidArgument(f"{out} exists and is not an empty folder; choose a new one")
    written: list[Path] = []
    if fmt == "docker":
        out.mkdir(parents=True, exist_ok=True)
        (out / "requirements.txt").write_text("\n".join(_requirements(mv)) + "\n")
        (out / "Dockerfile").write_text(_dockerfile(mv, served, opts))
        (out / ".dockerignore").write_text("*\n!requirements.txt\n!model/\n")
        written += [out / "Dockerfile", out / "requirements.txt", out / ".dockerignore"]
        if opts.tracking_uri is None:
            with _registry(settings) as registry:
                written.append(registry.download(mv.name, mv.version, out / "model"))
        return written
    memory_mib = opts.memory_mib
    if memory_mib is None:
        peak = measure_memory(mv.uri, settings, opts.trusted_types)
        memory_mib = math.ceil(peak * 1.25 / MIB)
    docs = kubernetes_manifests(mv, served, opts, memory_mib)
    header = (
        f"# opsloop serve {mv.uri}: Deployment, Service, HorizontalPodAutoscaler.\n"
        f"# Memory request: {memory_mib} MiB"
        + (
            " (measured peak of loading the model, plus a quarter)"
            if opts.memory_mib is None
            else ""
        )
        + ".\n# Build the image with `opsloop deployments export ... --format docker`.\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "kubernetes.yaml"
    path.write_text(header + "---\n".join(to_yaml(d) for d in docs))
    return [path]
