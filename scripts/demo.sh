#!/usr/bin/env bash
# The main job (`make demo`): embedded PostgreSQL (unless HUB_DATABASE_URL is set),
# migrations, demo data, then `dagster dev`. Ctrl-C stops Dagster and the embedded server.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export HUB_STATE_DIR="${HUB_STATE_DIR:-$PWD/.hub}"
mkdir -p "$HUB_STATE_DIR"
DAGSTER_PORT="${DAGSTER_PORT:-3000}"

step() { printf '\n==> %s\n' "$*"; }

if [ -z "${HUB_SECRET_KEYS:-}" ]; then
  keyfile="$HUB_STATE_DIR/secret_keys"
  if [ ! -s "$keyfile" ]; then
    step "generating a local encryption key in $keyfile (set HUB_SECRET_KEYS to use your own)"
    (umask 077 && hub keys generate > "$keyfile")
  fi
  HUB_SECRET_KEYS="$(cat "$keyfile")"
  export HUB_SECRET_KEYS
fi

started_embedded=""
if [ -z "${HUB_DATABASE_URL:-}" ]; then
  step "starting embedded PostgreSQL in $HUB_STATE_DIR/pgdata"
  HUB_DATABASE_URL="$(hub db url --show-password)"
  export HUB_DATABASE_URL
  started_embedded=1
fi
DAGSTER_PG_URL="${DAGSTER_PG_URL:-$(hub db url --dagster --show-password)}"
export DAGSTER_PG_URL

emulators_pid=""
cleanup() {
  trap '' INT PIPE  # a second Ctrl-C or a closed terminal must not cut the shutdown short
  if [ -n "$emulators_pid" ]; then
    kill "$emulators_pid" 2>/dev/null || true
    wait "$emulators_pid" 2>/dev/null || true
  fi
  if [ -n "$started_embedded" ]; then
    step "stopping embedded PostgreSQL" || true
    hub db stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "migrating the hub database"
hub db upgrade
step "seeding demo companies and integrations"
hub demo seed

step "starting the provider emulators (log: $HUB_STATE_DIR/emulators.log)"
hub emulators run > "$HUB_STATE_DIR/emulators.log" 2>&1 &
emulators_pid=$!
python - <<'PY'
import time, httpx
from emulators.registry import EMULATORS
deadline = time.monotonic() + 30
for entry in EMULATORS.values():
    url = f"http://127.0.0.1:{entry.default_port}/_emulator/health"
    while True:
        try:
            httpx.get(url, timeout=1).raise_for_status()
            print(f"    {entry.name:<11} http://127.0.0.1:{entry.default_port}")
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise SystemExit(f"emulator {entry.name} did not start; see the emulators log")
            time.sleep(0.2)
PY
step "connecting the demo integrations to the emulators (OAuth grant, then a live check)"
hub demo connect
for id in $(hub integration list | awk '$3 ~ /^(quickbooks|xero|procore)$/ && $5 == "yes" {print $1}'); do
  hub integration check "$id" || true
done
hub integration list

export DAGSTER_HOME="$HUB_STATE_DIR/dagster_home"
mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

step "starting Dagster: UI at http://127.0.0.1:$DAGSTER_PORT (Ctrl-C to stop)"
cat <<TXT
    Assets:    hub/integration_inventory, hub/connection_check (one partition per active integration)
    Sensors:   integration_partitions_sensor adds partitions within ~30 s; sync_log_* close dead runs' logs
    Schedules: inventory_hourly
    CLI:       see "CLI" in README.md (same HUB_DATABASE_URL / HUB_STATE_DIR and HUB_SECRET_KEYS as here)
TXT
# in the foreground, so Ctrl-C reaches dagster dev (a background job of a script would
# ignore SIGINT); the EXIT trap then stops the embedded server
dagster dev -w workspace.yaml -p "$DAGSTER_PORT"
