"""Fixtures for the UI-path tests: a real Prefect server (``sandbox.testing.prefect``) and
``tierbook serve`` in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.testing import ROOT
from sandbox.testing.prefect import PrefectServer, reporting_to, running_server, stop
from tests.failover.conftest import stack  # noqa: F401  (a provisioned stack, for the failover)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with running_server(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


@pytest.fixture(scope="session")
def prefect_harness(prefect_server: PrefectServer) -> Iterator[None]:
    """Flows run in this process (the ``stack`` fixture's provision) report to the same test
    server: one Prefect server per session here, not two on a loaded machine."""
    with reporting_to(prefect_server):
        yield


@pytest.fixture(scope="session")
def served(
    prefect_server: PrefectServer, aws_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """``tierbook serve`` for the sandbox config, against the real server and the session AWS."""
    home = tmp_path_factory.mktemp("served")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_API_URL": prefect_server.api,
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TIERBOOK_AWS_ENDPOINT_URL": aws_endpoint,
        "TIERBOOK_HOME": str(home / "tierbook"),
        "TIERBOOK_POLL_SCALE": "0.02",
        "PYTHONPATH": str(ROOT),
    }
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "-c", "configs/sandbox.yaml"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield home / "serve.log"
    finally:
        stop(proc)
