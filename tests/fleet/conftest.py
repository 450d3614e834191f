"""Fixtures for fleets: the sandbox fleet (configs/fleets/sandbox.yaml, two environments in
two waves) provisioned once for the module, images pushed in both regions of each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from configs.fleet import load_fleet
from flows.provision import provision
from sandbox.control import SandboxControl
from sandbox.testing import Stack, push_images
from tests.support import fresh_account

FLEET = "configs/fleets/sandbox.yaml"


@pytest.fixture(scope="module")
def fleet_stacks(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[dict[str, Stack]]:
    """Each environment of the sandbox fleet, by its name in the fleet file, provisioned."""
    fresh_account(aws_endpoint, moto_as_aws)
    stacks = {}
    for name, member in load_fleet(FLEET).members.items():
        result = provision(config=str(member.source))
        assert result["outcome"] == "succeeded", result.get("error")
        push_images(member.cfg)
        stacks[name] = Stack(cfg=member.cfg, control=SandboxControl(aws_endpoint))
    yield stacks
