"""Fixtures for the app, edge and DNS layer steps.

* ``net`` / ``dr_net``: the network prerequisites (VPC, public/app/data subnets in every AZ,
  the four security groups) made with plain boto3, as the network layer would leave them.
* ``mutations``: counts mutating calls made through ``connect(cfg)`` (a ``before-call`` hook),
  so a dry run can be shown to call nothing that changes AWS.
* ``faithful_moto``: kept for the tests that name it; the sandbox applies those fixes itself.
"""

from __future__ import annotations

import pytest

from configs.models import Config
from sandbox.testing import Mutations, Net, make_network
from tests.support import watch


@pytest.fixture
def net(sandbox_cfg: Config, faithful_moto: None) -> Net:
    return make_network(sandbox_cfg, "primary")


@pytest.fixture
def dr_net(sandbox_cfg: Config, faithful_moto: None) -> Net:
    return make_network(sandbox_cfg, "dr")


@pytest.fixture
def mutations(sandbox_cfg: Config) -> Mutations:
    """Registered before any client of ``connect(cfg)`` exists, so every one carries it."""
    return watch(sandbox_cfg)


@pytest.fixture
def faithful_moto() -> None:
    """The sandbox already puts back what moto drops (``sandbox/moto_fixes.py``)."""
