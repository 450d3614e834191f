"""Fixtures for the deploy runbook: one provisioned stack per module, and a local HTTP server
whose answer a test sets. Images are pushed as CI would with ``sandbox.testing.push``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from configs.models import Config
from flows.provision import provision
from sandbox.testing import CONFIG, status_server
from tests.support import fresh_account


@pytest.fixture(scope="module")
def stack(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Config]:
    """Both regions provisioned once for the module (the slow part)."""
    cfg = fresh_account(aws_endpoint, moto_as_aws)
    provision(config=CONFIG)
    yield cfg


@pytest.fixture
def http_server() -> Iterator[dict[str, Any]]:
    """A local HTTP server whose answer the test sets."""
    with status_server() as state:
        yield state
