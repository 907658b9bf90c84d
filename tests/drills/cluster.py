"""The hub's services on the drill hosts, started with the project's own commands:
PostgreSQL (Debian's binaries, a fresh cluster) on db, `hub web run` on web1/web2, haproxy on
lb in front of them (health check GET /healthz), `hub webhooks dispatch` on worker1/worker2,
the customer webhook sink (emulators/webhook_sink.py) on lb.

Each start waits until the service answers; `Cluster` keeps the handles the drills need
(addresses, the hub database URL, haproxy's view of its servers)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import sqlalchemy as sa

from hub import db, migrate
from hub.crypto import generate_key
from tests.drills.netns import Network, tcp_open, wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's hub, python
WEB_PORT, LB_PORT, SINK_PORT, PG_PORT = 8000, 80, 9000, 5432
QUICKBOOKS_PORT, CODE_SERVER_PORT, DAGSTER_PORT, UBEREATS_PORT = 9100, 4000, 3000, 9200


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return found[-1]


class Cluster:
    def __init__(self, net: Network):
        self.net = net
        self.keys = generate_key()
        self.db_url = db.parse_url(f"postgresql://postgres@{net.address['db']}:{PG_PORT}/hub", "drill database")
        self.pg: subprocess.Popen | None = None
        self.web: dict[str, subprocess.Popen] = {}
        self.haproxy_socket = net.workdir / "haproxy.sock"

    @property
    def lb_url(self) -> str:
        return f"http://{self.net.address['lb']}:{LB_PORT}"

    @property
    def sink_url(self) -> str:
        return f"http://{self.net.address['lb']}:{SINK_PORT}"

    def env(self, **extra: str) -> dict[str, str]:
        """What every hub process gets: the database, the key ring, this worktree's code."""
        return {"PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
                "HOME": os.environ.get("HOME", "/root"), "HUB_STATE_DIR": str(self.net.workdir / "state"),
                "HUB_DATABASE_URL": self.db_url.render_as_string(hide_password=False), "HUB_SECRET_KEYS": self.keys,
                "HUB_OUTBOUND_ALLOW": str(self.net.subnet), **extra}

    # PostgreSQL ------------------------------------------------------------------------

    def init_postgres(self) -> None:
        """A fresh cluster owned by the postgres user (the server refuses to run as root),
        trusting the drill subnet, migrated with the hub's migrations."""
        data = self.net.workdir / "pgdata"
        data.mkdir()
        (self.net.workdir / "pgsock").mkdir()
        user = pwd.getpwnam("postgres")
        for path in (data, self.net.workdir / "pgsock"):
            os.chown(path, user.pw_uid, user.pw_gid)
        subprocess.run(["runuser", "-u", "postgres", "--", pg_bin("initdb"), "-D", str(data), "-U", "postgres",
                        "-A", "trust", "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.net.subnet} trust\n")
        self.start_postgres()
        db.ensure_database(self.db_url)
        migrate.upgrade(self.db_url)

    def start_postgres(self) -> None:
        self.pg = self.net.spawn("db", [pg_bin("postgres"), "-D", str(self.net.workdir / "pgdata"),
                                        "-c", f"listen_addresses={self.net.address['db']}", "-c", f"port={PG_PORT}",
                                        "-c", f"unix_socket_directories={self.net.workdir / 'pgsock'}",
                                        "-c", "max_connections=200"], "postgres", user="postgres")
        wait_for(self.postgres_answers, 30, "PostgreSQL to accept connections")

    def postgres_answers(self) -> bool:
        with sa.create_engine(self.db_url.set(database="postgres"), poolclass=sa.pool.NullPool).connect() as conn:
            return conn.scalar(sa.text("SELECT 1")) == 1

    def stop_postgres(self) -> None:
        """A fast shutdown (SIGINT): connections are cut, committed data stays."""
        assert self.pg is not None
        postmaster = int((self.net.workdir / "pgdata" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGINT)
        self.pg.wait(30)
        wait_for(lambda: not tcp_open(self.net.address["db"], PG_PORT), 10, "PostgreSQL to stop listening")

    # the web app behind haproxy ------------------------------------------------------

    def start_web(self, hosts=("web1", "web2"), workers: int = 2) -> None:
        for host in hosts:
            self.web[host] = self.net.spawn(host, [str(BIN / "hub"), "web", "run", "--host", self.net.address[host],
                                                   "--port", str(WEB_PORT), "--workers", str(workers)], host, env=self.env())
        for host in hosts:
            wait_for(lambda: httpx.get(f"http://{self.net.address[host]}:{WEB_PORT}/healthz", timeout=1).status_code == 200,
                     60, f"the web app on {host}")
            wait_for(lambda: self.net.log(host).count("Application startup complete.") >= workers, 90,
                     f"{workers} workers of the web app on {host}")

    def start_haproxy(self, backends=("web1", "web2")) -> None:
        ensure_haproxy()
        servers = "\n".join(f"    server {h} {self.net.address[h]}:{WEB_PORT} check inter 300ms fall 2 rise 2" for h in backends)
        config = self.net.workdir / "haproxy.cfg"
        config.write_text(textwrap.dedent(f"""\
            global
                maxconn 4000
                stats socket {self.haproxy_socket} mode 600 level admin
            defaults
                mode http
                timeout connect 1s
                timeout client 30s
                timeout server 30s
                retries 2
                option redispatch
            frontend hub
                bind {self.net.address['lb']}:{LB_PORT}
                default_backend web
            backend web
                balance roundrobin
                option httpchk GET /healthz
                http-check expect status 200
            """) + servers + "\n")
        self.net.spawn("lb", ["haproxy", "-db", "-f", str(config)], "haproxy")
        wait_for(lambda: all(s == "UP" for s in self.haproxy_servers().values()), 30, "haproxy to see its servers up")

    def haproxy_servers(self) -> dict[str, str]:
        """haproxy's view: server name -> UP / DOWN (its stats socket, `show stat`)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.haproxy_socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r["status"].split()[0] for r in rows if r["pxname"] == "web" and r["svname"] not in ("BACKEND", "FRONTEND")}

    # outbound --------------------------------------------------------------------------

    def start_sink(self, delay: float = 0.0) -> None:
        """The customer's webhook endpoint on lb (the bundled sink keeping every delivery),
        answering after `delay` seconds (a customer's endpoint is not instant)."""
        self.net.spawn("lb", [str(BIN / "python"), "-m", "tests.drills.sink", self.net.address["lb"], str(SINK_PORT), str(delay)],
                       "sink", env=self.env(), cwd=ROOT)
        wait_for(lambda: httpx.get(f"{self.sink_url}/_emulator/health", timeout=1).status_code == 200, 30, "the webhook sink")

    def start_dispatcher(self, host: str, lease: float) -> subprocess.Popen:
        return self.net.spawn(host, [str(BIN / "hub"), "webhooks", "dispatch", "--lease", str(lease), "--poll", "0.2",
                                     "--progress-every", "1"], host, env=self.env())


    # Dagster ----------------------------------------------------------------------------

    @property
    def dagster_url(self) -> str:
        return f"http://{self.net.address['orchestrator']}:{DAGSTER_PORT}"

    @property
    def dagster_home(self) -> Path:
        return self.net.workdir / "dagster_home"

    def start_dagster(self, monitoring_interval: float = 2.0, max_concurrent_runs: int = -1,
                      start_timeout: float = 180.0) -> None:
        """Dagster's deployment model on its own hosts: the code location served over gRPC by
        `dagster code-server start` on codeserver (runs are launched there, as subprocesses),
        dagster-webserver and dagster-daemon on orchestrator (queued runs, sensors, run
        monitoring), storage in PostgreSQL on db. `start_timeout`: run monitoring fails a run
        still STARTING after this long (production: 300 s, deploy/dagster.yaml)."""
        storage = self.db_url.set(database="dagster")
        db.ensure_database(storage)
        home = self.dagster_home
        home.mkdir()
        pg = storage.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
        (home / "dagster.yaml").write_text(textwrap.dedent(f"""\
            storage:
              postgres:
                postgres_url: "{pg}"
            run_coordinator:
              module: dagster._core.run_coordinator
              class: QueuedRunCoordinator
              config:
                dequeue_interval_seconds: 1
                max_concurrent_runs: {max_concurrent_runs}
                # a run dequeued while the code server is away is retried, not failed at once
                max_user_code_failure_retries: 30
                user_code_failure_retry_delay: 2
            run_monitoring:
              enabled: true
              poll_interval_seconds: {monitoring_interval:g}
              start_timeout_seconds: {start_timeout:g}
            sensors:
              use_threads: true
              num_workers: 4
            telemetry:
              enabled: false
            """))
        (home / "workspace.yaml").write_text(textwrap.dedent(f"""\
            load_from:
              - grpc_server:
                  host: {self.net.address['codeserver']}
                  port: {CODE_SERVER_PORT}
                  location_name: integrations_hub
            """))
        env = self.env(DAGSTER_HOME=str(home), DAGSTER_PG_URL=pg)
        self.start_code_server()
        self.net.spawn("orchestrator", [str(BIN / "dagster-webserver"), "-h", self.net.address["orchestrator"], "-p", str(DAGSTER_PORT),
                                        "-w", str(home / "workspace.yaml")], "webserver", env=env, cwd=ROOT)
        self.start_daemon()
        wait_for(lambda: httpx.get(f"{self.dagster_url}/server_info", timeout=2).status_code == 200, 180, "dagster-webserver")

    def start_code_server(self) -> None:
        env = self.env(DAGSTER_HOME=str(self.dagster_home))
        self.code_server = self.net.spawn("codeserver", [str(BIN / "dagster"), "code-server", "start", "-h", self.net.address["codeserver"],
                                          "-p", str(CODE_SERVER_PORT), "-m", "pipelines.definitions", "--working-directory", str(ROOT),
                                          "--location-name", "integrations_hub"], "codeserver", env=env, cwd=ROOT)
        wait_for(lambda: tcp_open(self.net.address["codeserver"], CODE_SERVER_PORT), 180, "the code server")

    def run_processes(self) -> list[int]:
        """The runs' processes on the code server host: the run workers and their step
        processes, which the code server's gRPC process starts with multiprocessing; not the
        servers (the `dagster code-server` proxy and the `dagster api grpc` child it loads the
        code in) nor multiprocessing's resource tracker."""
        found = []
        for pid in self.net.pids("codeserver"):
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
                found.append(pid)
        return found

    def kill_code_server(self) -> list[int]:
        """kill -9 the code server's own processes, leaving the runs it started running."""
        runs = set(self.run_processes())
        killed = []
        for pid in self.net.pids("codeserver"):
            if pid not in runs:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
        wait_for(lambda: not tcp_open(self.net.address["codeserver"], CODE_SERVER_PORT), 10, "the code server to be gone")
        return killed

    def dagster_instance(self):
        """The deployment's Dagster instance, as the daemon sees it (a context manager)."""
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def start_daemon(self) -> subprocess.Popen:
        env = self.env(DAGSTER_HOME=str(self.dagster_home))
        self.daemon = self.net.spawn("orchestrator", [str(BIN / "dagster-daemon"), "run", "-w", str(self.dagster_home / "workspace.yaml")],
                              "daemon", env=env, cwd=ROOT)
        return self.daemon

    def kill_daemon(self) -> None:
        """kill -9 dagster-daemon and every process it started."""
        os.killpg(self.daemon.pid, signal.SIGKILL)
        self.daemon.wait(10)

    def start_quickbooks(self, realm: str, vendors: int) -> str:
        """The QuickBooks emulator on lb; its base URL."""
        self.net.spawn("lb", [str(BIN / "python"), "-m", "tests.drills.quickbooks_host", self.net.address["lb"], str(QUICKBOOKS_PORT),
                              realm, str(vendors)], "quickbooks", env=self.env(), cwd=ROOT)
        url = f"http://{self.net.address['lb']}:{QUICKBOOKS_PORT}"
        wait_for(lambda: httpx.get(f"{url}/_emulator/health", timeout=1).status_code == 200, 60, "the QuickBooks emulator")
        return url


    def start_ubereats(self) -> str:
        """The Uber Eats emulator on lb; its base URL."""
        self.net.spawn("lb", [str(BIN / "python"), "-m", "tests.drills.ubereats_host", self.net.address["lb"], str(UBEREATS_PORT)],
                       "ubereats", env=self.env(), cwd=ROOT)
        url = f"http://{self.net.address['lb']}:{UBEREATS_PORT}"
        wait_for(lambda: httpx.get(f"{url}/_emulator/health", timeout=1).status_code == 200, 60, "the Uber Eats emulator")
        return url


def ensure_haproxy() -> None:
    """Debian's haproxy, installed when missing (as scripts/test.sh does for chromium)."""
    if shutil.which("haproxy"):
        return
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "haproxy"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
