"""Fixtures for failover and failback: a provisioned stack whose images are in ECR in both
regions (as CI with registry replication leaves them), read back with plain boto3
(``sandbox.testing.Stack``)."""

from __future__ import annotations

import pytest

from sandbox.testing import Stack
from tests.support import provisioned_stack


@pytest.fixture
def stack(aws_endpoint: str, prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """A fresh account, provisioned in both regions, images pushed (one per test: failover
    changes it)."""
    return provisioned_stack(aws_endpoint, monkeypatch)
