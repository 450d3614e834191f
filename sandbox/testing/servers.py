"""The emulators tests and benchmarks run against, each on a free port of 127.0.0.1.

* :func:`running_sandbox`: the sandbox (moto + progressions + faults) in a thread of this
  process, with :data:`TEST_TIMINGS`;
* :func:`sandbox_process`: the same as ``python -m sandbox``, for what must survive this process;
* :func:`moto_process`: plain ``moto.server`` (no progressions, no faults), the baseline some
  benchmarks measure against;
* :func:`status_server`: a local HTTP endpoint whose answer a test sets (a health check URL);
* :func:`postgres`: a throwaway PostgreSQL for a Prefect server that takes concurrent writers
  (SQLite takes one at a time).
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from sandbox.settings import Timings
from sandbox.testing.environment import free_port

TEST_TIMINGS: dict[str, float] = {
    "ecs_deployment_seconds": 0.3,
    "ecs_task_replace_seconds": 0.3,
    "rds_create_seconds": 0.3,
    "rds_modify_seconds": 0.3,
    "rds_snapshot_seconds": 0.3,
    "route53_sync_seconds": 0.3,
    "codebuild_seconds": 0.3,
    "replica_lag_seconds": 1.0,
    "cache_global_seconds": 0.3,
}
"""Progressions short enough for tests, long enough that a runbook must wait on them."""

START_TIMEOUT_S = 60.0


@dataclass
class Sandbox:
    endpoint: str
    control: SandboxControl
    pid: int | None = None  # its process, when it runs in one of its own

    def cpu_seconds(self) -> float | None:
        """CPU seconds its process has used so far (Linux's /proc), else None."""
        return cpu_seconds(self.pid) if self.pid is not None else None


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds process ``pid`` has used so far (Linux's /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listening_pid(port: int) -> int | None:
    """The local process listening on TCP ``port`` (Linux's /proc; one this user may look
    into), else None: an emulator started elsewhere, whose CPU a benchmark reads."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(f"socket:[{cols[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (Linux's /proc/stat), else 0s: how
    busy every process was between two readings, servers and emulators included."""
    try:
        ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def timings(values: Mapping[str, float] = TEST_TIMINGS) -> Timings:
    out = Timings()
    out.update(dict(values))
    return out


@contextmanager
def running_sandbox(values: Mapping[str, float] = TEST_TIMINGS) -> Iterator[Sandbox]:
    """The sandbox in a thread of this process, stopped after the block."""
    with SandboxServer(port=0, timings=timings(values)) as server:
        yield Sandbox(server.endpoint, SandboxControl(server.endpoint))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _until_up(proc: subprocess.Popen[bytes], up: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not up():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"{what} did not start (exit code {proc.poll()})")
        time.sleep(0.1)


@contextmanager
def sandbox_process(values: Mapping[str, float] = TEST_TIMINGS) -> Iterator[Sandbox]:
    """``python -m sandbox`` on a free port, stopped (and waited for) after the block."""
    port = free_port()
    settings = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), *settings],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sandbox = Sandbox(
        f"http://127.0.0.1:{port}", SandboxControl(f"http://127.0.0.1:{port}"), proc.pid
    )
    try:
        _until_up(proc, sandbox.control.healthy, "the sandbox")
        yield sandbox
    finally:
        _stop(proc)


@contextmanager
def moto_process() -> Iterator[str]:
    """Plain ``moto.server`` on a free port (its endpoint), stopped after the block."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up() -> bool:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
        except OSError:
            return False
        return True

    try:
        _until_up(proc, up, "moto.server")
        yield url
    finally:
        _stop(proc)


@contextmanager
def status_server() -> Iterator[dict[str, Any]]:
    """A local HTTP endpoint answering GET with the status the caller sets in the yielded
    dict (``state["status"]``, 200 at first); its URL is ``state["url"]``."""
    state: dict[str, Any] = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class NoPostgres(RuntimeError):
    """PostgreSQL is not installed here (its ``initdb`` is not on the PATH)."""


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL on a free port of 127.0.0.1 (a fresh cluster in a temporary
    folder, ``fsync`` off, trust authentication): a Prefect database URL for it
    (``postgresql+asyncpg``), stopped and removed after the block. PostgreSQL refuses to run
    as root, so as root it runs as ``nobody``. Raises :class:`NoPostgres` when not installed."""
    tools = {name: shutil.which(name) for name in ("initdb", "pg_ctl", "psql")}
    if None in tools.values():
        raise NoPostgres("PostgreSQL is not installed (initdb, pg_ctl or psql not on the PATH)")
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    folder = tempfile.mkdtemp(prefix="tierbook-pg-")
    os.chmod(folder, 0o777)  # the cluster's server (nobody, as root) writes its socket here
    data, port = f"{folder}/data", free_port()

    def run(tool: str, *args: str, check: bool = True) -> None:
        command = [*as_user, str(tools[tool]), *args]
        subprocess.run(command, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    run("initdb", "-D", data, "-A", "trust", "-U", "prefect")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        run("pg_ctl", "-D", data, "-o", options, "-l", f"{folder}/log", "-w", "start")
        address = ("-h", "127.0.0.1", "-p", str(port), "-U", "prefect")
        run("psql", *address, "-d", "postgres", "-c", "CREATE DATABASE prefect")
        yield f"postgresql+asyncpg://prefect@127.0.0.1:{port}/prefect"
    finally:
        run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)
