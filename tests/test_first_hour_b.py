"""Issue 18, "the first hour of a new user": endpoint specs, trust options, pipeline
versions, user modules, and CLI failures without tracebacks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from opsloop.errors import InvalidArgument
from opsloop.llm import SecretStore, get_provider
from opsloop.settings import Settings
from tests.test_llm_http import FRANCE, Reply, Upstream
from tests.test_s3_artifacts import BUCKET as S3_BUCKET
from tests.test_s3_artifacts import s3_endpoint  # noqa: F401 (a fixture: a moto S3 server)

TREE = ["sklearn.tree._tree.Tree"]

# ---------------------------------------------------------------- openai:MODEL@URL


@pytest.fixture
def default_host(monkeypatch: pytest.MonkeyPatch) -> Upstream:
    """OpenAI's public endpoint replaced by a local server that counts what reaches it."""
    with Upstream(Reply()) as up:
        monkeypatch.setattr("opsloop.llm._factory.DEFAULT_BASE_URL", up.url)
        yield up


def test_openai_spec_url_is_where_the_prompt_goes(home: Path, default_host: Upstream) -> None:
    settings = Settings(home=home)
    with Upstream(Reply()) as named:
        p = get_provider(f"openai:qwen@{named.url}", settings=settings, api_key="k")
        assert p.chat(FRANCE, max_tokens=4).text == "hi"
        assert [r["path"] for r in named.requests] == ["/v1/chat/completions"]
        assert named.requests[0]["body"]["model"] == "qwen"
        # The spec's URL wins over a configured one; no request leaves for another host.
        other = settings.model_copy(update={"llm_base_url": default_host.url})
        get_provider(f"openai:qwen@{named.url}/", settings=other).chat(FRANCE, max_tokens=4)
        assert len(named.requests) == 2
    assert default_host.requests == []


def test_openai_without_url_uses_settings_then_secret_then_default(
    home: Path, default_host: Upstream
) -> None:
    with Upstream(Reply()) as configured, Upstream(Reply()) as stored:
        settings = Settings(home=home, llm_base_url=configured.url)
        get_provider("openai:m", settings=settings).chat(FRANCE, max_tokens=2)
        SecretStore(home).set("llm_base_url", stored.url)
        get_provider("openai:m", settings=Settings(home=home)).chat(FRANCE, max_tokens=2)
        assert (len(configured.requests), len(stored.requests)) == (1, 1)
        assert default_host.requests == []
    SecretStore(home).delete("llm_base_url")
    get_provider("openai:m", settings=Settings(home=home)).chat(FRANCE, max_tokens=2)
    assert len(default_host.requests) == 1  # named by nobody else: the public default


def test_openai_spec_url_conflicts_and_bad_specs_are_refused(home: Path) -> None:
    s = Settings(home=home)
    with pytest.raises(InvalidArgument, match="give one"):
        get_provider("openai:m@http://127.0.0.1:9/v1", base_url="http://127.0.0.1:8/v1", settings=s)
    with pytest.raises(InvalidArgument, match="names no model"):
        get_provider("openai:@http://127.0.0.1:9/v1", settings=s)


# ---------------------------------------------------------------- trusting a tree model


def test_a_tree_model_evaluates_with_trust_in_python_and_on_the_command_line(
    client: Any, home: Path, tmp_path: Path
) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier
    from typer.testing import CliRunner

    from opsloop.cli._app import app
    from opsloop.errors import PermissionDenied
    from opsloop.evaluation import evaluate
    from opsloop.registry.flavors import save_sklearn

    x, y = load_iris(return_X_y=True)
    cols = ["sl", "sw", "pl", "pw"]
    rows = [
        dict(zip(cols, map(float, r), strict=True)) | {"label": int(t)}
        for r, t in zip(x, y, strict=True)
    ]
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x[::2], y[::2])
    client.registry.register("tree", save_sklearn(model, tmp_path / "m"))
    client.datasets.create("iris", rows[1::2])
    with pytest.raises(PermissionDenied) as info:
        evaluate("models:/tree/1", "iris@1", metrics=["accuracy"], target_column="label",
                 client=client, n_bootstrap=20)  # fmt: skip
    assert "pass trusted_types=['sklearn.tree._tree.Tree']" in info.value.message
    res = evaluate("models:/tree/1", "iris@1", metrics=["accuracy"], target_column="label",
                   client=client, n_bootstrap=20, trusted_types=TREE)  # fmt: skip
    want = (model.predict(x[1::2]) == y[1::2]).mean()
    assert res.metrics["accuracy"] == pytest.approx(want)
    client.flush()

    base = ["eval", "run", "--candidate", "models:/tree/1", "--dataset", "iris@1",
            "--metric", "accuracy", "--target", "label", "--n-bootstrap", "20", "--home", str(home)]  # fmt: skip
    refused = CliRunner().invoke(app, base)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "add --trust sklearn.tree._tree.Tree" in refused.output
    assert "trusted_types" not in refused.output  # the CLI speaks of its own option
    ok = CliRunner().invoke(app, [*base, "--trust", TREE[0], "--json"])
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout[ok.stdout.index("{") :])
    assert body["metrics"]["accuracy"] == pytest.approx(want)


