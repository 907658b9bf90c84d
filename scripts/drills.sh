#!/usr/bin/env bash
# The failure drills (`make drills`, tests/drills): the hub's services on hosts in network
# namespaces (db, web1, web2, lb, worker1, worker2), a steady load, one failure per drill.
# Root only (namespaces, a PostgreSQL cluster run as the postgres user). Installs Debian's
# haproxy when it is missing (the load balancer in front of web1 and web2), as scripts/test.sh
# does for chromium. Arguments pass to pytest: scripts/drills.sh -k drill_1
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != "0" ]; then
  echo "the drills need root (ip netns, veth pairs, a bridge; PostgreSQL run as postgres)" >&2
  exit 2
fi
if ! command -v haproxy >/dev/null 2>&1; then
  echo "installing Debian's haproxy for the drills' load balancer"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing Debian's PostgreSQL server binaries for the drills' db host"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

start=$(date +%s)
status=0
# one process, file order: each drill builds its own hosts and loads the machine on its own
.venv/bin/python -m pytest -p no:randomly -p no:xdist -p no:cacheprovider -s -v tests/drills "$@" || status=$?
echo "drills took $(( $(date +%s) - start )) s"
exit "$status"
