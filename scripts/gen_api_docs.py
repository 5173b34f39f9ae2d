"""Regenerate the route reference in docs/api.md from the server's OpenAPI document.

    .venv/bin/python scripts/gen_api_docs.py           # rewrite docs/api.md
    .venv/bin/python scripts/gen_api_docs.py --check   # exit 1 when it is stale

docs/api.md is two parts. Everything above the ``GENERATED`` marker line is
hand-written (auth, the error shape, pagination, limits) and kept as it is;
everything below it is rebuilt here from ``create_app(settings).openapi()``:
the error codes (from the classes registered in ``opsloop.errors``), then one
section per tag (room) with, for each route, its method, path, summary,
parameters, request body and responses. To change the reference, change the
routes (their ``summary=``, parameters and body models) and rerun this.
``tests/test_api_docs.py`` fails when the page and the routes disagree.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
COMMAND = ".venv/bin/python scripts/gen_api_docs.py"
MARKER = (
    "<!-- GENERATED: everything below is written by scripts/gen_api_docs.py "
    "from the OpenAPI document; edit the routes and rerun it, not this page. -->"
)
_METHODS = ("get", "head", "options", "post", "put", "patch", "delete", "trace")


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document of a server on a throwaway home."""
    from opsloop.server import create_app
    from opsloop.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        # Explicit URLs, so OPSLOOP_* variables in the environment change nothing here.
        home = Path(tmp)
        db, artifacts = f"sqlite:///{home / 'opsloop.db'}", str(home / "artifacts")
        app = create_app(Settings(home=home, database_url=db, artifact_uri=artifacts))
        spec: dict[str, Any] = app.openapi()
        app.state.opsloop.close()
    return spec


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) in the server's route order, methods in a fixed order."""
    return [
        (method, path, item[method])
        for path, item in spec["paths"].items()
        for method in _METHODS
        if method in item
    ]


def missing_summaries(spec: dict[str, Any]) -> list[str]:
    """Routes whose summary is FastAPI's default (the function name, title-cased)."""
    out = []
    for method, path, op in _operations(spec):
        suffix = re.sub(r"\W", "_", path) + "_" + method
        op_id = str(op.get("operationId", ""))
        name = op_id[: -len(suffix)] if op_id.endswith(suffix) else op_id
        summary = op.get("summary")
        if not summary or summary == name.replace("_", " ").title():
            out.append(f"{method.upper()} {path}")
    return out


# ------------------------------------------------------------------------ JSON Schema types


def _ref_name(ref: str) -> str:
    # Pydantic qualifies clashing names (opsloop__registry__api__CreateVersion); show the class.
    return ref.rsplit("/", 1)[-1].rsplit("__", 1)[-1]


def type_of(schema: dict[str, Any]) -> str:
    """A short readable type: ``string``, ``integer | null``, ``array of Run``, ``Dataset``."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            parts = [type_of(s) for s in schema[key]]
            return " | ".join(dict.fromkeys(parts))
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        if "prefixItems" in schema:
            return "[" + ", ".join(type_of(s) for s in schema["prefixItems"]) + "]"
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"object of {type_of(extra)}"
        return "object"
    if kind == "string" and schema.get("format") == "binary":
        return "bytes"
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    return str(kind) if kind else "any"


def _default(schema: dict[str, Any]) -> str:
    return f", default `{json.dumps(schema['default'])}`" if "default" in schema else ""


def _limits(schema: dict[str, Any]) -> str:
    """Bounds worth knowing: numeric ranges, string lengths and patterns."""
    for option in schema.get("anyOf", []):  # an optional value: the bounds of its non-null type
        if option.get("type") != "null":
            schema = {**option, **schema}
    out = []
    if "minimum" in schema or "maximum" in schema:
        lo, hi = schema.get("minimum", ""), schema.get("maximum", "")
        out.append(
            f"{lo}..{hi}" if lo != "" and hi != "" else (f">= {lo}" if hi == "" else f"<= {hi}")
        )
    if "exclusiveMinimum" in schema:
        out.append(f"> {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema:
        out.append(f"< {schema['exclusiveMaximum']}")
    if "maxLength" in schema:
        out.append(f"at most {schema['maxLength']} characters")
    if "pattern" in schema:
        out.append(f"matching `{schema['pattern']}`")
    return "".join(f", {x}" for x in out)


def _cell(text: str) -> str:
    """One table cell or line of Markdown: one line, pipes escaped, RST ``code`` as `code`."""
    return " ".join(text.split()).replace("``", "`").replace("|", "\\|")


# ------------------------------------------------------------------------------ rendering


def _parameters(op: dict[str, Any]) -> list[str]:
    params = op.get("parameters", [])
    if not params:
        return []
    lines = ["", "| parameter | in | type | |", "|---|---|---|---|"]
    for p in params:
        schema = p.get("schema", {})
        note = ("required" if p.get("required") else "optional" + _default(schema)) + _limits(
            schema
        )
        desc = p.get("description") or schema.get("description") or ""
        if desc:
            note += f"; {desc}"
        lines.append(f"| `{p['name']}` | {p['in']} | `{_cell(type_of(schema))}` | {_cell(note)} |")
    return lines


def _body(op: dict[str, Any], schemas: dict[str, Any]) -> list[str]:
    body = op.get("requestBody")
    if not body:
        return []
    lines = [""]
    for media, content in body.get("content", {}).items():
        schema = content.get("schema", {})
        optional = "" if body.get("required") else ", optional"
        lines.append(f"Body (`{media}`{optional}): `{_cell(type_of(schema))}`")
        model = _model(schema, schemas)
        if model is not None:
            required = set(model.get("required", []))
            fields = []
            for field, fs in model.get("properties", {}).items():
                flag = " required" if field in required else ""
                fields.append(f"`{field}` `{_cell(type_of(fs))}`{flag}")
            if fields:
                lines[-1] += ": " + ", ".join(fields)
    return lines


def _model(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema a body is (through a ``$ref`` or an optional ``$ref``)."""
    if "$ref" in schema:
        found: dict[str, Any] = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return found if found.get("type") == "object" else None
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return _model(options[0], schemas)
    return schema if schema.get("type") == "object" and schema.get("properties") else None


