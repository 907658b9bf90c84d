"""Helpers shared by the benchmarks: fresh databases, child processes in their own process
group (stopped with the group, also on Ctrl-C or an error), free loopback ports, percentiles
and a description of the machine."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import httpx
from sqlalchemy.engine import URL

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV_BIN = Path(sys.executable).parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def server_url() -> URL:
    """The PostgreSQL server to benchmark on: HUB_BENCH_DATABASE_URL, else the local one."""
    from hub import db

    return db.parse_url(os.environ.get("HUB_BENCH_DATABASE_URL") or DEFAULT_SERVER, "HUB_BENCH_DATABASE_URL")


def plain(url: URL) -> str:
    """A libpq URL (no SQLAlchemy driver suffix) with the password, for psycopg and children."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(prefix: str) -> Iterator[URL]:
    """A new, uniquely named database on the bench server, dropped at the end."""
    from hub import db

    url = server_url().set(database=f"{prefix}_{uuid.uuid4().hex[:10]}")
    db.ensure_database(url)
    try:
        yield url
    finally:
        try:
            # pooled engines of this process hold connections; DROP ... WITH (FORCE) ends them
            db.drop_database(url)
            log(f"dropped database {url.database}")
        except Exception as exc:  # never hide the benchmark's own error behind a cleanup error
            log(f"could not drop database {url.database}: {type(exc).__name__}: {exc}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Child:
    """A subprocess started in its own session (so its own process group); `stop()` sends
    SIGTERM to the group, then SIGKILL after `grace` seconds."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT):
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(list(argv), env=env, cwd=str(cwd), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:  # also whatever the child left behind in its group (dagster dev's daemon, webserver, runs)
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_http(url: str, child: Child | None, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if child is not None and not child.alive():
            raise RuntimeError(f"{what} exited with {child.proc.returncode}:\n{child.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s" + (f":\n{child.tail()}" if child else ""))
        time.sleep(0.1)


@contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Ctrl-C (SIGINT, also when the shell started us with it ignored), SIGTERM and SIGHUP
    raise KeyboardInterrupt, so every `finally` / ExitStack callback runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> dict[str, float | int | None]:
    ordered = sorted(values)

    def r(v):
        return None if v is None else round(v * scale, digits)

    return {"n": len(ordered), "p50": r(percentile(ordered, 50)), "p90": r(percentile(ordered, 90)),
            "p99": r(percentile(ordered, 99)), "max": r(ordered[-1] if ordered else None),
            "mean": r(sum(ordered) / len(ordered) if ordered else None)}


def machine(pg_url: URL | None = None) -> dict:
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gb": _mem_gb(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if pg_url is not None:
        import psycopg

        with psycopg.connect(plain(pg_url)) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
            for name in ("synchronous_commit", "fsync", "shared_buffers", "max_connections", "commit_delay"):
                info[f"pg_{name}"] = conn.execute(f"SHOW {name}").fetchone()[0]
        info["pg_host"] = pg_url.host
    try:
        import importlib.metadata as md

        info["packages"] = {p: md.version(p) for p in ("uvicorn", "starlette", "httpx", "psycopg", "sqlalchemy", "dagster", "uvloop", "httptools")}
    except Exception:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _mem_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Proc(tuple):
    """(comm, cpu seconds, ppid, database): database is set for PostgreSQL backends only."""

    comm = property(lambda self: self[0])
    cpu = property(lambda self: self[1])
    ppid = property(lambda self: self[2])
    database = property(lambda self: self[3])


def _backend_database(pid: int) -> str | None:
    """The database a PostgreSQL backend serves, from its process title
    ("postgres: 15/main: user dbname 127.0.0.1(5555) idle"); None for background processes."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    parts = title.split(": ", 2)
    if len(parts) < 3:
        return None
    rest = parts[2].split()
    if len(rest) >= 3 and ("(" in rest[2] or rest[2] == "[local]"):
        return rest[1]
    return None


def process_cpu() -> dict[int, Proc]:
    """Every process on the machine, by pid."""
    out: dict[int, Proc] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1: raw.rfind(")")]
        fields = raw.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        database = _backend_database(pid) if comm in ("postgres", "postmaster") else None
        out[pid] = Proc((comm, (int(fields[11]) + int(fields[12])) / tick, int(fields[1]), database))
    return out


def cpu_split(before: dict[int, Proc], after: dict[int, Proc], mine: set[int], databases: set[str]) -> dict[str, float]:
    """CPU seconds between two snapshots: `postgres` (background processes and backends of
    `databases`), `kernel` (kernel threads: loopback networking, I/O), `other` (everything
    else that is not in `mine`, including backends of other databases: another workload on
    the machine competing for the same CPUs)."""
    split = {"postgres": 0.0, "kernel": 0.0, "other": 0.0}
    for pid, proc in after.items():
        if pid in mine:
            continue
        delta = proc.cpu - (before[pid].cpu if pid in before else 0.0)
        if proc.comm in ("postgres", "postmaster") and (proc.database is None or proc.database in databases):
            split["postgres"] += delta
        elif proc.ppid == 2 or pid == 2:
            split["kernel"] += delta
        else:
            split["other"] += delta
    return split


def system_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return (total - idle) / tick, total / tick


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
