"""A real Prefect server and ``tierbook serve`` in subprocesses, for the UI-path tests
(``sandbox.testing.prefect_server_process`` and ``served_process``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.testing import PrefectServer, Stack, prefect_server_process, served_process
from tests.support import provisioned_stack


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with prefect_server_process(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


@pytest.fixture(scope="session")
def served(
    prefect_server: PrefectServer, aws_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """``tierbook serve`` for the sandbox config, against the real server and the session AWS."""
    with served_process(tmp_path_factory.mktemp("served"), prefect_server.api, aws_endpoint) as log:
        yield log


@pytest.fixture
def stack(aws_endpoint: str, prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """A fresh account, provisioned in both regions, images pushed (for the failover)."""
    return provisioned_stack(aws_endpoint, monkeypatch)
