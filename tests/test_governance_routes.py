"""Every route of the real server has a permission rule, and the guard enforces it for every role.

The app is the one ``opsloop server`` runs (``create_app`` with auth on): REST,
OTLP (``/v1/traces``), Prometheus ``/metrics``, the MLflow-compatible API and
the UI. Its routes are enumerated from ``app.routes`` (not from a list kept by
hand), so a new route without a rule in ``opsloop/governance/_rules.py`` fails
here. The OpenAI-compatible endpoints are not routes of this app: they are
served by ``opsloop serve`` and ``opsloop gateway serve`` (their own keys).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from opsloop import Client
from opsloop.governance._guard import RouteTable, rule_for
from opsloop.governance._rules import rules
from opsloop.governance.entities import ROLES
from opsloop.server import create_app
from opsloop.settings import Settings


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    home = tmp_path_factory.mktemp("gov-routes")
    settings = Settings(home=home, auth=True)
    app = create_app(settings)
    with Client(settings=settings) as c:
        secrets = {r: c.governance.create_token(f"u-{r}", r).secret for r in ROLES}
    yield app, secrets


def _concrete(template: str) -> str:
    """A path the template matches: each parameter becomes ``x``."""
    return re.sub(r"\{[^}]+\}", "x", template) + ("/x" if template == "/ui/static" else "")


def test_every_route_of_the_real_app_has_a_rule(guarded: tuple[FastAPI, dict[str, str]]) -> None:
    app, _ = guarded
    pairs = RouteTable(app).pairs()
    templates = {t for _, t in pairs}
    # The walk sees every kind of route the server has, not just /api/v1.
    for t in ("/v1/traces", "/metrics", "/api/2.0/mlflow/{rest:path}", "/ui/static", "/ui"):
        assert t in templates, t
    assert len(pairs) > 200
    missing = [f"{m} {t}" for m, t in pairs if rule_for(m, t, "") is None]
    assert not missing, f"routes without a permission rule (add them to _rules.py): {missing}"
    stale = sorted(f"{m} {t}" for m, t in set(rules()) - set(pairs))
    assert not stale, f"rules naming no route: {stale}"


def test_each_role_is_refused_every_route_above_it(
    guarded: tuple[FastAPI, dict[str, str]],
) -> None:
    app, secrets = guarded
    table = RouteTable(app)
    refused = allowed = 0
    with TestClient(app) as tc:
        for method, template in table.pairs():
            path = _concrete(template)
            verb = "GET" if method == "*" else method
            assert table.match(verb, path) is not None
            level = rule_for(method, table.match(verb, path) or "", path)
            assert level is not None
            anonymous = tc.request(verb, path)
            if level == "public":
                assert anonymous.status_code not in (401, 403), (verb, path)
                continue
            assert anonymous.status_code == 401, (verb, path)
            if verb != "HEAD":  # a HEAD answer has no body
                assert anonymous.json()["error"]["code"] == "TOKEN_REQUIRED"
            for role in ROLES:
                if ROLES.index(role) >= ROLES.index(level):
                    allowed += 1
                    continue
                r = tc.request(verb, path, headers={"Authorization": f"Bearer {secrets[role]}"})
                assert r.status_code == 403, (role, verb, path, r.text)
                if verb != "HEAD":
                    assert r.json()["error"]["code"] == "PERMISSION_DENIED"
                refused += 1
    assert refused > 100 and allowed > 300  # reads for all, changes for editors up, admin routes


def test_a_route_without_a_rule_is_refused_to_everyone(
    guarded: tuple[FastAPI, dict[str, str]], tmp_path: Path
) -> None:
    app = create_app(Settings(home=tmp_path, auth=True))

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {"secret": "data"}

    with Client(home=tmp_path) as c:
        owner = c.governance.create_token("root", "owner").secret
    assert ("GET", "/api/v1/forgotten") in RouteTable(app).pairs()
    assert rule_for("GET", "/api/v1/forgotten", "") is None  # what the walk above would flag
    with TestClient(app) as tc:
        r = tc.get("/api/v1/forgotten", headers={"Authorization": f"Bearer {owner}"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "NO_PERMISSION_RULE"
    assert "secret" not in r.text


def test_mlflow_search_by_post_is_a_read_and_runs_get_the_token_user(
    guarded: tuple[FastAPI, dict[str, str]],
) -> None:
    app, secrets = guarded
    viewer = {"Authorization": f"Bearer {secrets['viewer']}"}
    editor = {"Authorization": f"Bearer {secrets['editor']}"}
    api = "/api/2.0/mlflow"
    with TestClient(app) as tc:
        r = tc.post(f"{api}/experiments/search", json={"max_results": 5}, headers=viewer)
        assert r.status_code == 200, r.text
        r = tc.post(f"{api}/experiments/create", json={"name": "x"}, headers=viewer)
        assert r.status_code == 403
        exp = tc.post(f"{api}/experiments/create", json={"name": "x"}, headers=editor).json()
        body = {"experiment_id": exp["experiment_id"], "user_id": "mallory"}
        body["tags"] = [{"key": "mlflow.user", "value": "mallory"}]
        run = tc.post(f"{api}/runs/create", json=body, headers=editor).json()["run"]
        assert run["info"]["user_id"] == "u-editor"


def test_guessing_tokens_is_throttled_per_address(tmp_path: Path) -> None:
    from opsloop.governance._guard import FAILED_SIGN_INS_PER_MINUTE

    app = create_app(Settings(home=tmp_path, auth=True))
    with Client(home=tmp_path) as c:
        good = c.governance.create_token("vera", "viewer").secret
    with TestClient(app) as tc:
        ok = {"Authorization": f"Bearer {good}"}
        assert tc.get("/api/v1/experiments", headers=ok).status_code == 200
        for i in range(FAILED_SIGN_INS_PER_MINUTE):
            bad = {"Authorization": f"Bearer ols_guess{i}"}
            assert tc.get("/api/v1/experiments", headers=bad).status_code == 401
        r = tc.get("/api/v1/experiments", headers=ok)  # even a good token waits now
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "SIGN_IN_RATE_LIMITED"
        assert 0 < r.json()["error"]["details"]["retry_after_s"] <= 61
        assert tc.get("/api/v1/health").status_code == 200  # public routes still answer


def test_the_guard_fails_closed_on_paths_no_route_matches(
    guarded: tuple[FastAPI, dict[str, str]],
) -> None:
    app, secrets = guarded
    owner = {"Authorization": f"Bearer {secrets['owner']}"}
    viewer = {"Authorization": f"Bearer {secrets['viewer']}"}
    with TestClient(app) as tc:
        r = tc.get("/api/v1/no-such-thing", headers=owner)
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = tc.delete("/api/v1/whoami", headers=owner)
        assert r.status_code == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert tc.get("/api/v1/no-such-thing").status_code == 401  # and nothing for strangers
    # Behind a proxy that mounts the server under a prefix, the rule still applies.
    with TestClient(app, root_path="/opsloop") as tc:
        r = tc.post("/opsloop/api/v1/experiments", json={"name": "x"}, headers=viewer)
        assert r.status_code == 403, r.text
        assert tc.get("/opsloop/api/v1/experiments", headers=viewer).status_code == 200


def test_auth_without_any_token_warns_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="opsloop.server"):
        create_app(Settings(home=tmp_path, auth=True))
    assert "no token is active" in caplog.text
