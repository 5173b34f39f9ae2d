"""Registry pages: the model list with alias chips, a model's versions, aliases, tags,
the model card (rendered, edited and saved), signature, files, history, the lineage
graph, and XSS safety."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui._lineage_seed import XSS_MODEL_DESC, Lineage, lineage_fixture  # noqa: F401 (the fixture "lineage")
from tests.ui.conftest import PageProbe

pytestmark = pytest.mark.ui


def test_models_list_shows_models_with_alias_chips(page: Any, lineage: Lineage) -> None:
    page.goto(lineage.ui("/models"))
    row = page.locator("[data-testid=model-row][data-name=churn-lr]")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[:4] == ["churn-lr", "model", "v1", "1"]
    chip = row.get_by_test_id("alias-chip")
    assert chip.count() == 1
    assert chip.get_attribute("data-alias") == "champion"
    assert chip.locator(".alias-v").inner_text() == "v1"
    assert chip.inner_text().startswith("@champion")
    assert chip.get_attribute("href") == "#/models/churn-lr?v=1"
    scratch = page.locator("[data-testid=model-row][data-name=card-scratch]")
    assert scratch.locator("td").nth(4).inner_text() == "—"  # no aliases
    assert page.locator(".nav-link.active").inner_text() == "Models"

    page.get_by_test_id("model-search").fill("champ")  # aliases are searchable
    assert page.locator("[data-testid=model-row]").count() == 1
    chip.click()
    page.get_by_test_id("model-version-title").wait_for()
    assert page.get_by_test_id("model-version-title").inner_text() == "churn-lr v1"


def test_model_page_shows_versions_aliases_tags_and_the_card(
    page: Any,
    lineage: Lineage,
    shots_dir: Path,
) -> None:
    page.goto(lineage.ui("/models/churn-lr"))
    card = page.get_by_test_id("model-card")
    card.wait_for()
    assert page.get_by_test_id("model-name").inner_text() == "churn-lr"
    rows = page.locator("[data-testid=model-version-row]")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[0] == "v1" and cells[1] == "sklearn" and cells[3] == "READY"
    assert cells[6] == "@champion" and cells[7] == XSS_MODEL_DESC
    run = rows.first.get_by_test_id("source-run")
    assert run.get_attribute("href") == f"#/runs/{lineage.train_run}"
    page.wait_for_function(
        "() => document.querySelector('[data-testid=source-run]').textContent === 'train-lr'"
    )
    aliases = page.get_by_test_id("aliases-table")
    assert aliases.locator("tbody tr").first.locator("td").all_inner_texts()[:2] == [
        "@champion",
        "v1",
    ]
    tags = page.get_by_test_id("model-tags")
    assert tags.locator("tr[data-key=team] td").nth(1).inner_text() == "growth"

    # The card: generated from lineage, rendered as headings, lists and tables.
    assert card.locator("h2").first.inner_text() == "churn-lr v1"
    heads = card.locator("h3").all_inner_texts()
    assert {"Model details", "Training data", "Training run", "Evaluation", "Signature"} <= set(
        heads
    )
    assert XSS_MODEL_DESC in card.inner_text()  # the description, as text
    data = card.locator("table").first
    assert data.locator("tbody td").first.inner_text() == "customers v2"
    assert card.locator("li code").first.inner_text() == "sklearn"
    assert "accuracy" in card.inner_text()
    assert page.get_by_test_id("card-origin").inner_text().startswith("Generated")
    page.screenshot(path=shots_dir / "model-card.png", full_page=True)


def test_editing_the_card_persists(
    page: Any,
    lineage: Lineage,
    shots_dir: Path,
) -> None:
    page.goto(lineage.ui("/models/card-scratch?v=1&tab=card"))
    page.get_by_test_id("card-edit").click()
    form = page.get_by_test_id("card-form")
    form.wait_for()
    intended = "Scoring churn risk for <b>retention</b> offers."
    page.get_by_test_id("card-field-intended_use").fill(intended)
    page.get_by_test_id("card-field-owners").fill("ana, bo")
    with page.expect_response(lambda r: r.url.endswith("/card") and r.request.method == "PUT"):
        page.get_by_test_id("card-save").click()
    card = page.get_by_test_id("model-card")
    card.wait_for()
    assert "Intended use" in card.locator("h3").all_inner_texts()
    assert intended in card.inner_text()
    assert "Owners: ana, bo" in card.inner_text()
    assert card.locator("b").count() == 0

    # A whole custom text replaces the generated card.
    page.get_by_test_id("card-edit").click()
    page.get_by_test_id("card-custom").check()
    text = "# Hand-written card\n\nWritten **by hand** for `v1`.\n\n- first\n- second\n\n```\nx <i>y</i>\n```\n"
    page.get_by_test_id("card-markdown").fill(text)
    page.get_by_test_id("card-save").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=model-card] h2')?.textContent === "
        "'Hand-written card'"
    )

    def check_custom() -> None:
        card = page.get_by_test_id("model-card")
        assert card.locator("h2").inner_text() == "Hand-written card"
        assert card.locator("strong").inner_text() == "by hand"
        assert card.locator("li").all_inner_texts() == ["first", "second"]
        assert card.locator("pre code").inner_text() == "x <i>y</i>"
        assert card.locator("i").count() == 0
        assert page.get_by_test_id("card-origin").inner_text().startswith("Custom text")

    check_custom()
    page.screenshot(path=shots_dir / "model-card-custom.png", full_page=True)
    page.reload()
    page.get_by_test_id("model-card").wait_for()
    check_custom()

    got = httpx.get(f"{lineage.url}/api/v1/registry/models/card-scratch/versions/1/card").json()
    assert got["markdown"] == text and got["custom_markdown"] is True
    assert got["fields"]["intended_use"] == intended and got["fields"]["owners"] == ["ana", "bo"]

    # The edits are in the version's history, with who and when.
    page.get_by_test_id("vtab-history").click()
    page.get_by_test_id("history-table").wait_for()
    edits = page.locator("[data-testid=history-event][data-action=card_edited]")
    assert edits.count() == 2
    assert edits.first.locator("td").nth(1).inner_text() not in ("", "—")

    # Back to the generated card, keeping the fields.
    page.get_by_test_id("vtab-card").click()
    page.get_by_test_id("card-edit").click()
    page.get_by_test_id("card-custom").uncheck()
    page.get_by_test_id("card-save").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=model-card] h2')?.textContent === "
        "'card-scratch v1'"
    )
    assert intended in page.get_by_test_id("model-card").inner_text()


def test_signature_files_and_history(page: Any, lineage: Lineage) -> None:
    page.goto(lineage.ui("/models/churn-lr?v=1&tab=signature"))
    inputs = page.get_by_test_id("signature-inputs")
    inputs.wait_for()
    assert inputs.locator("tbody tr td:first-child").all_inner_texts() == ["age", "income"]
    assert inputs.locator("tbody tr td:nth-child(2)").all_inner_texts() == ["long", "double"]
    outputs = page.get_by_test_id("signature-outputs")
    assert outputs.locator("tbody tr td:first-child").all_inner_texts() == ["prediction"]
    meta = page.get_by_test_id("model-metadata").inner_text()
    assert "LogisticRegression" in meta

    page.get_by_test_id("vtab-files").click()
    files = page.get_by_test_id("files-table")
    files.wait_for()
    paths = files.locator("[data-testid=file-row]").evaluate_all(
        "els => els.map(e => e.dataset.path)"
    )
    assert paths == ["model.skops", "opsloop-model.json"]
    href = files.locator("[data-path='opsloop-model.json'] a").get_attribute("href")
    assert href == "/api/v1/registry/models/churn-lr/versions/1/files/opsloop-model.json"
    body = httpx.get(lineage.url + href).json()
    assert body["flavor"] == "sklearn"

    page.get_by_test_id("vtab-history").click()
    page.get_by_test_id("history-table").wait_for()
    actions = page.locator("[data-testid=history-event]").evaluate_all(
        "els => els.map(e => e.dataset.action)"
    )
    assert actions == ["alias_set", "version_created"]
    page.get_by_test_id("history-model").click()
    page.wait_for_selector("[data-testid=history-event][data-action=model_created]")
    actions = page.locator("[data-testid=history-event]").evaluate_all(
        "els => els.map(e => e.dataset.action)"
    )
    assert actions[-1] == "model_created" and "model_tag_set" in actions
    assert "tab=history" in page.evaluate("location.hash")


def test_lineage_graph_links_data_run_and_model(
    page: Any,
    lineage: Lineage,
    shots_dir: Path,
) -> None:
    page.goto(lineage.ui("/models/churn-lr?v=1&tab=lineage"))
    graph = page.get_by_test_id("lineage-graph")
    graph.wait_for()
    nodes = {
        n["id"]: n
        for n in graph.locator("[data-testid=lineage-node]").evaluate_all(
            "els => els.map(e => ({id: e.dataset.id, kind: e.dataset.kind,"
            " text: e.textContent, current: e.classList.contains('current')}))"
        )
    }
    ds = f"dataset:{lineage.v2_id}"
    run = f"run:{lineage.train_run}"
    me = f"model:{lineage.model_version_id}"
    assert nodes[ds]["kind"] == "dataset" and "customers v2" in nodes[ds]["text"]
    assert nodes[run]["kind"] == "run" and "train-lr" in nodes[run]["text"]
    assert nodes[me]["kind"] == "model" and nodes[me]["current"]
    assert "@champion" in nodes[me]["text"]
    # Around it: the other run that read the data, and the other version from the same run.
    assert f"run:{lineage.eval_run}" in nodes
    assert any(n["kind"] == "model" and "card-scratch v1" in n["text"] for n in nodes.values())
    edges = graph.locator("[data-testid=lineage-edge]").evaluate_all(
        "els => els.map(e => [e.dataset.from, e.dataset.to])"
    )
    assert [ds, run] in edges and [run, me] in edges
    # Boxes are laid out left to right: data, then run, then model.
    xs = {
        k: graph.locator(f"[data-id='{k}']").evaluate("e => e.getBoundingClientRect().x")
        for k in (ds, run, me)
    }
    assert xs[ds] < xs[run] < xs[me]
    page.screenshot(path=shots_dir / "model-lineage.png", full_page=True)

    # Nodes are links.
    graph.locator(f"[data-id='{run}']").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=run-name]')?.textContent === 'train-lr'"
    )
    page.go_back()
    page.get_by_test_id("lineage-graph").locator(f"[data-id='{ds}']").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=dataset-name]')?.textContent === 'customers'"
    )
    page.wait_for_selector("[data-testid=version-title]")
    assert page.get_by_test_id("version-title").inner_text() == "Version 2"


def test_markup_in_model_descriptions_is_text(
    probe: PageProbe,
    lineage: Lineage,
) -> None:
    page = probe.page
    page.goto(lineage.ui("/models/churn-lr?v=1&tab=card"))
    page.get_by_test_id("model-card").wait_for()
    assert page.get_by_test_id("version-description").inner_text() == XSS_MODEL_DESC
    assert page.locator("main img, main script").count() == 0
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__xss") is None
    assert probe.dialogs == []


def test_unknown_model_shows_a_readable_error(page: Any, lineage: Lineage) -> None:
    page.goto(lineage.ui("/models/nope"))
    page.locator(".error-box").wait_for()
    assert "NOT_FOUND" in page.locator(".error-box").inner_text()