def _responses(op: dict[str, Any]) -> list[str]:
    ok, errors = [], []
    for status, resp in sorted(op.get("responses", {}).items()):
        if status == "422":
            # FastAPI documents its own validation error; the server answers it as this.
            errors.append("`400 INVALID_ARGUMENT` when the request fails validation")
        elif status.startswith(("4", "5")):
            errors.append(f"`{status}` {_cell(resp.get('description', ''))}")
        else:
            schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
            shown = type_of(schema) if ("$ref" in schema or "items" in schema) else ""
            ok.append(f"`{status}`" + (f" `{_cell(shown)}`" if shown else ""))
    line = "Responses: " + ", ".join(ok)
    if errors:
        line += "; errors: " + ", ".join(errors)
    return ["", line]


def _error_codes() -> list[str]:
    from opsloop import errors

    for code in errors._DEFINED_ELSEWHERE:  # so the classes living elsewhere are registered
        errors._class_for(code)
    rows = sorted(errors._BY_CODE.values(), key=lambda c: (c.http_status, c.code))
    lines = [
        "## Error codes",
        "",
        "Every code the API answers with, the HTTP status it comes with and the exception",
        "class both clients raise for it (from `opsloop.errors`).",
        "",
        "| code | HTTP | exception | meaning |",
        "|---|---|---|---|",
    ]
    for cls in rows:
        doc = (cls.__doc__ or "").strip().split("\n\n", 1)[0]
        if cls is errors.OpsloopError:  # its docstring describes the base class
            doc = (
                "An unexpected failure (a bug); the traceback is in the server log, not the answer."
            )
        where = cls.__module__.split("._", 1)[0]
        lines.append(
            f"| `{cls.code}` | {cls.http_status} | `{where}.{cls.__name__}` | {_cell(doc)} |"
        )
    return lines


def render_reference(spec: dict[str, Any]) -> str:
    """The generated half of docs/api.md (everything after the marker)."""
    schemas = spec.get("components", {}).get("schemas", {})
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for method, path, op in _operations(spec):
        by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    out = [MARKER, "", *_error_codes(), "", "## Routes", ""]
    out += [
        "Every route of the REST API, one section per room (OpenAPI tag). Paths are",
        "absolute; `{name}` segments are path parameters.",
        "",
        "| room | routes |",
        "|---|---|",
    ]
    out += [f"| [{tag}](#{tag}) | {len(ops)} |" for tag, ops in by_tag.items()]
    for tag, ops in by_tag.items():
        out += ["", f"### {tag}", "", "| method and path | summary |", "|---|---|"]
        out += [f"| `{m.upper()} {p}` | {_cell(str(op.get('summary', '')))} |" for m, p, op in ops]
        for method, path, op in ops:
            out += ["", f"#### `{method.upper()} {path}`", "", _cell(str(op.get("summary", "")))]
            if op.get("description"):
                out += ["", str(op["description"]).strip()]
            out += _parameters(op)
            out += _body(op, schemas)
            out += _responses(op)
    return "\n".join(out) + "\n"


def render(current: str, spec: dict[str, Any]) -> str:
    """docs/api.md as it should be: its hand-written introduction, then the reference."""
    intro = current.split(MARKER, 1)[0].rstrip("\n")
    return f"{intro}\n\n{render_reference(spec)}"


def main(argv: list[str]) -> int:
    spec = openapi_spec()
    missing = missing_summaries(spec)
    if missing:
        print("routes without a summary= (add one to the decorator):", *missing, sep="\n  ")
        return 1
    current = DOC.read_text(encoding="utf-8")
    wanted = render(current, spec)
    if "--check" in argv:
        if current != wanted:
            print(f"docs/api.md is stale; refresh it with: {COMMAND}")
            return 1
        return 0
    if current != wanted:
        DOC.write_text(wanted, encoding="utf-8")
        print("rewrote", DOC.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
