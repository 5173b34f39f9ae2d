"""Approvals: a protected alias moves only when a named reviewer approves a request.

Against a real server with auth on (uvicorn thread, real HTTP, SQLite and
PostgreSQL): roles come from real tokens, the promotion gate from real run
metrics, and the decision is checked in the registry, the approval and the
audit trail. Embedded, through the CLI, the same flow with users from
``OPSLOOP_USER``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from opsloop import Client
from opsloop.cli import app as cli
from opsloop.errors import PermissionDenied, PromotionRefused
from opsloop.governance import (
    AliasNotProtected,
    AliasProtected,
    ApprovalNotPending,
    ApprovalRequired,
    NotAReviewer,
)
from opsloop.settings import Settings
from tests.conftest import LiveServer, fresh_pg_database, live_server

DESCRIPTOR = {"flavor": "pyfunc", "metadata": {"python_model": "m:Model"}}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _two_versions(c: Client, tmp: Path, model: str = "churn") -> None:
    """``model`` v1 (acc 0.5) and v2 (acc 0.95), each from a run with that metric."""
    exp = c.create_experiment(f"{model}-train")
    folder = tmp / "model"
    folder.mkdir(exist_ok=True)
    (folder / "opsloop-model.json").write_text(json.dumps(DESCRIPTOR))
    for acc in (0.5, 0.95):
        run = c.create_run(exp.id)
        c.log_metrics(run.id, {"acc": acc})
        c.flush()
        c.log_artifacts(run.id, folder, "model")
        c.registry.register(model, f"runs:/{run.id}/model")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    with fresh_pg_database() if request.param == "postgres" else _nothing() as pg:
        settings = Settings(home=tmp_path / "server", database_url=pg, auth=True)
        with live_server(settings) as srv, Client(settings=settings) as local:
            gov = local.governance
            secrets = {
                who: gov.create_token(who, role).secret
                for who, role in (
                    ("root", "admin"), ("alice", "editor"), ("bob", "editor"),
                    ("vera", "editor"), ("val", "viewer"),
                )
            }  # fmt: skip
            yield srv, secrets


def test_a_protected_alias_moves_only_when_a_named_reviewer_approves(
    server: tuple[LiveServer, dict[str, str]], tmp_path: Path
) -> None:
    srv, secrets = server

    def client(who: str) -> Client:
        s = Settings(home=tmp_path / who, tracking_uri=srv.url, token=secrets[who])
        return Client(settings=s)

    with (
        client("root") as root, client("alice") as alice, client("bob") as bob,
        client("vera") as vera, client("val") as val,
    ):  # fmt: skip
        _two_versions(root, tmp_path)
        root.registry.set_alias("churn", "production", 1)
        root.evaluation.set_gate("churn", [{"metric": "acc", "min": 0.9}], aliases=["production"])
        with pytest.raises(PermissionDenied):  # protecting is for admins
            alice.governance.protect_alias("churn", "production", reviewers=["alice"])
        p = root.governance.protect_alias("churn", "production", reviewers=["vera"])
        assert p.reviewers == ["vera"] and p.updated_by == "root"

        # Moving or deleting it directly is refused, and changes nothing.
        with pytest.raises(ApprovalRequired) as held:
            alice.registry.set_alias("churn", "production", 2)
        assert held.value.details["reviewers"] == ["vera"]
        with pytest.raises(AliasProtected):
            alice.registry.delete_alias("churn", "production")
        assert alice.registry.get_version_by_alias("churn", "production").version == 1
        alice.registry.set_alias("churn", "staging", 2)  # other aliases move as before
        with pytest.raises(AliasNotProtected):
            alice.governance.request_approval("churn", "staging", 1)

        # A request carries the gate's result; a failing gate refuses it unless forced.
        with pytest.raises(PromotionRefused):
            alice.governance.request_approval("churn", "production", 1)
        with pytest.raises(PermissionDenied):
            val.governance.request_approval("churn", "production", 2)  # viewers only read
        asked = alice.governance.request_approval("churn", "production", 2, note="better acc")
        assert (asked.state, asked.gate, asked.gate_failures) == ("pending", "passed", [])
        assert (asked.requested_by, asked.from_version, asked.reviewers) == ("alice", 1, ["vera"])
        with pytest.raises(ApprovalNotPending):  # one pending request per alias
            bob.governance.request_approval("churn", "production", 2)
        assert val.governance.get_approval(asked.id).note == "better acc"  # reviewers see it

        # Only a named reviewer (or an admin or owner), never the requester, decides.
        with pytest.raises(NotAReviewer):
            alice.governance.approve(asked.id)
        with pytest.raises(NotAReviewer):
            bob.governance.approve(asked.id)
        assert alice.registry.get_version_by_alias("churn", "production").version == 1
        # The gate is checked again at approval: failing now, nothing moves and it stays pending.
        root.evaluation.set_gate("churn", [{"metric": "acc", "min": 0.99}], aliases=["production"])
        with pytest.raises(PromotionRefused):
            vera.governance.approve(asked.id)
        assert vera.governance.get_approval(asked.id).state == "pending"
        root.evaluation.set_gate("churn", [{"metric": "acc", "min": 0.9}], aliases=["production"])
        done = vera.governance.approve(asked.id, comment="looks good")
        assert (done.state, done.decided_by, done.comment) == ("approved", "vera", "looks good")
        assert alice.registry.get_version_by_alias("churn", "production").version == 2
        moved = next(e for e in root.registry.history("churn") if e.action == "alias_set")
        assert moved.detail["approval"] == asked.id and moved.actor == "vera"
        assert moved.detail["gate"] == "passed"
        with pytest.raises(ApprovalNotPending):
            vera.governance.approve(asked.id)

        # A forced request shows the reviewer the failed gate; an admin rejects it.
        forced = alice.governance.request_approval("churn", "production", 1, force=True)
        assert forced.gate == "failed" and forced.gate_failures[0]["metric"] == "acc"
        no = root.governance.reject(forced.id, comment="acc too low")
        assert (no.state, no.decided_by) == ("rejected", "root")
        assert alice.registry.get_version_by_alias("churn", "production").version == 2
        assert [a.id for a in val.governance.list_approvals(state="rejected")] == [forced.id]
        assert {a.id for a in val.governance.list_approvals(model="churn")} == {asked.id, forced.id}
        assert not val.governance.list_approvals(state="pending")

        # Every step is in the audit trail, with who and the token; the chain holds.
        steps = root.governance.audit(method="APPROVAL")
        assert [(e.route, e.actor) for e in reversed(steps)] == [
            ("approval.requested", "alice"),
            ("approval.approved", "vera"),
            ("approval.requested", "alice"),
            ("approval.rejected", "root"),
        ]
        approved = steps[2]
        assert approved.role == "editor" and approved.client == "127.0.0.1"
        assert approved.response["state"] == "approved" and approved.token_id
        assert root.governance.verify_audit().ok

        # Lifted, the alias moves directly again.
        r = httpx.get(
            f"{srv.url}/api/v1/approvals/protections",
            headers={"Authorization": f"Bearer {secrets['val']}"},
        )
        assert r.status_code == 200 and r.json()["protections"][0]["alias"] == "production"
        root.governance.unprotect_alias("churn", "production")
        assert alice.registry.set_alias("churn", "production", 2, force=True).version == 2


def test_approvals_cli_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with Client(settings=Settings(home=home, user="root")) as c:
        _two_versions(c, tmp_path)
        c.registry.set_alias("churn", "production", 1)
    runner = CliRunner()

    def as_(user: str, *args: str) -> str:
        monkeypatch.setenv("OPSLOOP_USER", user)
        res = runner.invoke(cli, ["approvals", *args, "--home", str(home)])
        assert res.exit_code == 0, res.output
        return res.output

    assert "reviewers: vera" in as_("root", "protect", "churn", "production", "--reviewer", "vera")
    monkeypatch.setenv("OPSLOOP_USER", "alice")
    res = runner.invoke(cli, ["models", "alias", "churn", "production", "2", "--home", str(home)])
    assert res.exit_code != 0 and "APPROVAL_REQUIRED" in res.output, res.output
    asked = json.loads(as_("alice", "request", "churn", "production", "2", "--json"))
    assert asked["state"] == "pending" and asked["gate"] == "none"
    assert "pending" in as_("vera", "list", "--state", "pending")
    monkeypatch.setenv("OPSLOOP_USER", "alice")
    res = runner.invoke(cli, ["approvals", "approve", asked["id"], "--home", str(home)])
    assert res.exit_code != 0 and "NOT_A_REVIEWER" in res.output  # alice asked: not her call
    assert "approved by vera" in as_("vera", "approve", asked["id"], "--comment", "ok")
    with Client(settings=Settings(home=home)) as c:
        assert c.registry.get_version_by_alias("churn", "production").version == 2
        entries = c.governance.audit(method="APPROVAL")
        assert [e.route for e in entries] == ["approval.approved", "approval.requested"]
        assert c.governance.verify_audit().ok
    # Tampering with the approval's audit entry is caught like any other.
    with sqlite3.connect(home / "opsloop.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE route = 'approval.approved'")
    with Client(settings=Settings(home=home)) as c:
        assert not c.governance.verify_audit().ok
