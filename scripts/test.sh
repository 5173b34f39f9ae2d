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
# One pytest worker per core (OPSLOOP_TEST_WORKERS overrides; 1 runs in this process). Whole
# files go to a worker (--dist loadfile), so a file's module fixtures are made once; they go
# out slowest first (tests/durations.json, see tests/conftest.py), not by their test counts.
workers="${OPSLOOP_TEST_WORKERS:-$(nproc 2>/dev/null || echo 2)}"
if [ "$workers" -gt 1 ]; then
  exec .venv/bin/python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
fi
exec .venv/bin/python -m pytest "$@"
