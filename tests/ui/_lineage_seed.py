"""Data for the datasets and registry UI tests, shared by both modules (one session fixture).

A dataset ``customers`` with two versions made from records (v2 breaks two rules and
is stored flagged; v1 is split into ``customers.train`` and ``customers.test``), a run ``train-lr`` that reads v2 and trains a scikit-learn
LogisticRegression registered as ``churn-lr`` v1 with the alias ``champion``, a run
``eval-lr`` that reads v2 too, and a second model ``card-scratch`` whose card a test
edits. Descriptions carry markup that must show as text.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsloop.settings import Settings
from tests.conftest import LiveServer, live_server
from tests.ui.conftest import _require_chromium

XSS_DESC = "Customers <img src=x onerror=window.__xss=4> & friends"
XSS_MODEL_DESC = "Churn model <img src=x onerror=window.__xss=5>"
MARKUP_NOTE = "<b>vip</b>"


def v1_records() -> list[dict[str, Any]]:
    rng = random.Random(7)
    notes = ["ok", "good customer", None, "late payer", MARKUP_NOTE]
    return [
        {
            "id": i,
            "age": rng.randint(18, 80),
            "income": round(rng.gauss(50_000, 12_000), 2),
            "country": rng.choice(["FR", "DE", "US", "US"]),
            "note": notes[i % 5] if i % 7 else None,
            "label": i % 2,
        }
        for i in range(200)
    ]


def v2_records() -> list[dict[str, Any]]:
    """v1 without ids 0-9 (10 removed), id 10 now aged 99 (1 changed), 5 new rows that
    break both rules (age above 120, country XX)."""
    rows = [dict(r) for r in v1_records()[10:]]
    rows[0]["age"] = 99  # id 10: the one changed row when matched by id
    rows += [
        {"id": 1000 + i, "age": 150 + i, "income": 1.5, "country": "XX", "note": "new", "label": 1}
        for i in range(5)
    ]
    return rows


@dataclass
class Lineage:
    server: LiveServer
    v1_id: str
    v2_id: str
    train_run: str
    eval_run: str
    experiment_id: str
    model_version_id: str

    @property
    def url(self) -> str:
        return self.server.url

    def ui(self, fragment: str) -> str:
        return f"{self.server.url}/ui/#{fragment}"


def seed_lineage(home: Path) -> dict[str, str]:
    from sklearn.linear_model import LogisticRegression

    from opsloop import Client
    from opsloop.datasets import Rule
    from opsloop.registry.flavors import save_sklearn

    c = Client(home=home)
    try:
        ds = c.datasets
        v1 = ds.create("customers", v1_records(), message="first load", description=XSS_DESC)
        v2 = ds.create(
            "customers",
            v2_records(),
            message="second load",
            rules=[Rule.range("age", min=0, max=120), Rule.allowed("country", ["FR", "DE", "US"])],
            on_error="flag",
        )
        assert (v1.status, v2.status) == ("valid", "flagged")
        ds.split("customers@1", {"train": 0.8, "test": 0.2}, seed=0)
        train = c.create_run(experiment_name="churn", name="train-lr", params={"C": 1.0})
        ds.log_input(train.id, "customers@2", context="train")
        recs = v2_records()
        model = LogisticRegression(max_iter=300).fit(
            [[r["age"], r["income"]] for r in recs], [r["label"] for r in recs]
        )
        folder = save_sklearn(
            model, home.parent / "lr-model", input_example=[{"age": 30, "income": 40_000.0}]
        )
        c.log_batch(train.id, metrics=[("accuracy", 0.61, 0, 1_700_000_000_000)])
        c.log_artifacts(train.id, folder, "model")
        c.set_terminated(train.id)
        mv = c.registry.register("churn-lr", f"runs:/{train.id}/model", description=XSS_MODEL_DESC)
        c.registry.set_alias("churn-lr", "champion", mv.version)
        c.registry.set_model_tag("churn-lr", "team", "growth")
        c.registry.register("card-scratch", folder, run_id=train.id)
        ev = c.create_run(experiment_name="churn", name="eval-lr")
        ds.log_input(ev.id, "customers@2", context="eval")
        c.set_terminated(ev.id)
        c.flush()
        return {
            "v1_id": v1.id,
            "v2_id": v2.id,
            "train_run": train.id,
            "eval_run": ev.id,
            "experiment_id": train.experiment_id,
            "model_version_id": mv.id,
        }
    finally:
        c.close()


# Both test modules import the fixture, which makes two session fixtures; they share
# one seeded home and one server through this cache, closed when the last one ends.
_shared: dict[str, Any] = {}


@pytest.fixture(scope="session", name="lineage")
def lineage_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lineage]:
    _require_chromium()
    if not _shared:
        home = tmp_path_factory.mktemp("ui-lineage") / "home"
        home.mkdir()
        ids = seed_lineage(home)
        stack = ExitStack()
        srv = stack.enter_context(live_server(Settings(home=home)))
        _shared.update(value=Lineage(srv, **ids), stack=stack, users=0)
    _shared["users"] += 1
    try:
        yield _shared["value"]
    finally:
        _shared["users"] -= 1
        if not _shared["users"]:
            _shared.pop("stack").close()
            _shared.clear()
