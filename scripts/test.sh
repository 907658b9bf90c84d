#!/usr/bin/env bash
# The whole test suite (`make test`, called by .ci/run).
# With CI=true the tests use the PostgreSQL server on 127.0.0.1:5432 (started if down);
# otherwise HUB_TEST_DATABASE_URL, else the embedded server under .hub/test.
# The order is random (pytest-randomly, from the dev extra); the seed is printed, and
# `--randomly-seed=N` replays an order (`-p no:randomly`: file order).
# Tests run in HUB_TEST_WORKERS processes (pytest-xdist; default 3: most tests wait on
# PostgreSQL, HTTP, Chromium or Dagster, so three keep two cores busy; 0: one process).
# Every test session makes its own databases, so the workers share one server.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CI:-}" = "true" ] && [ -z "${HUB_TEST_DATABASE_URL:-}" ]; then
  export HUB_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/postgres"
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "PostgreSQL on 127.0.0.1:5432 is down; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi

# The browser tests (tests/browser) drive Debian's Chromium, never a browser Playwright
# downloads itself (not reachable from CI): install it on a fresh machine.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# The embedded server is started once here for every worker (each worker starting and
# stopping it would stop it under the others), and stopped at the end if it was not running.
stop_embedded=""
if [ -z "${HUB_TEST_DATABASE_URL:-}" ]; then
  export HUB_STATE_DIR="${HUB_STATE_DIR:-$PWD/.hub/test}"
  if ! .venv/bin/python -c 'import sys; from hub import embedded_pg; sys.exit(0 if embedded_pg.is_running() else 1)'; then
    stop_embedded=1
  fi
  HUB_TEST_DATABASE_URL="$(.venv/bin/python -c 'from hub import embedded_pg; print(embedded_pg.start().render_as_string(hide_password=False))')"
  export HUB_TEST_DATABASE_URL
fi

status=0
.venv/bin/python -m pytest -n "${HUB_TEST_WORKERS:-3}" "$@" || status=$?
if [ -n "$stop_embedded" ]; then
  .venv/bin/python -c 'from hub import embedded_pg; embedded_pg.stop()'
fi
exit "$status"
