"""A real Prefect server and ``tierbook serve`` in subprocesses, for the tests that go the way
the UI does (deployments, paused runs resumed with input)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sandbox.testing.environment import CONFIG, ROOT, TEST_POLL_SCALE, free_port

START_TIMEOUT_S = 180.0


@dataclass
class PrefectServer:
    api: str
    client: httpx.Client

    def deployment_id(self, flow: str, deployment: str, timeout_s: float = 120) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            r = self.client.get(f"/deployments/name/{flow}/{deployment}")
            if r.status_code == 200:
                return str(r.json()["id"])
            time.sleep(1)
        raise TimeoutError(f"deployment {flow}/{deployment} never appeared")

    def run(self, deployment_id: str, parameters: dict[str, Any] | None = None) -> str:
        r = self.client.post(
            f"/deployments/{deployment_id}/create_flow_run", json={"parameters": parameters or {}}
        )
        r.raise_for_status()
        return str(r.json()["id"])

    def state(self, flow_run_id: str) -> dict[str, Any]:
        r = self.client.get(f"/flow_runs/{flow_run_id}")
        r.raise_for_status()
        return dict(r.json()["state"] or {})

    def wait_state(
        self, flow_run_id: str, types: set[str], timeout_s: float = 240
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


def resume(server: PrefectServer, flow_run_id: str, run_input: dict[str, Any]) -> dict[str, Any]:
    """What the UI's form does: resume a paused run with its input."""
    r = server.client.post(f"/flow_runs/{flow_run_id}/resume", json={"run_input": run_input})
    r.raise_for_status()
    return dict(r.json())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """The process group: the server's own workers go with it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _without_prefect() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}


@contextmanager
def prefect_server_process(home: Path) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free port with its state under ``home``."""
    port = free_port()
    env = {
        **_without_prefect(),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
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
            f"{port}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    client = httpx.Client(base_url=api, timeout=30)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Prefect server did not start: {(home / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(1)
        yield PrefectServer(api=api, client=client)
    finally:
        client.close()
        _stop(proc)
        log.close()


@contextmanager
def served_process(
    home: Path, api: str, aws_endpoint: str, *, poll_scale: float = TEST_POLL_SCALE
) -> Iterator[Path]:
    """``tierbook serve`` for the sandbox config against the Prefect API ``api`` and the
    emulator at ``aws_endpoint``; yields its log file."""
    env = {
        **_without_prefect(),
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TIERBOOK_AWS_ENDPOINT_URL": aws_endpoint,
        "TIERBOOK_HOME": str(home / "tierbook"),
        "TIERBOOK_POLL_SCALE": str(poll_scale),
        "PYTHONPATH": str(ROOT),
    }
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "-c", CONFIG],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield home / "serve.log"
    finally:
        _stop(proc)
        log.close()
