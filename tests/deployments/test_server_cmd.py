"""``tierbook server --port N``: the UI it serves talks to the API on port N."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sandbox.testing import ROOT, free_port
from sandbox.testing.prefect import SERVER_TEST_TIMEOUT_S, server_env, stop, wait_ready

pytestmark = [pytest.mark.timeout(SERVER_TEST_TIMEOUT_S)]


def test_the_ui_talks_to_the_api_of_the_server_it_came_with(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **server_env(tmp_path),
        "PREFECT_SERVER_UI_ENABLED": "true",
        # A shell that still points at another server must not send the UI there.
        "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=10) as client:
            wait_ready(client, proc, log)
            settings = client.get(f"http://127.0.0.1:{port}/ui-settings").json()
        assert settings["api_url"] == f"http://127.0.0.1:{port}/api"
    finally:
        stop(proc)
