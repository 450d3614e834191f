"""The sandbox as a background process: start, status, stop, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.control import SandboxControl

DEFAULT_PORT = 5055


def home() -> Path:
    return Path(os.environ.get("TIERBOOK_HOME", Path.home() / ".tierbook"))


def state_file() -> Path:
    return home() / "sandbox.json"


@dataclass
class Running:
    pid: int
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of ours is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def status() -> Running | None:
    path = state_file()
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    running = Running(int(data["pid"]), data["host"], int(data["port"]))
    if alive(running.pid) and SandboxControl(running.endpoint).healthy():
        return running
    path.unlink(missing_ok=True)
    return None


def start(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    timings: str = "default",
    settings: list[str] | None = None,
    wait_s: float = 60,
) -> tuple[Running, bool]:
    """Start the sandbox in the background; returns (it, started_now)."""
    current = status()
    if current is not None:
        return current, False
    home().mkdir(parents=True, exist_ok=True)
    log = (home() / "sandbox.log").open("ab")
    cmd = [
        sys.executable,
        "-m",
        "sandbox",
        "--host",
        host,
        "--port",
        str(port),
        "--timings",
        timings,
    ]
    for kv in settings or []:
        cmd += ["--set", kv]
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    running = Running(proc.pid, host, port)
    control = SandboxControl(running.endpoint)
    deadline = time.monotonic() + wait_s
    while not control.healthy():
        if proc.poll() is not None or time.monotonic() > deadline:
            _terminate(proc.pid)
            raise RuntimeError(
                f"the sandbox did not start on {host}:{port}; see {home() / 'sandbox.log'}"
            )
        time.sleep(0.2)
    state_file().write_text(json.dumps({"pid": proc.pid, "host": host, "port": port}))
    return running, True


def stop(wait_s: float = 20) -> Running | None:
    """Stop the background sandbox and wait until its process is gone."""
    path = state_file()
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    running = Running(int(data["pid"]), data["host"], int(data["port"]))
    _terminate(running.pid, wait_s)
    path.unlink(missing_ok=True)
    return running


def _terminate(pid: int, wait_s: float = 20) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                finished, _ = os.waitpid(pid, os.WNOHANG)
                if finished:
                    return
            except ChildProcessError:
                if not alive(pid):
                    return
            time.sleep(0.1)
