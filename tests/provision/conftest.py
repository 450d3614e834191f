"""Fixtures for the provision runbook (helpers: ``sandbox.testing`` and ``tests/support.py``).

* ``account``: a fresh, empty account for one test (only the public hosted zone).
* ``moto_as_aws`` (tests/conftest.py): a module-wide monkeypatch for module-scoped stacks.
"""

from __future__ import annotations

import pytest

from configs.models import Config
from tests.support import fresh_account


@pytest.fixture
def account(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> Config:
    """A fresh, empty account for one test."""
    return fresh_account(aws_endpoint, monkeypatch)
