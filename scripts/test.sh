#!/usr/bin/env bash
# Set everything up and run the whole test suite (what CI runs).
#   scripts/test.sh              all tests
#   scripts/test.sh -k contract  extra pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev

# The UI tests drive Debian's Chromium headless; install it where we can (root + apt).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian chromium for the UI tests..."
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

.venv/bin/ruff check src tests benchmarks tools scripts
.venv/bin/mypy   # strict, on the package (configured in pyproject.toml)
PYTHONPATH="src:." .venv/bin/lint-imports --no-cache   # the layers (pyproject.toml [tool.importlinter])
exec .venv/bin/python -m pytest "$@"
