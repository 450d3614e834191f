"""A real Prefect server in a subprocess, for the tests that go the way the UI does.

The server runs on SQLite, which takes one writer at a time. An API call that reads and then
writes in a deferred transaction (``POST /flow_runs/{id}/resume``, ``create_flow_run``) fails
at once with "database is locked" if another connection commits in between, and Prefect
answers that with a 503 its own client retries. So the test server starts with no background
service the tests do not use (the scheduler would also insert a hundred runs per scheduled
drill and start them while a test runs), every request goes through Prefect's own HTTP client
(its retry of 429/502/503/408, nothing more), and the server counts as up once its database
answers (``/ready``), not when the web app does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sandbox.testing.environment import free_port


@dataclass
class PrefectServer:
    api: str
    client: httpx.Client

    def deployment_id(self, flow: str, deployment: str, timeout_s: float = 300) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            r = self.client.get(f"/deployments/name/{flow}/{deployment}")
            if r.status_code == 200:
                return str(r.json()["id"])
            time.sleep(1)
        raise TimeoutError(f"deployment {flow}/{deployment} never appeared")

    def run(self, deployment_id: str, parameters: dict[str, Any] | None = None, **body: Any) -> str:
        r = self.create_run(deployment_id, parameters, **body)
        r.raise_for_status()
        return str(r.json()["id"])

    def create_run(
        self, deployment_id: str, parameters: dict[str, Any] | None = None, **body: Any
    ) -> httpx.Response:
        """``POST /deployments/{id}/create_flow_run`` as the UI's custom run form sends it."""
        return self.client.post(
            f"/deployments/{deployment_id}/create_flow_run",
            json={"parameters": parameters or {}, **body},
        )

    def deployments(self) -> list[dict[str, Any]]:
        r = self.client.post("/deployments/filter", json={})
        r.raise_for_status()
        return list(r.json())

    def run_input(self, flow_run_id: str, key: str) -> Any:
        r = self.client.get(f"/flow_runs/{flow_run_id}/input/{key}")
        r.raise_for_status()
        return r.json()

    def state(self, flow_run_id: str) -> dict[str, Any]:
        r = self.client.get(f"/flow_runs/{flow_run_id}")
        r.raise_for_status()
        return dict(r.json()["state"] or {})

    def wait_state(
        self, flow_run_id: str, types: set[str], timeout_s: float = 420
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.state(flow_run_id)
            if state.get("type") in types:
                return state
            time.sleep(1)
        raise TimeoutError(
            f"flow run {flow_run_id} stuck in {state.get('type')} {state.get('name')}"
        )

    def artifacts(self, flow_run_id: str) -> list[dict[str, Any]]:
        r = self.client.post(
            "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
        )
        r.raise_for_status()
        return list(r.json())


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# Starting a Prefect server (migrations on a fresh database) is part of a server-backed test's
# setup; on a loaded two-core machine it alone can take minutes.
SERVER_TEST_TIMEOUT_S = 900

# Background services of ``prefect server start``; each writes to the database on its own clock.
SERVICES = (
    "cancellation_cleanup",
    "event_persister",
    "event_logger",
    "foreman",
    "late_runs",
    "scheduler",
    "pause_expirations",
    "repossessor",
    "cleanup_reconciler",
    "task_run_recorder",
    "triggers",
)


def server_env(
    home: Path, *, services: tuple[str, ...] = (), database: str | None = None
) -> dict[str, str]:
    """Environment for a test's Prefect server: its own database (SQLite under ``home``, or
    the ``database`` URL), only the named background services on, no analytics."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": database
        or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    for name in SERVICES:
        env[f"PREFECT_SERVER_SERVICES_{name.upper()}_ENABLED"] = str(name in services).lower()
    return env


def wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server's database answers (``/ready``), or fail with the server's log."""
    deadline = time.monotonic() + SERVER_TEST_TIMEOUT_S / 2
    while True:
        try:
            if client.get("/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Prefect server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)


def start_server(
    home: Path, *, services: tuple[str, ...] = (), database: str | None = None
) -> tuple[subprocess.Popen[bytes], PrefectServer]:
    port = free_port()
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=server_env(home, services=services, database=database),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    # Probing: plain httpx (a refused connection is expected until the server listens).
    with httpx.Client(base_url=api, timeout=10) as probe:
        try:
            wait_ready(probe, proc, home / "server.log")
        except BaseException:
            stop(proc)
            raise
    # Prefect's own client: its retries of 429/502/503/408, nothing more. Imported here so
    # that importing the test support loads no Prefect.
    from prefect.client.base import PrefectHttpxSyncClient

    client = PrefectHttpxSyncClient(base_url=api, timeout=30, raise_on_all_errors=False)
    return proc, PrefectServer(api=api, client=client)


def drain_clients() -> None:
    """Send the logs and events this process's Prefect still holds, and stop the workers
    that send them: before the server they go to stops (else a later test's teardown waits
    on their retries against a server that is gone), as Prefect's own test harness does."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        with suppress(RuntimeError):  # never started
            logs = APILogWorker.instance().drain()
            if inspect.isawaitable(logs):
                await logs
        events = EventsWorker.drain_all()
        if inspect.isawaitable(events):
            await events

    run_coro_as_sync(drain())


@contextmanager
def running_server(
    home: Path, *, services: tuple[str, ...] = (), database: str | None = None
) -> Iterator[PrefectServer]:
    """:func:`start_server` for the block: its client closed and its process group stopped
    however the block ends."""
    proc, server = start_server(home, services=services, database=database)
    try:
        yield server
    finally:
        server.client.close()
        stop(proc)


@contextmanager
def reporting_to(server: PrefectServer) -> Iterator[None]:
    """Flows run in this process report to ``server`` for the block: its client retrying a
    busy SQLite's 503s more times than by default, its logs and events sent before the block
    ends (the server may stop right after)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.api, PREFECT_CLIENT_MAX_RETRIES: 10}):
        try:
            yield
        finally:
            drain_clients()


def resume(server: PrefectServer, flow_run_id: str, run_input: dict[str, Any]) -> dict[str, Any]:
    """What the UI's form does: resume a paused run with its input."""
    r = server.client.post(f"/flow_runs/{flow_run_id}/resume", json={"run_input": run_input})
    r.raise_for_status()
    return dict(r.json())
