"""docs/api.md covers every route: its reference half is generated from the OpenAPI document."""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gen_api_docs.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_docs", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def openapi(gen: ModuleType) -> dict[str, Any]:
    spec: dict[str, Any] = gen.openapi_spec()
    return spec


def test_docs_api_md_is_current(gen: ModuleType, openapi: dict[str, Any]) -> None:
    current = gen.DOC.read_text(encoding="utf-8")
    assert gen.MARKER in current, f"docs/api.md lost its marker line; run: {gen.COMMAND}"
    wanted = gen.render(current, openapi)
    if current != wanted:
        diff = difflib.unified_diff(
            current.splitlines(), wanted.splitlines(), "docs/api.md", "generated", lineterm="", n=1
        )
        shown = "\n".join(list(diff)[:40])
        pytest.fail(f"docs/api.md is stale; refresh it with: {gen.COMMAND}\n{shown}")


def test_every_route_is_documented_with_a_summary(gen: ModuleType, openapi: dict[str, Any]) -> None:
    assert not gen.missing_summaries(openapi), "add summary= to these routes' decorators"
    doc = gen.DOC.read_text(encoding="utf-8")
    for path, item in openapi["paths"].items():
        for method in item:
            assert f"#### `{method.upper()} {path}`" in doc, (method, path)


def test_a_route_without_a_summary_is_caught(gen: ModuleType) -> None:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    def get_thing(thing_id: str) -> None: ...

    @app.post("/things", summary="Create a thing")
    def create_thing() -> None: ...

    assert gen.missing_summaries(app.openapi()) == ["GET /things/{thing_id}"]


def test_the_hand_written_introduction_is_kept(gen: ModuleType, openapi: dict[str, Any]) -> None:
    intro = "# REST API\n\nHand-written: auth, errors, pagination.\n"
    once = gen.render(intro, openapi)
    assert once.startswith(intro) and gen.MARKER in once
    assert gen.render(once, openapi) == once  # the generated half is replaced, not appended
