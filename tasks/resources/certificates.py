"""The TLS certificate of a region's load balancer.

A configured certificate is used as is (after checking it exists). Without one (the sandbox),
tierbook requests a DNS-validated ACM certificate for the domain and the ALB's origin name,
writes the validation records into the hosted zone, and waits until it is issued: an HTTPS
listener cannot use a certificate that is still pending.
"""

from __future__ import annotations

from typing import Any

from configs.errors import ConfigError, Problem
from configs.models import Config
from configs.names import Role, names_for, origin_name
from tasks.core.aws import connect, role_client
from tasks.core.changes import Change, StepResult, created, deleted, placeholder, result, updated
from tasks.core.retry import wait_for
from tasks.core.steps import step
from tasks.core.tags import tag_dict, tag_list
from tasks.resources.dns import find_zone_id

CERT_ISSUE_TIMEOUT_S = 900.0


@step("ensure {role} certificate")
def ensure_certificate(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """The configured certificate (checked to exist), or a DNS-validated one tierbook requests."""
    if cfg.edge is None:
        raise ConfigError(
            "config", [Problem("edge", "the load balancer needs an edge block (domain)")]
        )
    names = names_for(cfg, role)
    acm = connect(cfg).client("acm", names.region)
    given = cfg.edge.certificate_arn if role == "primary" else cfg.edge.dr_certificate_arn
    if given:
        acm.describe_certificate(CertificateArn=given)  # NotFound is an AwsError naming the ARN
        return StepResult(outputs={"certificate_arn": given})
    domain, alt = cfg.edge.domain, origin_name(cfg)
    found = _find_requested(acm, domain, names.tags("edge"))
    changes: list[Change] = []
    if found is None:
        changes.append(
            created(
                "acm:certificate",
                domain,
                names.region,
                {"validation": "DNS", "names": sorted({domain, alt})},
            )
        )
        if dry_run:
            return StepResult(
                changes=changes,
                outputs={"certificate_arn": placeholder("acm:certificate", domain)},
            )
        found = acm.request_certificate(
            DomainName=domain,
            SubjectAlternativeNames=sorted({domain, alt}),
            ValidationMethod="DNS",
            IdempotencyToken=f"tierbook{cfg.app}{cfg.env}"[:32].replace("-", ""),
            Tags=tag_list(names.tags("edge")),
        )["CertificateArn"]
    cert = acm.describe_certificate(CertificateArn=found)["Certificate"]
    if cert["Status"] != "ISSUED":
        changes += _validation_records(cfg, cert, dry_run)
        if not dry_run:
            wait_for(
                lambda: acm.describe_certificate(CertificateArn=found)["Certificate"]["Status"],
                until=lambda s: s == "ISSUED",
                failed=lambda s: None if s in ("PENDING_VALIDATION", "ISSUED") else s,
                what=f"certificate for {domain} to be issued",
                timeout_s=CERT_ISSUE_TIMEOUT_S,
            )
    return StepResult(changes=changes, outputs={"certificate_arn": found}, applied=not dry_run)


def _find_requested(acm: Any, domain: str, tags: dict[str, str]) -> str | None:
    for page in acm.get_paginator("list_certificates").paginate(
        CertificateStatuses=["PENDING_VALIDATION", "ISSUED"]
    ):
        for summary in page["CertificateSummaryList"]:
            if summary["DomainName"] != domain:
                continue
            have = tag_dict(
                acm.list_tags_for_certificate(CertificateArn=summary["CertificateArn"]).get("Tags")
            )
            if have.get("managed-by") == tags["managed-by"] and have.get("env") == tags["env"]:
                return str(summary["CertificateArn"])
    return None


def _validation_records(cfg: Config, cert: dict[str, Any], dry_run: bool) -> list[Change]:
    assert cfg.edge is not None
    zone = find_zone_id(cfg, cfg.edge.hosted_zone)
    records = {
        o["ResourceRecord"]["Name"]: o["ResourceRecord"]["Value"]
        for o in cert.get("DomainValidationOptions", [])
        if o.get("ResourceRecord")
    }
    if not records:
        return []
    change = updated("route53:record", "certificate validation", "global", {}, {"CNAME": records})
    if not dry_run:
        r53 = connect(cfg).client("route53", cfg.regions.primary)
        r53.change_resource_record_sets(
            HostedZoneId=zone,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": n,
                            "Type": "CNAME",
                            "TTL": 300,
                            "ResourceRecords": [{"Value": v}],
                        },
                    }
                    for n, v in sorted(records.items())
                ]
            },
        )
    return [change]


@step("delete {role} certificate")
def ensure_certificate_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Only the certificate tierbook requested; a configured one belongs to someone else."""
    if cfg.edge is None:
        return result([], dry_run)
    given = cfg.edge.certificate_arn if role == "primary" else cfg.edge.dr_certificate_arn
    if given:
        return StepResult(skipped="the configured certificate is not tierbook's to delete")
    names = names_for(cfg, role)
    acm = role_client(cfg, "acm", role)
    arn = _find_requested(acm, cfg.edge.domain, names.tags("edge"))
    if arn is None:
        return result([], dry_run)
    if not dry_run:
        acm.delete_certificate(CertificateArn=arn)
    return result([deleted("acm:certificate", cfg.edge.domain, names.region)], dry_run)
