#!/usr/bin/env bash
# `make serve`: the hub on one machine as separate services (deploy/Procfile, run by honcho): the
# Dagster code server, webserver and daemon, the hub web app with several workers, and the
# outbound dispatchers. Unlike `make demo` there are no emulators, no demo data and no `dagster dev`.
#
#   HUB_DATABASE_URL   the hub's PostgreSQL (unset: the embedded server in $HUB_STATE_DIR, as the demo)
#   DAGSTER_PG_URL     Dagster's storage (unset: database "dagster" on the hub's server)
#   HUB_SECRET_KEYS    encryption keys (unset: $HUB_STATE_DIR/secret_keys, made once)
#   DAGSTER_HOME       where deploy/dagster.yaml is copied (unset: $HUB_STATE_DIR/serve/dagster_home)
#   HUB_WEB_WORKERS (4), HUB_DISPATCHERS (2), HUB_WEB_PORT (8000), DAGSTER_PORT (3000), DAGSTER_CODE_PORT (4000)
# Ctrl-C stops every service (and the embedded server if this script started it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/hub-env.sh  # PATH, HUB_STATE_DIR, step, HUB_SECRET_KEYS, HUB_DATABASE_URL (embedded if unset)
cleanup() {
  if [ -n "$started_embedded" ]; then
    hub db stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

DAGSTER_PG_URL="${DAGSTER_PG_URL:-$(hub db url --dagster --show-password)}"
export DAGSTER_PG_URL
export DAGSTER_HOME="${DAGSTER_HOME:-$HUB_STATE_DIR/serve/dagster_home}"
export DAGSTER_CODE_HOST="${DAGSTER_CODE_HOST:-localhost}" DAGSTER_CODE_PORT="${DAGSTER_CODE_PORT:-4000}"
mkdir -p "$DAGSTER_HOME"
cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

step "migrating the hub database and Dagster's storage"
hub db upgrade
dagster instance migrate

step "starting the services of deploy/Procfile: code server :$DAGSTER_CODE_PORT, Dagster UI :${DAGSTER_PORT:-3000}, hub web app :${HUB_WEB_PORT:-8000} (${HUB_WEB_WORKERS:-4} workers), ${HUB_DISPATCHERS:-2} dispatcher(s)"
# honcho stops them all when one exits or on Ctrl-C / SIGTERM
honcho -f deploy/Procfile -d . start -c "dispatch=${HUB_DISPATCHERS:-2}"
