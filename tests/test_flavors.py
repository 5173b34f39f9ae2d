"""Model formats without pickle: scikit-learn via skops, pyfunc by import path, signatures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opsloop.errors import InvalidArgument, PermissionDenied
from opsloop.registry import (
    ColumnSpec,
    PyfuncContext,
    PythonModel,
    Signature,
    infer_signature,
    load_model,
)
from opsloop.registry.flavors import save_pyfunc, save_sklearn

# ---------------------------------------------------------------- pyfunc models used by the tests


class ScaleModel(PythonModel):
    """Multiplies ``x`` by the configured scale (registry tests use it as a cheap model)."""

    def load_context(self, context: PyfuncContext) -> None:
        self.scale = float(context.config["scale"])

    def predict(self, data: list[dict[str, Any]]) -> list[float]:
        return [row["x"] * self.scale for row in data]


class VocabModel:
    """Not a subclass: any class with ``predict`` works. Reads an artifact; takes columns."""

    input_format = "columns"

    def load_context(self, context: PyfuncContext) -> None:
        self.vocab = json.loads((context.artifacts["vocab"]).read_text())

    def predict(self, data: dict[str, list[Any]]) -> list[int]:
        return [self.vocab.get(w, -1) for w in data["word"]]

    def predict_proba(self, data: dict[str, list[Any]]) -> list[list[float]]:
        return [[1.0] if w in self.vocab else [0.0] for w in data["word"]]


not_a_class = len


# ---------------------------------------------------------------- scikit-learn


@pytest.fixture(scope="module")
def iris_like() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, y


def test_sklearn_round_trip_predictions_equal(tmp_path: Path, iris_like: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris_like
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    records = [{"a": r[0], "b": r[1], "c": r[2], "d": r[3]} for r in X.tolist()]
    folder = save_sklearn(model, tmp_path / "lr", input_example=records[:5])
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in folder.iterdir())
    desc = json.loads((folder / "opsloop-model.json").read_text())
    assert desc["flavor"] == "sklearn" and desc["metadata"]["classes"] == [0, 1, 2]
    assert desc["metadata"]["untrusted_types"] == []

    loaded = load_model(folder)
    assert (
        str(loaded.signature)
        == "(a: double, b: double, c: double, d: double) -> (prediction: long)"
    )
    assert loaded.predict(records) == model.predict(X).tolist()
    proba = loaded.predict_proba(records[:7])
    assert np.allclose(proba, model.predict_proba(X[:7]))
    # Columns format, and integers where doubles are expected, give the same answers.
    cols = {k: [r[k] for r in records[:3]] for k in "abcd"}
    assert loaded.predict(cols) == model.predict(X[:3]).tolist()
    assert (
        loaded.predict([{"a": 1, "b": 0, "c": 0, "d": 0}])
        == model.predict([[1.0, 0, 0, 0]]).tolist()
    )


def test_untrusted_types_refused_then_trusted_by_name(tmp_path: Path, iris_like: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris_like
    rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    folder = save_sklearn(rf, tmp_path / "rf", input_example=X[:4])
    meta = json.loads((folder / "opsloop-model.json").read_text())["metadata"]
    assert meta["untrusted_types"] == ["sklearn.tree._tree.Tree"]  # recorded for review only

    with pytest.raises(PermissionDenied) as exc:
        load_model(folder)
    assert "sklearn.tree._tree.Tree" in exc.value.message and "trusted_types" in exc.value.message
    assert exc.value.details["untrusted_types"] == ["sklearn.tree._tree.Tree"]
    assert exc.value.details["cli_message"].endswith("add --trust sklearn.tree._tree.Tree")
    with pytest.raises(PermissionDenied):
        load_model(folder, trusted_types=["sklearn.tree._tree.Something"])
    with pytest.raises(InvalidArgument):
        load_model(folder, trusted_types="sklearn.tree._tree.Tree")  # type: ignore[arg-type]

    loaded = load_model(folder, trusted_types=["sklearn.tree._tree.Tree"])
    assert loaded.signature is not None and loaded.signature.inputs == [
        ColumnSpec("input", "tensor", shape=(-1, 4))
    ]
    assert loaded.predict({"input": X.tolist()}) == rf.predict(X).tolist()
    assert loaded.predict([{"input": row} for row in X[:3].tolist()]) == rf.predict(X[:3]).tolist()


def test_a_tampered_descriptor_grants_no_trust(tmp_path: Path, iris_like: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris_like
    folder = save_sklearn(RandomForestClassifier(n_estimators=2).fit(X, y), tmp_path / "rf")
    p = folder / "opsloop-model.json"
    desc = json.loads(p.read_text())
    desc["metadata"]["trusted_types"] = ["sklearn.tree._tree.Tree"]
    desc["metadata"]["untrusted_types"] = []
    p.write_text(json.dumps(desc))
    with pytest.raises(PermissionDenied):
        load_model(folder)


def test_signature_mismatch_errors_name_the_problem(tmp_path: Path, iris_like: Any) -> None:
    from sklearn.linear_model import LinearRegression

    X, y = iris_like
    records = [{"a": r[0], "b": r[1], "c": r[2], "d": r[3]} for r in X.tolist()]
    loaded = load_model(
        save_sklearn(LinearRegression().fit(X, y), tmp_path / "lin", input_example=records)
    )
    cases = [
        ([{"a": 1.0, "b": 2.0, "c": 3.0}], "missing input column 'd'"),
        ([{"a": 1.0, "b": 2.0, "c": 3.0, "d": "x"}], "column 'd' row 0 must be a double"),
        (
            [{"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, {"a": None, "b": 2.0, "c": 3.0, "d": 4.0}],
            "column 'a' row 1 is null",
        ),
        ([{"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0}], "unexpected input column"),
        ([{"a": True, "b": 2.0, "c": 3.0, "d": 4.0}], "must be a double"),
        ({"a": [1.0], "b": [1.0, 2.0], "c": [1.0], "d": [1.0]}, "different lengths"),
        ([], "no rows"),
        ("a,b,c,d", "records"),
        ([[1, 2, 3, 4]], "row 0 must be an object"),
    ]
    for data, message in cases:
        with pytest.raises(InvalidArgument, match=message) as exc:
            loaded.predict(data)
        assert exc.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgument) as exc:
        loaded.predict([{"a": 1.0, "b": 2.0, "c": 3.0, "d": "x"}])
    assert exc.value.details == {"column": "d", "row": 0, "expected": "double", "got": "str"}
    with pytest.raises(InvalidArgument, match="no predict_proba"):
        loaded.predict_proba(records[:1])


def test_signature_types_and_inference() -> None:
    sig = infer_signature(
        [
            {"n": 1, "x": 0.5, "s": "a", "b": True, "v": [1.0, 2.0]},
            {"n": 2, "x": None, "s": "b", "b": False, "v": [3.0, 4.0]},
        ],
        np.array([0.1, 0.2]),
    )
    assert [(c.name, c.type, c.optional) for c in sig.inputs] == [
        ("n", "long", False),
        ("x", "double", True),
        ("s", "string", False),
        ("b", "boolean", False),
        ("v", "tensor", False),
    ]
    assert sig.outputs == [ColumnSpec("prediction", "double")]
    assert Signature.from_dict(sig.to_dict()) == sig
    assert infer_signature(["hi", "there"]).inputs == [ColumnSpec("input", "string")]
    from opsloop.registry.flavors._signature import validate_input

    tsig = Signature(
        [ColumnSpec("t", "tensor", shape=(-1, 2, -1)), ColumnSpec("k", "long", optional=True)]
    )
    cols, n = validate_input(tsig, [{"t": [[1, 2, 3], [4, 5, 6]], "k": 3.0}, {"t": [[1], [2]]}])
    assert n == 2 and cols["k"] == [3, None]
    with pytest.raises(InvalidArgument, match="shape"):
        validate_input(tsig, [{"t": [[1, 2]]}])
    with pytest.raises(InvalidArgument, match="tensor"):
        validate_input(tsig, [{"t": [[1, 2], [3]]}])
    with pytest.raises(InvalidArgument, match="long"):
        validate_input(tsig, [{"t": [[1], [2]], "k": 2.5}])
    with pytest.raises(InvalidArgument, match="unknown type"):
        ColumnSpec("x", "float128")
    with pytest.raises(InvalidArgument, match="duplicate"):
        Signature([ColumnSpec("x", "long"), ColumnSpec("x", "double")])


# ---------------------------------------------------------------- pyfunc


def test_pyfunc_by_import_path_with_artifacts_and_config(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps({"cat": 1, "dog": 2}))
    folder = save_pyfunc(
        tmp_path / "vocab-model",
        VocabModel,
        artifacts={"vocab": vocab},
        signature=Signature([ColumnSpec("word", "string")], [ColumnSpec("id", "long")]),
    )
    desc = json.loads((folder / "opsloop-model.json").read_text())
    assert desc["metadata"]["python_model"] == "tests.test_flavors:VocabModel"
    assert (folder / desc["metadata"]["artifacts"]["vocab"]).read_text() == vocab.read_text()
    vocab.write_text("{}")  # the model folder holds its own copy

    loaded = load_model(folder)
    assert loaded.flavor == "pyfunc" and loaded.supports_proba
    assert loaded.predict([{"word": "dog"}, {"word": "emu"}]) == [2, -1]
    assert loaded.predict_proba({"word": ["cat"]}) == [[1.0]]
    with pytest.raises(InvalidArgument, match="must be a string"):
        loaded.predict([{"word": 3}])

    scaled = load_model(
        save_pyfunc(tmp_path / "s", "tests.test_flavors:ScaleModel", config={"scale": 0.5})
    )
    assert scaled.signature is None and scaled.predict([{"x": 4}]) == [2.0]


def test_pyfunc_refuses_what_is_not_an_installed_class(tmp_path: Path) -> None:
    def local() -> None: ...

    class Local(PythonModel):
        pass

    with pytest.raises(InvalidArgument, match="importable module"):
        save_pyfunc(tmp_path / "a", Local)
    with pytest.raises(InvalidArgument, match=r"package\.module:ClassName"):
        save_pyfunc(tmp_path / "b", "os.system")
    with pytest.raises(InvalidArgument, match="JSON"):
        save_pyfunc(tmp_path / "c", ScaleModel, config={"f": local})
    for ref, message in (
        ("tests.no_such_module:Model", "cannot import"),
        ("tests.test_flavors:NoSuchClass", "has no"),
        ("tests.test_flavors:not_a_class", "must be a class with a predict method"),
        ("os:sep", "must be a class"),
    ):
        folder = save_pyfunc(tmp_path / ref.replace(":", "_"), "tests.test_flavors:ScaleModel")
        p = folder / "opsloop-model.json"
        desc = json.loads(p.read_text())
        desc["metadata"]["python_model"] = ref
        p.write_text(json.dumps(desc))
        with pytest.raises(InvalidArgument, match=message):
            load_model(folder)
    # Artifact paths cannot escape the model folder.
    folder = save_pyfunc(tmp_path / "esc", "tests.test_flavors:ScaleModel", config={"scale": 1})
    p = folder / "opsloop-model.json"
    desc = json.loads(p.read_text())
    desc["metadata"]["artifacts"] = {"x": "../../etc/passwd"}
    p.write_text(json.dumps(desc))
    with pytest.raises(InvalidArgument, match="outside the model folder"):
        load_model(folder)


def test_load_model_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="neither a models:/ URI nor a saved model folder"):
        load_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgument, match="not a saved opsloop model"):
        load_model(tmp_path / "empty")
    (tmp_path / "empty" / "opsloop-model.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        load_model(tmp_path / "empty")
    (tmp_path / "empty" / "opsloop-model.json").write_text('{"flavor": "tensorflow-saved"}')
    with pytest.raises(InvalidArgument, match="unknown model flavor"):
        load_model(tmp_path / "empty")
    with pytest.raises(InvalidArgument, match="not valid"):
        load_model("models:/bad name@x")


# ---------------------------------------------------------------- optional boosting libraries


def test_xgboost_round_trip_when_installed(tmp_path: Path, iris_like: Any) -> None:
    xgboost = pytest.importorskip("xgboost")
    from opsloop.registry.flavors import save_xgboost

    X, y = iris_like
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    folder = save_xgboost(model, tmp_path / "xgb", input_example=X[:3])
    assert (folder / "model.json").is_file()
    loaded = load_model(folder)
    assert loaded.predict({"input": X.tolist()}) == model.predict(X).tolist()
    assert np.allclose(loaded.predict_proba({"input": X[:4].tolist()}), model.predict_proba(X[:4]))


def test_lightgbm_round_trip_when_installed(tmp_path: Path, iris_like: Any) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    from opsloop.registry.flavors import save_lightgbm

    X, y = iris_like
    model = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y.astype(float))
    folder = save_lightgbm(model, tmp_path / "lgb", input_example=X[:3])
    assert (folder / "model.txt").is_file()
    loaded = load_model(folder)
    assert np.allclose(loaded.predict({"input": X.tolist()}), model.predict(X))


@pytest.mark.parametrize("kind", ["rf-clf", "et-clf", "rf-reg"])
def test_forest_fast_path_matches_scikit_learn(kind: str) -> None:
    """The served-forest fast path gives exactly scikit-learn's answers."""
    import numpy as np
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor

    from opsloop.registry.flavors._sklearn import _forest_predict, _forest_proba

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    y_cls = np.array(["a", "b", "c"])[(x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1)]
    model = {
        "rf-clf": RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y_cls),
        "et-clf": ExtraTreesClassifier(n_estimators=20, random_state=0).fit(x, y_cls),
        "rf-reg": RandomForestRegressor(n_estimators=20, random_state=0).fit(
            x, x[:, 0] * 2 + x[:, 3]
        ),
    }[kind]
    probe = rng.normal(size=(50, 6))
    assert np.array_equal(_forest_predict(model, probe), model.predict(probe))
    if kind != "rf-reg":
        assert np.allclose(
            _forest_proba(model, probe), model.predict_proba(probe), rtol=0, atol=1e-12
        )
    assert _forest_predict(model, probe.astype(object)) is None  # not numeric: the normal path
