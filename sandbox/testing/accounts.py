"""Accounts in the emulator: emptied, seeded with what provision expects, read and broken with
plain boto3 (clients outside tierbook's factory, so they never count as the runbook's calls)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from configs import load_config
from configs.layout import subnet_plan
from configs.models import Config
from configs.names import Role, names_for
from sandbox.control import SandboxControl
from sandbox.testing.environment import CONFIG, ROOT
from sandbox.testing.servers import TEST_TIMINGS

if TYPE_CHECKING:
    import pytest

ZONE = "example.com"
"""The public hosted zone the sandbox config's records live in."""


def plain(cfg: Config, service: str, region: str | None = None) -> Any:
    """A boto3 client outside tierbook (default region: the primary): for making and
    breaking things in tests and for reading the emulator's state."""
    return boto3.client(  # type: ignore[call-overload]  # service is a plain str
        service,
        endpoint_url=cfg.aws.endpoint_url,
        region_name=region or cfg.regions.primary,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


def reset_aws(endpoint: str, values: Mapping[str, float] = TEST_TIMINGS) -> None:
    """Empty the emulator: resources, faults, pending progressions; timings back to ``values``."""
    control = SandboxControl(endpoint)
    # Faults first: the sandbox resets moto through its own front door, which a "down" rule
    # for us-east-1 (the region of an unsigned request) would hold and then fail with a 504.
    control.clear_faults()
    control.reset()
    control.timings(**values)


def fresh_account(endpoint: str, mp: pytest.MonkeyPatch, path: str = CONFIG) -> Config:
    """An empty account with only what provision expects to exist (the public hosted zone),
    and the config at ``path`` aimed at it (``TIERBOOK_AWS_ENDPOINT_URL`` set through ``mp``)."""
    reset_aws(endpoint)
    mp.setenv("TIERBOOK_AWS_ENDPOINT_URL", endpoint)
    cfg = load_config(ROOT / path)
    plain(cfg, "route53").create_hosted_zone(Name=ZONE, CallerReference="tests")
    return cfg


def web_target_group(cfg: Config, name: str, vpc: str, region: str | None = None) -> str:
    """A target group for the web service as someone else's stack might have it; its ARN."""
    return str(
        plain(cfg, "elbv2", region).create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=8080,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath="/healthz",
        )["TargetGroups"][0]["TargetGroupArn"]
    )


@dataclass
class Net:
    region: str
    vpc_id: str
    subnets: dict[str, list[str]]
    security_groups: dict[str, str]


def make_network(cfg: Config, role: Role) -> Net:
    """The network layer's result made with plain boto3: the VPC, public/app/data subnets in
    every AZ, the four security groups."""
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
            GroupName=names.security_group(tier), Description=tier, VpcId=vpc
        )["GroupId"]
        for tier in ("alb", "app", "data", "endpoints")
    }
    return Net(region=region, vpc_id=vpc, subnets=subnets, security_groups=sgs)
