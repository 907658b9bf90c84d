#!/usr/bin/env bash
# The whole test suite (`make test`, called by .ci/run).
# With CI=true the tests use the PostgreSQL server on 127.0.0.1:5432 (started if down);
# otherwise HUB_TEST_DATABASE_URL, else the embedded server under .hub/test.
# The order is random (pytest-randomly, from the dev extra); the seed is printed, and
# `--randomly-seed=N` replays an order (`-p no:randomly`: file order).
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

exec .venv/bin/python -m pytest "$@"
