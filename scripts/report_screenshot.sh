#!/usr/bin/env bash
# Regenerate docs/report.png: demo traffic into a fresh SWITCHYARD_HOME, its HTML report
# (`switchyard report --html`), and a screenshot of the page in headless Chromium (Debian's
# `chromium` package; only this script needs it, CI does not).
#
# Two demo runs on one stack (`switchyard up` in the background): a healthy one, then one with
# sim-medium failing 30% of its calls, so the error and fallback plots have something to show.
#   bash scripts/report_screenshot.sh                   # writes docs/report.png
#   DEMO_REQUESTS=1000 OUT=/tmp/r.png KEEP=1 bash scripts/report_screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "needs chromium (apt-get install -y chromium)" >&2; exit 1; }

work="$(mktemp -d)"
up_pid=""
cleanup() {
  if [[ -n "$up_pid" ]]; then kill -TERM "$up_pid" 2>/dev/null || true; wait "$up_pid" || true; fi
  if [[ -z "${KEEP:-}" ]]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT
# This run's own everything: no broker, database or config from the caller's environment.
unset KAFKA_BOOTSTRAP CLICKHOUSE_URL SWITCHYARD_NAMESPACE SWITCHYARD_CONFIG
export SWITCHYARD_HOME="$work/home"
SWITCHYARD_ADMIN_TOKEN="$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')"
export SWITCHYARD_ADMIN_TOKEN
out="$(realpath -m "${OUT:-docs/report.png}")"
requests="${DEMO_REQUESTS:-500}"

.venv/bin/switchyard up >"$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 240); do
  [[ -s "$SWITCHYARD_HOME/stack.json" ]] && break
  kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.log" >&2; exit 1; }
  sleep 0.5
done
admin="$(.venv/bin/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["simulator_url"].removesuffix("/v1"))' "$SWITCHYARD_HOME/stack.json")"
fault() {  # fault MODEL JSON: change a simulated model's behaviour
  curl -fsS -X POST "$admin/admin/models/$1" -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d "$2" >/dev/null
}

.venv/bin/switchyard demo --requests "$requests"
fault sim-medium '{"error_rate": 0.3}'
.venv/bin/switchyard demo --requests "$requests"
fault sim-medium '{"error_rate": 0.0}'
# The telemetry worker holds the embedded database: the report reads through its query service.
.venv/bin/switchyard report --since 1d --html "$work/report.html"

chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/chromium" --hide-scrollbars --window-size=1400,2400 \
  --screenshot="$out" "file://$work/report.html" 2>"$work/chromium.log" \
  || { cat "$work/chromium.log" >&2; exit 1; }
echo "wrote $out ($(du -k "$out" | cut -f1) KB)"
