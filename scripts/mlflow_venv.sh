#!/usr/bin/env bash
# Create .venv-mlflow: the real `mlflow` client (with scikit-learn, and torch + transformers for
# the Hugging Face Trainer test) in a virtualenv of its own,
# for tests/test_mlflow_api.py and benchmarks/mlflow_protocol.py. mlflow's pins (pyarrow,
# cryptography, ...) never touch opsloop's .venv. Called by `scripts/setup.sh dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
MLFLOW_VERSION="${MLFLOW_VERSION:-3.17.2}"
PY="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
if [ ! -x .venv-mlflow/bin/python ]; then
  "$PY" -m venv .venv-mlflow
fi
.venv-mlflow/bin/python -m pip install --quiet --upgrade pip
.venv-mlflow/bin/python -m pip install --quiet "mlflow==${MLFLOW_VERSION}" "scikit-learn==1.9.1" \
  "torch==2.13.0" "transformers==5.25.0" "accelerate==1.16.0"
echo "mlflow ${MLFLOW_VERSION} installed in .venv-mlflow"
# MLflow 2's first release on PyPI, its client only (a few seconds to install).
if [ ! -x .venv-mlflow2/bin/python ]; then
  "$PY" -m venv .venv-mlflow2
fi
.venv-mlflow2/bin/python -m pip install --quiet "mlflow-skinny==2.0.1"
echo "mlflow-skinny 2.0.1 installed in .venv-mlflow2"
