"""Fixtures for the app, edge and DNS layer steps.

* ``net``: the network prerequisites (VPC, public/app/data subnets in every AZ, the four
  security groups) made with plain boto3, as the network layer would leave them.
* ``mutations``: counts mutating calls made through ``connect(cfg)`` (a ``before-call`` hook),
  so a dry run can be shown to call nothing that changes AWS.
* ``faithful_moto``: kept for the tests that name it; the sandbox applies those fixes itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from configs.layout import subnet_plan
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect, is_mutating


@dataclass
class Net:
    region: str
    vpc_id: str
    subnets: dict[str, list[str]]
    security_groups: dict[str, str]


def plain(cfg: Config, service: str, region: str) -> Any:
    """A boto3 client outside tierbook's factory: for fixtures and for drifting things by hand."""
    return boto3.client(  # type: ignore[call-overload]  # service is a plain str
        service,
        endpoint_url=cfg.aws.endpoint_url,
        region_name=region,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


def make_network(cfg: Config, role: Role) -> Net:
    names = names_for(cfg, role)
    region = names.region
    net_cfg = getattr(cfg.network, role)
    ec2 = plain(cfg, "ec2", region)
    vpc = ec2.create_vpc(CidrBlock=net_cfg.cidr)["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": names.vpc}])
    subnets: dict[str, list[str]] = {"public": [], "app": [], "data": []}
    for (tier, az), cidr in subnet_plan(net_cfg).items():
        sid = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"][
            "SubnetId"
        ]
        subnets[tier].append(sid)
    sgs = {
        tier: ec2.create_security_group(
            GroupName=names.security_group(tier),
            Description=tier,
            VpcId=vpc,  # type: ignore[arg-type]
        )["GroupId"]
        for tier in ("alb", "app", "data", "endpoints")
    }
    return Net(region=region, vpc_id=vpc, subnets=subnets, security_groups=sgs)


@pytest.fixture
def net(sandbox_cfg: Config, faithful_moto: None) -> Net:
    return make_network(sandbox_cfg, "primary")


@pytest.fixture
def dr_net(sandbox_cfg: Config, faithful_moto: None) -> Net:
    return make_network(sandbox_cfg, "dr")


@dataclass
class Mutations:
    calls: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture
def mutations(sandbox_cfg: Config) -> Mutations:
    """Registered before any client exists, so every client of ``connect(cfg)`` carries it."""
    seen = Mutations()

    def hook(model: Any, **_: Any) -> None:
        if is_mutating(model.name):
            seen.calls.append(f"{model.service_model.service_name}:{model.name}")

    connect(sandbox_cfg).session.events.register("before-call.*.*", hook)
    return seen


@pytest.fixture
def faithful_moto() -> None:
    """The sandbox already puts back what moto drops (``sandbox/moto_fixes.py``)."""
