"""Shared test harness.

* Prefect: one temporary API for the whole session (``prefect_test_harness``), with its own
  PREFECT_HOME so parallel sessions never share a database.
* tierbook: reports and state under a temporary TIERBOOK_HOME; poll intervals shrunk.
* AWS: ``aws_endpoint`` is a moto server on a free port for the session, reset between tests
  by ``clean_aws``; ``sandbox_cfg`` is ``configs/sandbox.yaml`` pointed at it.
"""

from __future__ import annotations

import os
import socket
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """A plain moto server for the session (the sandbox adds progressions and faults on top)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def clean_aws(aws_endpoint: str) -> str:
    req = urllib.request.Request(f"{aws_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    from tasks.aws import forget_connections

    forget_connections()
    return aws_endpoint


@pytest.fixture
def sandbox_cfg(clean_aws: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``configs/sandbox.yaml`` aimed at this session's AWS endpoint, on a clean account."""
    from configs import load_config

    monkeypatch.setenv("TIERBOOK_AWS_ENDPOINT_URL", clean_aws)
    return load_config(ROOT / "configs" / "sandbox.yaml")