# ---------------------------------------------------------------- pipelines


QA_YAML = """\
name: loud-search
inputs: [question]
outputs: {title: loud}
tools:
  - {name: search, type: local_search, path: ./corpus, k: 1}
steps:
  - {name: hits, type: tool, tool: search, args: {query: "{{ question }}"}}
  - {name: loud, type: python, function: "mysteps_fhb:shout", args: {text: "{{ hits.0.title }}"}}
"""


@pytest.fixture
def qa_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's folder: a pipeline spec, the corpus it searches and the module of its step;
    the test process's ``sys.path`` is restored afterwards."""
    d = tmp_path / "work"
    (d / "corpus").mkdir(parents=True)
    (d / "corpus" / "warranty.md").write_text("# Warranty\n\nTwo years on the heating element.\n")
    (d / "corpus" / "shipping.md").write_text("# Shipping\n\nOrders ship within three days.\n")
    (d / "mysteps_fhb.py").write_text("def shout(text):\n    return text.upper()\n")
    (d / "qa.yaml").write_text(QA_YAML)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(d))])
    monkeypatch.delitem(sys.modules, "mysteps_fhb", raising=False)
    monkeypatch.chdir(d)
    return d


def test_pipelines_commands_import_step_modules_from_the_current_folder(
    qa_folder: Path, home: Path
) -> None:
    from typer.testing import CliRunner

    from opsloop.cli._app import app

    ok = CliRunner().invoke(app, ["pipelines", "validate", "qa.yaml", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["steps"][1] == {"name": "loud", "type": "python"}
    ran = CliRunner().invoke(
        app, ["--home", str(home), "pipelines", "run", "qa.yaml", "--input", "question=warranty",
              "--json"],
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout[ran.stdout.index("{") :])["outputs"] == {"title": "WARRANTY"}


def test_a_pipeline_registered_from_its_yaml_is_self_contained(
    qa_folder: Path, client: Any, home: Path
) -> None:
    import shutil

    from opsloop.registry import Registry, load_model

    sys.path.insert(0, str(qa_folder))  # the step's module, as the user's program has it
    mv = Registry(client).register("qa", qa_folder / "qa.yaml", flavor="pipeline")
    assert "corpus/search/warranty.md" in mv.files and "pipeline.yaml" in mv.files
    shutil.rmtree(qa_folder / "corpus")  # what the version reads must be inside it
    m = load_model("models:/qa/1", client=client, cache_dir=home / "cache")
    assert m.predict([{"question": "shipping"}]) == [{"title": "SHIPPING"}]


# ---------------------------------------------------------------- opsloop doctor


def _doctor(home: Path, *args: str, **env: str) -> Any:
    from typer.testing import CliRunner

    from opsloop.cli._app import app

    return CliRunner().invoke(app, ["doctor", "--home", str(home), *args], env=env)


def test_doctor_healthy_home_with_its_schema_and_redis(client: Any, home: Path) -> None:
    client.create_experiment("touch")  # the home's database now exists, at the head schema
    client.flush()
    r = _doctor(home, "--json", "--redis-url", "redis://127.0.0.1:6379", OPSLOOP_DATABASE_URL="")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    by_name = {c["name"]: c for c in body["checks"]}
    assert body["ok"] is True
    assert by_name["home"]["status"] == "ok" and by_name["database"]["status"] == "ok"
    assert "(head)" in by_name["database"]["detail"]
    assert by_name["redis"]["status"] == "ok"
    assert by_name["model local:smollm2"]["status"] == "ok"
    assert {c["status"] for c in body["checks"]} <= {"ok", "missing"}
    text = _doctor(home)
    assert text.exit_code == 0 and "everything configured works" in text.output


def test_doctor_names_an_unreachable_postgresql_and_redis_and_exits_1(home: Path) -> None:
    r = _doctor(
        home,
        "--redis-url",
        "redis://127.0.0.1:1",
        OPSLOOP_DATABASE_URL="postgresql+psycopg://me:secret@127.0.0.1:1/opsloop",
        COLUMNS="200",
    )
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "secret" not in r.output
    lines = r.output.splitlines()
    pg = next(ln for ln in lines if "postgresql" in ln and "FAIL" in ln)
    assert "cannot connect to postgresql+psycopg://me:***@127.0.0.1:1/opsloop" in pg
    assert "fix: start the database or fix OPSLOOP_DATABASE_URL" in r.output
    assert any("FAIL" in ln and "redis" in ln and "127.0.0.1:1" in ln for ln in lines)
    assert "2 problem(s)" in r.output


def test_doctor_says_which_command_upgrades_an_old_schema(home: Path, tmp_path: Path) -> None:
    from opsloop.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    r = _doctor(home, "--json", OPSLOOP_DATABASE_URL=url)
    assert r.exit_code == 1
    db = next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "database")
    assert db["status"] == "FAIL" and db["fix"] == "opsloop db upgrade"
    assert "is older than" in db["detail"]


# ---------------------------------------------------------------- failures without tracebacks


def _failing_invocations(home: Path, work: Path) -> list[list[str]]:
    (work / "bad.yaml").write_text("steps: [\n")
    (work / "nostep.yaml").write_text(QA_YAML.replace("mysteps_fhb:shout", "no_such_mod:f"))
    (work / "space.yaml").write_text("x: {type: float, low: 0, high: 1}\n")
    h = ["--home", str(home)]
    dead_pg = "postgresql+psycopg://me@127.0.0.1:1/opsloop"
    return [
        [*h, "runs", "show", "no-such-run"],
        [*h, "experiments", "delete", "no-such-experiment"],
        [*h, "models", "show", "no-such-model"],
        [*h, "models", "register", "m", "--from", str(work / "missing-folder")],
        [*h, "datasets", "show", "nope@1"],
        [*h, "datasets", "create", "d", str(work / "missing.csv")],
        [*h, "prompts", "show", "nope"],
        [*h, "index", "info", "nope"],
        [*h, "traces", "show", "nope"],
        [*h, "secrets", "delete", "nope"],
        [*h, "serve", "local:nope"],
        [*h, "serve", "openai:gpt-4o-mini"],
        [*h, "serve", str(work / "missing-folder")],
        [*h, "bench", "run", "--model", "local:smollm2", "--tasks", "nope"],
        [
            *h,
            "bench",
            "run",
            "--model",
            "local:smollm2",
            "--tasks",
            "piqa",
            "--data-dir",
            str(work),
        ],
        [
            *h,
            "eval",
            "run",
            "--candidate",
            "nowhere",
            "--dataset",
            "qa@1",
            "--metric",
            "exact_match",
        ],
        [*h, "pipelines", "validate", str(work / "missing.yaml")],
        [*h, "pipelines", "validate", str(work / "bad.yaml")],
        [*h, "pipelines", "run", str(work / "nostep.yaml"), "--input", "question=x"],
        [*h, "tune", "run", str(work / "space.yaml"), "-o", "no_such_module:objective", "-n", "1"],
        [*h, "llm", "chat", "-m", "openai:m@http://127.0.0.1:1/v1", "hi"],
        [*h, "llm", "chat", "-m", "openai:@http://127.0.0.1:1/v1", "hi"],
        ["--tracking-uri", "http://127.0.0.1:1", "runs", "list"],
        ["--tracking-uri", dead_pg, "runs", "list"],
        ["--tracking-uri", dead_pg, "db", "current"],
        [*h, "db", "upgrade", "--database-url", "mysql://nobody@127.0.0.1:1/x"],
    ]


def test_cli_failures_are_one_error_line_never_a_traceback(home: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from opsloop.cli._app import app

    work = tmp_path / "work"
    work.mkdir()
    env = {"COLUMNS": "400", "OPSLOOP_LLM_MAX_RETRIES": "0", "OPSLOOP_HTTP_RETRIES": "0"}
    wrong = []
    for args in _failing_invocations(home, work):
        r = CliRunner().invoke(app, args, env=env)
        shown = " ".join(args[2:] if args[0] == "--home" else args)
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        if (
            r.exit_code not in (1, 2)
            # Handled: the command exited with a code, no exception escaped.
            or not isinstance(r.exception, SystemExit)
            or "Traceback" in r.output
            or not last.startswith("error [")
            or "unexpected" in last  # an error no module translated
        ):
            wrong.append(f"{shown}: exit {r.exit_code} {r.exception!r}: {r.output[-600:]}")
    assert not wrong, "\n\n".join(wrong)


def test_unexpected_errors_are_one_line_in_a_real_process(home: Path) -> None:
    import subprocess

    from tests._procs import child_env

    # A home that is a file: the database cannot open; the process must not dump a traceback.
    home.mkdir(parents=True, exist_ok=True)
    bad_home = home / "a-file"
    bad_home.write_text("x")
    for args in (
        ["--home", str(bad_home), "runs", "list"],
        ["--home", str(home), "serve", "local:nope"],
    ):
        p = subprocess.run(
            [sys.executable, "-m", "opsloop.cli", *args],
            capture_output=True, text=True, env=child_env(COLUMNS="300"), timeout=120,
        )  # fmt: skip
        assert p.returncode in (1, 2), p.stderr
        assert "Traceback" not in p.stderr + p.stdout
        assert p.stderr.strip().splitlines()[-1].startswith("error ["), p.stderr


def test_a_ray_cluster_that_cannot_be_reached_is_one_error_line(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray itself takes a minute to give up on a dead address: a test double of ``ray``
    fails ``init`` the way Ray does (ConnectionError)."""
    import types

    from typer.testing import CliRunner

    from opsloop.cli._app import app

    fake = types.ModuleType("ray")
    fake.is_initialized = lambda: False  # type: ignore[attr-defined]

    def init(**kw: Any) -> None:
        raise ConnectionError(f"Could not find any running Ray instance at {kw['address']}.")

    fake.init = init  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", fake)
    (tmp_path / "space.yaml").write_text("x: {type: float, low: -5, high: 5}\n")
    r = CliRunner().invoke(
        app,
        ["--home", str(home), "tune", "run", str(tmp_path / "space.yaml"), "-o",
         "opsloop.tuning.examples:quadratic", "-n", "2", "--backend", "ray",
         "--ray-address", "10.9.9.9:6379"],
        env={"COLUMNS": "300"},
    )  # fmt: skip
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert "Traceback" not in r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("error [UNAVAILABLE]: cannot start or join the Ray cluster at 10.9.9.9")
    assert "ray start --head" in line


def test_chunk_metadata_that_is_not_a_dict_is_an_invalid_argument(tmp_path: Path) -> None:
    import numpy as np

    from opsloop.retrieval import Embedder, VectorIndex, index_chunks

    ix = VectorIndex.open("fhb", dim=3, home=tmp_path)
    emb = Embedder(lambda texts: np.ones((len(texts), 3), dtype="float32"))
    ok = [{"id": "a", "text": "alpha", "metadata": {"tags": ["x", "y"]}}]
    assert index_chunks(ix, emb, ok) == 1
    for bad, match in (
        ({"x", "y"}, "chunk 0 \\('b'\\): metadata must be an object \\(a dict\\), got set"),
        ({"tags": {"x", "y"}}, "not JSON-serialisable"),
    ):
        with pytest.raises(InvalidArgument, match=match):
            index_chunks(ix, emb, [{"id": "b", "text": "beta", "metadata": bad}])
    assert len(ix) == 1  # nothing of the refused chunks was stored


def test_opsloop_debug_shows_the_traceback_of_an_unexpected_error(home: Path) -> None:
    import subprocess

    from tests._procs import child_env

    bad_home = home / "a-file"
    home.mkdir(parents=True, exist_ok=True)
    bad_home.write_text("x")
    args = [sys.executable, "-m", "opsloop.cli", "--home", str(bad_home), "runs", "list"]
    quiet = subprocess.run(args, capture_output=True, text=True, env=child_env(), timeout=120)
    loud = subprocess.run(
        args, capture_output=True, text=True, env=child_env(OPSLOOP_DEBUG="1"), timeout=120
    )
    assert "Traceback" not in quiet.stderr and quiet.returncode == 1
    assert "Traceback" in loud.stderr and loud.returncode != 0


def test_doctor_checks_a_configured_s3_bucket(home: Path, s3_endpoint: str) -> None:  # noqa: F811
    env = {"OPSLOOP_S3_ENDPOINT_URL": s3_endpoint, "OPSLOOP_S3_REGION": "us-east-1"}
    good = _doctor(home, "--json", OPSLOOP_ARTIFACT_URI=f"s3://{S3_BUCKET}/a", **env)
    s3 = next(c for c in json.loads(good.stdout)["checks"] if c["name"] == "s3")
    assert good.exit_code == 0 and s3["status"] == "ok" and S3_BUCKET in s3["detail"]
    bad = _doctor(home, "--json", OPSLOOP_ARTIFACT_URI="s3://no-such-bucket/a", **env)
    s3 = next(c for c in json.loads(bad.stdout)["checks"] if c["name"] == "s3")
    assert bad.exit_code == 1 and s3["status"] == "FAIL" and "no-such-bucket" in s3["detail"]
