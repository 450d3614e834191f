"""Fixtures for the drills and the audit.

``provisioned`` builds one stack with the provision runbook from an empty account (module
scope: the slow part); the drill tests then run against it and read the emulator's state with
plain boto3 (``plain``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from configs.models import Config
from tests.provision.conftest import fresh_account, moto_as_aws, plain, reset_aws

CONFIG = "configs/sandbox.yaml"

__all__ = ["CONFIG", "fresh_account", "moto_as_aws", "plain", "reset_aws"]


@pytest.fixture(scope="module")
def provisioned(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Config]:
    from flows.provision import provision

    cfg = fresh_account(aws_endpoint, moto_as_aws)
    result = provision(config=CONFIG)
    assert result["outcome"] == "succeeded", result.get("error")
    yield cfg
