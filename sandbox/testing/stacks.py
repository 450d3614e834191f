"""A provisioned stack as the deploy, failover and drill tests find it: images pushed as CI
with registry replication would leave them, and its parts read back with plain boto3."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from configs.models import Config
from configs.names import Role, names_for, origin_name
from sandbox.control import SandboxControl
from sandbox.testing.accounts import plain

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
"""One image manifest, the same for every service (failover only needs a tag to exist)."""


def manifest(seed: str) -> str:
    """A synthetic image manifest whose digests derive from ``seed``."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1000,
                "digest": f"sha256:{digest}",
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 2000,
                    "digest": f"sha256:{digest[::-1]}",
                }
            ],
        }
    )


def push(cfg: Config, svc: str, tag: str, *, dr: bool = True) -> str:
    """Push ``svc:tag`` with plain boto3 (primary, and DR as replication would); its digest."""
    body = manifest(f"{svc}:{tag}")
    digest = ""
    roles: tuple[Role, ...] = ("primary", "dr") if dr else ("primary",)
    for role in roles:
        names = names_for(cfg, role)
        got = plain(cfg, "ecr", names.region).put_image(
            repositoryName=names.repository(svc), imageManifest=body, imageTag=tag
        )
        digest = got["image"]["imageId"]["imageDigest"]
    return str(digest)


def push_images(cfg: Config, tag: str = "1.0.0") -> None:
    """``web:tag`` and ``worker:tag`` in both regions' repositories."""
    roles: tuple[Role, ...] = ("primary", "dr")
    for role in roles:
        names = names_for(cfg, role)
        ecr = plain(cfg, "ecr", names.region)
        for svc in ("web", "worker"):
            ecr.put_image(
                repositoryName=names.repository(svc), imageManifest=MANIFEST, imageTag=tag
            )


def service(cfg: Config, svc: str, role: Role = "primary") -> dict[str, Any]:
    names = names_for(cfg, role)
    return dict(
        plain(cfg, "ecs", names.region).describe_services(
            cluster=names.cluster, services=[names.service(svc)]
        )["services"][0]
    )


def taskdef(cfg: Config, arn: str, role: Role = "primary") -> dict[str, Any]:
    region = names_for(cfg, role).region
    return dict(
        plain(cfg, "ecs", region).describe_task_definition(taskDefinition=arn)["taskDefinition"]
    )


def revisions(cfg: Config, svc: str, role: Role = "primary") -> list[str]:
    names = names_for(cfg, role)
    return list(
        plain(cfg, "ecs", names.region).list_task_definitions(familyPrefix=names.task_family(svc))[
            "taskDefinitionArns"
        ]
    )


@dataclass
class Stack:
    """A provisioned environment and the emulator it lives in, read with plain boto3."""

    cfg: Config
    control: SandboxControl

    def client(self, service: str, role: Role = "primary") -> Any:
        return plain(self.cfg, service, names_for(self.cfg, role).region)

    def db(self, role: Role) -> dict[str, Any]:
        rds = self.client("rds", role)
        return dict(
            rds.describe_db_instances(DBInstanceIdentifier=names_for(self.cfg, role).db_instance)[
                "DBInstances"
            ][0]
        )

    def service(self, role: Role, svc: str) -> dict[str, Any]:
        return service(self.cfg, svc, role)

    def records(self) -> dict[str, dict[str, Any]]:
        """The failover record of each region, by role."""
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
        return [a.lower() for a in self.control.dns_answer(origin_name(self.cfg))]

    def test_dns_answer(self) -> list[str]:
        """The same through Route 53's ``TestDNSAnswer`` API (its control plane must answer)."""
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
