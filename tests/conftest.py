"""Shared test harness.

* Prefect: one temporary API for the whole session (``prefect_test_harness``), with its own
  PREFECT_HOME so parallel sessions never share a database.
* tierbook: reports and state under a temporary TIERBOOK_HOME; poll intervals shrunk.
* AWS: ``sandbox`` is the embedded AWS (moto + progressions + faults) on a free port for the
  session (``aws_endpoint`` is its URL), reset between tests by ``clean_aws``; ``sandbox_cfg``
  is ``configs/sandbox.yaml`` pointed at it. Drive it with ``sandbox.control``.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.control import SandboxControl

ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="tierbook-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_TMP / "prefect"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.pop("PREFECT_API_URL", None)
os.environ["TIERBOOK_HOME"] = str(_TMP / "home")
os.environ["TIERBOOK_POLL_SCALE"] = "0.02"
os.environ.pop("TIERBOOK_AWS_ENDPOINT_URL", None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A Prefect API for tests that run flows (started once, ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


TEST_TIMINGS = {
    "ecs_deployment_seconds": 0.3,
    "ecs_task_replace_seconds": 0.3,
    "rds_create_seconds": 0.3,
    "rds_modify_seconds": 0.3,
    "rds_snapshot_seconds": 0.3,
    "route53_sync_seconds": 0.3,
    "codebuild_seconds": 0.3,
    "replica_lag_seconds": 1.0,
}


@dataclass
class Sandbox:
    endpoint: str
    control: SandboxControl


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The embedded AWS for the whole session, in a thread, with short timings."""
    from sandbox import SandboxServer, Timings

    timings = Timings()
    timings.update(TEST_TIMINGS)
    with SandboxServer(port=0, timings=timings) as server:
        yield Sandbox(server.endpoint, SandboxControl(server.endpoint))


@pytest.fixture(scope="session")
def aws_endpoint(sandbox: Sandbox) -> str:
    return sandbox.endpoint


@pytest.fixture
def clean_aws(sandbox: Sandbox) -> str:
    """A fresh account: no resources, no faults, default test timings."""
    sandbox.control.reset()
    sandbox.control.timings(**TEST_TIMINGS)
    from tasks.core.aws import forget_connections

    forget_connections()
    return sandbox.endpoint


@pytest.fixture
def sandbox_cfg(clean_aws: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``configs/sandbox.yaml`` aimed at this session's AWS endpoint, on a clean account."""
    from configs import load_config

    monkeypatch.setenv("TIERBOOK_AWS_ENDPOINT_URL", clean_aws)
    return load_config(ROOT / "configs" / "sandbox.yaml")
