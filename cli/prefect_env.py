"""Prefect, set up for a terminal: decided before ``prefect`` is imported.

* **Which API.** ``PREFECT_API_URL`` when it names a server that answers. Otherwise (none set,
  or it does not answer at 3 a.m.) this process starts its own temporary API — a uvicorn child
  in its own session, on a database kept under ``TIERBOOK_HOME`` (so no migrations after the
  first run) with Prefect's scheduling services off — *in the background*, while the CLI
  validates the config, imports the runbook and checks the account. A runbook never waits on
  its orchestrator being up, and the temporary API dies with the process (the child watches
  its parent, so even a killed CLI leaves nothing behind).
* **Where Prefect writes.** Prefect's local state (``PREFECT_HOME``) is
  ``$TIERBOOK_HOME/prefect`` and every log line Prefect would print (its banner, its workers'
  warnings, its server's tracebacks) goes to ``$TIERBOOK_HOME/logs/prefect.log``. Run logs
  still reach the API (and the UI) as usual. The terminal is tierbook's alone.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLI_PROMPT": "false",
    "PREFECT_UI_ENABLED": "false",
    "DO_NOT_TRACK": "1",  # the client's opt-out: no telemetry notice on an operator's terminal
}

# The temporary API only serves this process's runs: nothing to schedule, cancel or expire.
SERVER_ENV = {
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_EVENT_LOGGER_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}

API_STARTUP_TIMEOUT_S = 180.0

# Prefect's own logging config with every console handler pointed at a file.
LOGGING_YAML = """\
version: 1
disable_existing_loggers: False
formatters:
  standard:
    format: "%(asctime)s.%(msecs)03d | %(process)d | %(levelname)-7s | %(name)s - %(message)s"
    datefmt: "%Y-%m-%d %H:%M:%S"
handlers:
  file:
    level: 0
    class: logging.FileHandler
    formatter: standard
    filename: {log}
    delay: True
  api:
    level: 0
    class: prefect.logging.handlers.APILogHandler
  worker_api:
    level: 0
    class: prefect.logging.handlers.WorkerAPILogHandler
loggers:
  prefect:
    level: INFO
  prefect.extra:
    level: INFO
    handlers: [api]
    propagate: false
  prefect.flow_runs:
    level: NOTSET
    handlers: [api]
  prefect.task_runs:
    level: NOTSET
    handlers: [api]
  prefect.workers:
    level: NOTSET
    handlers: [worker_api]
  prefect.server:
    level: WARNING
  prefect._internal:
    level: WARNING
    propagate: false
    handlers: [file]
  uvicorn:
    level: WARNING
    handlers: [file]
    propagate: false
  fastapi:
    level: WARNING
    handlers: [file]
    propagate: false
root:
  level: WARNING
  handlers: [file]
"""


def tierbook_home() -> Path:
    return Path(os.environ.get("TIERBOOK_HOME") or Path.home() / ".tierbook")


def log_path() -> Path:
    """Where Prefect's own log lines go (named on the terminal when something went wrong)."""
    return tierbook_home() / "logs" / "prefect.log"


def api_answers(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalApi:
    """This process's temporary Prefect API (see the module docstring)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        """Start the server without waiting for it; return its API URL."""
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/api"
        log = log_path()
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli.local_api",
                    "--port",
                    str(port),
                    "--parent",
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env={**os.environ, **SERVER_ENV},
                cwd=Path(__file__).resolve().parent.parent,
                start_new_session=True,  # a Ctrl-C to the terminal is ours to handle
            )
        atexit.register(self.stop)
        return self.url

    def wait_ready(self, timeout_s: float = API_STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"the local Prefect API exited; see {log_path()}")
            if api_answers(self.url, timeout_s=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"the local Prefect API did not start in {timeout_s:g}s; see {log_path()}"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # nothing to flush: its database commits each request
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_local: LocalApi | None = None


def _write_logging_config() -> Path:
    home = tierbook_home()
    path = home / "prefect" / "logging.yml"
    text = LOGGING_YAML.format(log=log_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    log_path().parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def settle_environment() -> None:
    """Prefect's home, settings and logging under ``TIERBOOK_HOME``; no API decided yet."""
    if "prefect" in sys.modules:
        return
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(tierbook_home() / "prefect"))
    os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(_write_logging_config())


def choose_api() -> tuple[bool, str | None]:
    """Pick the Prefect API before ``prefect`` is imported (its settings are read then) and
    start the local one in the background when needed. Returns whether a local one was
    started, and a warning to show, if any."""
    global _local
    if "prefect" in sys.modules:
        raise RuntimeError("choose_api() must run before prefect is imported")
    settle_environment()
    url = os.environ.get("PREFECT_API_URL")
    warning = None
    if url and api_answers(url):
        return False, None
    if url:
        warning = f"Prefect server at {url} does not answer; running on a local API."
    _local = LocalApi()
    os.environ["PREFECT_API_URL"] = _local.start()
    return True, warning


def wait_for_api() -> None:
    """Block until the local API (if this process started one) answers."""
    if _local is not None:
        _local.wait_ready()


def shutdown_api() -> None:
    """Stop the local API now (it would also stop at exit)."""
    if _local is not None:
        with contextlib.suppress(Exception):
            _local.stop()


# -- when Prefect was imported before its logging could be pointed at the file ------------------
# (in-process callers: tests driving the CLI with a runner, a Python session)
def quiet_console() -> None:
    """Keep the terminal for tierbook's own output (see :class:`_OwnOutputOnly`)."""
    _quiet_console()


class _OwnOutputOnly(logging.Filter):
    """Let warnings from steps through (retries, skipped fences); drop Prefect's chatter and
    its failure tracebacks: the CLI prints the error and the timeline itself."""

    NOISY = (
        "prefect.server",
        "prefect._internal",
        "prefect.events",
        "uvicorn",
        "fastapi",
        "prefect.client",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.startswith(self.NOISY):
            return False
        if record.name.startswith("prefect") and str(record.msg).startswith(
            ("Finished in state", "Failed to write result")
        ):
            return False
        return not (record.name.startswith("prefect") and record.exc_info)


def _quiet_console() -> None:
    """Filter every Prefect console handler, including ones Prefect makes later on (it
    rebuilds its logging when settings change), by patching the handler class once."""
    from prefect.logging.handlers import PrefectConsoleHandler

    if getattr(PrefectConsoleHandler, "_tierbook_quiet", False):
        return
    own = _OwnOutputOnly()
    original = PrefectConsoleHandler.filter

    def quiet_filter(self: logging.Handler, record: logging.LogRecord) -> bool | logging.LogRecord:
        return own.filter(record) and original(self, record)

    PrefectConsoleHandler.filter = quiet_filter  # type: ignore[method-assign,assignment]
    PrefectConsoleHandler._tierbook_quiet = True  # type: ignore[attr-defined]
    logging.getLogger("prefect._internal").handlers.clear()
    logging.getLogger("prefect._internal").addHandler(logging.NullHandler())
