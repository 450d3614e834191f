"""Fixtures for the app, edge and DNS layer steps.

* ``net``: the network prerequisites (VPC, public/app/data subnets in every AZ, the four
  security groups) made with plain boto3, as the network layer would leave them.
* ``mutations``: counts mutating calls made through ``connect(cfg)`` (a ``before-call`` hook),
  so a dry run can be shown to call nothing that changes AWS.
* ``faithful_moto``: the session moto server runs in this process; this fixture makes it return
  what AWS returns where moto 5.2 drops a field the steps compare (each patch names the gap).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from configs.layout import subnet_plan
from configs.models import Config
from configs.names import Role, names_for
from tasks.aws import connect, is_mutating


@dataclass
class Net:
    region: str
    vpc_id: str
    subnets: dict[str, list[str]]
    security_groups: dict[str, str]


def plain(cfg: Config, service: str, region: str) -> Any:
    """A boto3 client outside tierbook's factory: for fixtures and for drifting things by hand."""
    return boto3.client(
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
def faithful_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Patch the in-process moto where it drops fields AWS returns."""
    from moto import settings
    from moto.sqs.models import Queue

    # SQS: RedriveAllowPolicy is stored by SetQueueAttributes but never returned.
    original_attributes = Queue.attributes

    def attributes(self: Any) -> dict[str, Any]:
        out = original_attributes.fget(self)  # type: ignore[attr-defined]
        allow = getattr(self, "redrive_allow_policy", None)
        if allow:
            out["RedriveAllowPolicy"] = allow
        return out  # type: ignore[no-any-return]

    monkeypatch.setattr(Queue, "attributes", property(attributes))
    # ACM: DNS-validated certificates are issued at once (the validation record is ours).
    monkeypatch.setattr(settings, "ACM_VALIDATION_WAIT", 0)
    _ecs_create_service_keeps_settings(monkeypatch)
    _cloudfront_keeps_origin_access(monkeypatch)
    yield


def _ecs_create_service_keeps_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """ECS: CreateService ignores deploymentConfiguration, healthCheckGracePeriodSeconds, ...
    (UpdateService keeps them)."""
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.create_service

    def create_service(self: Any) -> Any:
        result = original(self)
        service = self.ecs_backend._get_service(
            self._get_param("cluster", "default"), self._get_param("serviceName")
        )
        for param, attr in (
            ("deploymentConfiguration", "deployment_configuration"),
            ("healthCheckGracePeriodSeconds", "health_check_grace_period_seconds"),
            ("enableECSManagedTags", "enable_ecs_managed_tags"),
        ):
            if self._get_param(param) is not None:
                setattr(service, attr, self._get_param(param))
        return result

    monkeypatch.setattr(EC2ContainerServiceResponse, "create_service", create_service)


def _cloudfront_keeps_origin_access(monkeypatch: pytest.MonkeyPatch) -> None:
    """CloudFront: an origin's OriginAccessControlId and S3OriginConfig are dropped."""
    from moto.cloudfront import models

    original_init = models.Origin.__init__

    def init(self: Any, origin: dict[str, Any]) -> None:
        original_init(self, origin)
        self.origin_access_control_id = origin.get("OriginAccessControlId", "")
        if "S3OriginConfig" in origin:
            self.s3_origin_config = origin["S3OriginConfig"]

    monkeypatch.setattr(models.Origin, "__init__", init)
