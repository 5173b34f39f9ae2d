"""``import opsloop`` is cheap and pulls in nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "torch",
    "sklearn",
    "ray",
    "transformers",
    "pandas",
    "optuna",
    "mlflow",
    "numpy",
    "sqlalchemy",
    "fastapi",
]

PROBE = """
import json, sys, time
t = time.perf_counter()
import opsloop
elapsed = time.perf_counter() - t
print(json.dumps({"elapsed": elapsed, "loaded": sorted(m for m in %r if m in sys.modules)}))
"""


def _probe(code: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_import_is_fast_and_light() -> None:
    # Best of three, so one slow disk read on a loaded CI box does not decide it.
    results = [_probe(PROBE % (HEAVY,)) for _ in range(3)]
    best = min(float(r["elapsed"]) for r in results)  # type: ignore[arg-type]
    assert best < 0.5, f"import opsloop took {best:.3f}s"
    assert results[0]["loaded"] == [], f"import opsloop loaded {results[0]['loaded']}"


def test_sdk_use_does_not_pull_ml_libraries(tmp_path: object) -> None:
    code = f"""
import json, sys, opsloop
c = opsloop.Client(home={str(tmp_path)!r})
r = c.create_run(experiment_name="x")
c.log_metric(r.id, "m", 1.0); c.flush(); c.get_metric_history(r.id, "m")
print(json.dumps({{"loaded": sorted(m for m in ["torch","sklearn","ray","transformers","pandas","optuna"] if m in sys.modules)}}))
"""
    assert _probe(code)["loaded"] == []
