"""Fixtures for the drills and the audit.

``provisioned`` builds one stack with the provision runbook from an empty account (module
scope: the slow part); the drill tests then run against it and read the emulator's state with
plain boto3 (``sandbox.testing.plain``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from configs.models import Config
from flows.provision import provision
from sandbox.testing import CONFIG
from tests.support import fresh_account


@pytest.fixture(scope="module")
def provisioned(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Config]:
    cfg = fresh_account(aws_endpoint, moto_as_aws)
    result = provision(config=CONFIG)
    assert result["outcome"] == "succeeded", result.get("error")
    yield cfg
