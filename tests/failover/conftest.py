"""Fixtures for failover and failback: a provisioned stack whose images are in ECR in both
regions (as CI with registry replication leaves them), read back with plain boto3."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from configs.models import Config
from configs.names import Role, names_for
from flows.provision import provision
from sandbox.control import SandboxControl
from tests.provision.conftest import fresh_account, plain

CONFIG = "configs/sandbox.yaml"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": "sha256:" + "a" * 64,
        },
        "layers": [],
    }
)


def push_images(cfg: Config, tag: str = "1.0.0") -> None:
    for role in ("primary", "dr"):
        names = names_for(cfg, role)  # type: ignore[arg-type]
        ecr = plain(cfg, "ecr", names.region)
        for svc in ("web", "worker"):
            ecr.put_image(
                repositoryName=names.repository(svc), imageManifest=MANIFEST, imageTag=tag
            )


@dataclass
class Stack:
    cfg: Config
    control: SandboxControl

    def client(self, service: str, role: Role = "primary") -> Any:
        return plain(self.cfg, service, names_for(self.cfg, role).region)

    def db(self, role: Role) -> dict[str, Any]:
        rds = self.client("rds", role)
        return rds.describe_db_instances(
            DBInstanceIdentifier=names_for(self.cfg, role).db_instance
        )["DBInstances"][0]

    def service(self, role: Role, svc: str) -> dict[str, Any]:
        names = names_for(self.cfg, role)
        return self.client("ecs", role).describe_services(
            cluster=names.cluster, services=[names.service(svc)]
        )["services"][0]

    def records(self) -> dict[str, dict[str, Any]]:
        assert self.cfg.edge is not None
        r53 = self.client("route53")
        zone = r53.list_hosted_zones_by_name(DNSName=self.cfg.edge.hosted_zone)["HostedZones"][0][
            "Id"
        ]
        roles: tuple[Role, ...] = ("primary", "dr")
        ids = {names_for(self.cfg, role).record_set_id: role for role in roles}
        records = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        return {ids[r["SetIdentifier"]]: r for r in records if r.get("SetIdentifier") in ids}

    def answers(self) -> list[str]:
        """What resolvers get for the app's name: Route 53's data plane, as the sandbox
        evaluates its health checks (no control-plane call: it answers when us-east-1 is
        dark)."""
        from tasks.resources.certificates import origin_name

        return [a.lower() for a in self.control.dns_answer(origin_name(self.cfg))]

    def test_dns_answer(self) -> list[str]:
        """The same through Route 53's ``TestDNSAnswer`` API (its control plane must answer)."""
        from tasks.resources.certificates import origin_name

        assert self.cfg.edge is not None
        r53 = self.client("route53")
        zone = r53.list_hosted_zones_by_name(DNSName=self.cfg.edge.hosted_zone)["HostedZones"][0]
        got = r53.test_dns_answer(
            HostedZoneId=zone["Id"].split("/")[-1], RecordName=origin_name(self.cfg), RecordType="A"
        )
        return [a.lower() for a in got["RecordData"]]

    def alb_dns(self, role: Role) -> str:
        names = names_for(self.cfg, role)
        lb = self.client("elbv2", role).describe_load_balancers(Names=[names.alb])
        return str(lb["LoadBalancers"][0]["DNSName"])


@pytest.fixture
def stack(
    aws_endpoint: str,
    prefect_harness: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Stack:
    """A fresh account, provisioned in both regions, images pushed (one per test: failover
    changes it)."""
    cfg = fresh_account(aws_endpoint, monkeypatch)
    provision(config=CONFIG)
    push_images(cfg)
    return Stack(cfg=cfg, control=SandboxControl(aws_endpoint))
