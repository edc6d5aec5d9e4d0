#!/usr/bin/env bash
# Set everything up, then run the demo: embedded broker, simulated models, workers, ClickHouse.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/switchyard demo --requests "${DEMO_REQUESTS:-500}" "$@"
