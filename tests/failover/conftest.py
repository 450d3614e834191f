"""Fixtures for failover and failback: a provisioned stack whose images are in ECR in both
regions (as CI with registry replication leaves them), read back with plain boto3
(``sandbox.testing.Stack``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.testing import Stack
from tests.support import provisioned_stack

Build = Callable[[Path], tuple[Stack, str]]


@pytest.fixture
def stack(aws_endpoint: str, prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """A fresh account, provisioned in both regions, images pushed (one per test: failover
    changes it)."""
    return provisioned_stack(aws_endpoint, monkeypatch)


@pytest.fixture
def build(aws_endpoint: str, prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> Build:
    """Provision a fresh account from a config file, images pushed: (stack, config path)."""

    def made(path: Path) -> tuple[Stack, str]:
        return provisioned_stack(aws_endpoint, monkeypatch, str(path)), str(path)

    return made
