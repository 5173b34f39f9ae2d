#!/usr/bin/env bash
# Set everything up and run the main job: train real models, track them, serve the UI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh quickstart
exec .venv/bin/opsloop quickstart "$@"
