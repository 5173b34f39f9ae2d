"""Schemathesis fuzzes the authenticated API: every operation, as a viewer, an editor and an admin.

The server is the one ``opsloop server --auth`` runs (``create_app`` with auth on,
so the guard and the audit trail are in front of every route), on a home seeded
by ``tests/test_fuzz_openapi.seed`` (a dataset, a model, evaluations, traces, a
protected alias ...). Each role calls every operation of the OpenAPI document
with a few generated requests carrying its own token, and each answer is checked:

- no server error (schemathesis' ``not_a_server_error``), every 4xx in the one
  error shape;
- no unauthorised success: an answer in 2xx only when the role is at least the
  route's rule (``_rules.py``, looked up the way the guard does), and every
  refusal of a role below the rule is 403 ``PERMISSION_DENIED``.

Few examples per operation keep it to tens of seconds; the unauthenticated fuzz
(``test_fuzz_openapi.py``) goes deep, this one goes wide, through the guard.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from opsloop import Client
from opsloop.governance._guard import RouteTable, rule_for
from opsloop.governance._tokens import role_at_least
from opsloop.server import create_app
from opsloop.settings import Settings
from tests.test_fuzz_openapi import CrashRecorder, error_shape, seed

pytestmark = pytest.mark.slow

# Examples per operation: valid ones (each sent by each role), and invalid ones (by the
# admin, past the guard). Generating them is most of the cost (about 3/4 of the run).
POSITIVE_EXAMPLES, NEGATIVE_EXAMPLES = 2, 1
ROLES = ("viewer", "editor", "admin")


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, CrashRecorder, Any, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("fuzz-auth")
    settings = Settings(home=tmp / "home")
    switches = ("OPSLOOP_WORKFLOWS_DISPATCH", "OPSLOOP_MONITORING_SCHEDULER")
    saved = {k: os.environ.get(k) for k in switches}
    os.environ.update(dict.fromkeys(switches, "0"))
    seed(settings, create_app(settings), tmp)  # the world, made open on the same home
    guarded_settings = settings.model_copy(update={"auth": True})
    with Client(settings=settings) as c:
        secrets = {r: c.governance.create_token(f"fuzz-{r}", r).secret for r in ROLES}
    app = create_app(guarded_settings)
    server = CrashRecorder(app)
    config = schemathesis.Config.from_dict({"generation": {"mode": "all"}})
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", server, config=config)
    try:
        yield app, server, schema, secrets
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutdown_lifespans()


def test_every_operation_for_every_role_no_5xx_no_unauthorised_success(
    guarded: tuple[Any, CrashRecorder, Any, dict[str, str]],
) -> None:
    app, server, schema, secrets = guarded
    table = RouteTable(app)
    failures: dict[str, str] = {}
    calls: Counter[str] = Counter()
    allowed_ok: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    auths = {r: {"Authorization": f"Bearer {secrets[r]}"} for r in ROLES}
    refused: Counter[str] = Counter()

    def check(role: str, case: Any, response: Any) -> None:
        label, status = f"{role} {case.operation.label}", response.status_code
        calls[label] += 1
        crash = server.take()
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except FailureGroup as exc:
            failures.setdefault(f"{label} {status}", f"{label} -> {status}\n{exc}\n{crash}")
        if 400 <= status < 500 and case.method != "HEAD" and not label.endswith(" /v1/traces"):
            why = error_shape(response)
            if why:
                failures.setdefault(f"{label} shape", f"{label} -> {status}: {why}")
        path = case.formatted_path
        template = table.match(case.method.upper(), path)
        level = rule_for(case.method.upper(), template, path) if template else None
        may = level is not None and (level == "public" or role_at_least(role, level))
        if may and 200 <= status < 300:
            allowed_ok[role] += 1
        elif not may and level is not None:
            # Refused: 403 from the guard (or 404 when what was sent, once encoded, is a
            # path of no route: a "?" or "#" in a parameter cuts it short).
            if status < 400:
                failures.setdefault(
                    f"{label} unauthorised",
                    f"{label} -> {status} but the rule needs {level}: {case.as_curl_command()}",
                )
            refused[role] += status == 403

    for op in operations:
        for mode, roles, examples in (
            (GenerationMode.POSITIVE, ROLES, POSITIVE_EXAMPLES),
            (GenerationMode.NEGATIVE, ("admin",), NEGATIVE_EXAMPLES),  # bad input, past the guard
        ):

            @hypothesis.settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=op.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                # One request, sent by each role in turn, the least first (before any change).
                for role in roles:  # noqa: B023 - called at once, in this iteration
                    check(role, case, case.call(headers=auths[role]))

            try:
                call()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, op.label
    summary = f"{sum(calls.values())} calls over {len(operations)} operations x {len(ROLES)} roles"
    assert not failures, f"{len(failures)} failure(s) in {summary}\n\n" + "\n\n".join(
        failures.values()
    )
    every = {f"{r} {op.label}" for r in ROLES for op in operations}  # each role, each one
    assert not every - set(calls), f"never called: {sorted(every - set(calls))}"
    # The fuzz reached past the guard (each role succeeded on routes it may call) and the
    # guard refused the viewer and the editor on routes above them.
    assert all(allowed_ok[r] > 50 for r in ROLES), allowed_ok
    assert refused["viewer"] > 50 and refused["editor"] > 10, refused


def test_the_fuzzed_app_is_the_guarded_one(
    guarded: tuple[Any, CrashRecorder, Any, dict[str, str]],
) -> None:
    """Without a token every data route is refused: the fuzz above went through the guard."""
    from fastapi.testclient import TestClient

    app, _, _, _ = guarded
    r = TestClient(app).get("/api/v1/experiments")
    assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_REQUIRED"
