"""Route 53: the hosted zone, the primary's health check, and the records that fail over.

The app name (or, behind CloudFront, its ``origin.`` name) has two alias records: PRIMARY to
the primary ALB, guarded by a health check on its health path, and SECONDARY to the DR ALB.
Route 53 moves traffic by itself when the primary fails its checks; the failover runbook
flips it on purpose. ``weighted`` does the same with weights 100/0 (a zero-weight record is
only used when every weighted record is unhealthy). Behind CloudFront, the domain itself is an
alias of the distribution.
"""

from __future__ import annotations

import uuid
from typing import Any

from configs.errors import NotFound
from configs.models import Config
from configs.names import Role, names_for, origin_name
from tasks.core.aws import connect
from tasks.core.changes import (
    Action,
    Change,
    StepResult,
    created,
    deleted,
    diff,
    placeholder,
    result,
    updated,
)
from tasks.core.steps import step
from tasks.core.tags import tag_dict, tag_list
from tasks.resources.cloudfront import find_distribution

CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"  # the fixed hosted zone of every CloudFront alias


def route53_client(cfg: Config) -> Any:
    """Route 53's control plane (its API is global, answered from us-east-1)."""
    return connect(cfg).client("route53", cfg.regions.primary)


def fqdn(name: str) -> str:
    return name.rstrip(".") + "."


def find_zone_id(cfg: Config, zone: str) -> str:
    """The public hosted zone named ``zone``; NotFound (exit 2) if there is none."""
    r53 = route53_client(cfg)
    for hz in r53.list_hosted_zones_by_name(DNSName=zone)["HostedZones"]:
        if hz["Name"] == fqdn(zone) and not hz.get("Config", {}).get("PrivateZone"):
            return str(hz["Id"].split("/")[-1])
    raise NotFound(f"no public hosted zone named {zone} (edge.hosted_zone)")


@step("ensure hosted zone")
def ensure_hosted_zone(cfg: Config, *, dry_run: bool = False) -> StepResult:
    """The public hosted zone of ``edge.hosted_zone``, created only when ``edge.manage_zone``."""
    assert cfg.edge is not None
    try:
        return StepResult(outputs={"zone_id": find_zone_id(cfg, cfg.edge.hosted_zone)})
    except NotFound:
        if not cfg.edge.manage_zone:
            raise
    change = Change(
        resource="route53:hosted-zone",
        name=cfg.edge.hosted_zone,
        action=Action.CREATE,
        region="global",
    )
    if dry_run:
        return StepResult(changes=[change], outputs={"zone_id": f"(zone {cfg.edge.hosted_zone})"})
    zone = route53_client(cfg).create_hosted_zone(
        Name=cfg.edge.hosted_zone,
        CallerReference=f"tierbook-{cfg.stack}-{cfg.edge.hosted_zone}",
        HostedZoneConfig={"Comment": f"{cfg.stack} (managed by tierbook)", "PrivateZone": False},
    )["HostedZone"]
    return StepResult(
        changes=[change], outputs={"zone_id": zone["Id"].split("/")[-1]}, applied=True
    )


def _zone_or_planned(cfg: Config, dry_run: bool) -> str:
    """The zone id; ``""`` on a plan where the zone itself is still to be created."""
    assert cfg.edge is not None
    try:
        return find_zone_id(cfg, cfg.edge.hosted_zone)
    except NotFound:
        if dry_run and cfg.edge.manage_zone:
            return ""
        raise


# tierbook's own load balancers answer HTTPS on 443 (tasks.resources.load_balancer).
DEFAULT_HC_PROTOCOL = "HTTPS"
DEFAULT_HC_PORTS = {"HTTP": 80, "HTTPS": 443}


def health_check_config(
    cfg: Config, alb_dns_name: str, like: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A check on ``alb_dns_name`` as the stack answers: what the config sets, else what
    ``like`` (the primary's existing check config) does, else tierbook's listener. Pure."""
    hc = cfg.dns.health_check
    given = hc.model_fields_set
    like = like if like and like.get("Type") in DEFAULT_HC_PORTS else {}

    def pick(field: str, key: str, default: Any) -> Any:
        value = getattr(hc, field)
        if field in given and value is not None:
            return value
        return like.get(key, default if value is None else value)

    protocol = pick("protocol", "Type", DEFAULT_HC_PROTOCOL)
    port = hc.port if hc.port is not None else like.get("Port", DEFAULT_HC_PORTS[protocol])
    out = {
        "Type": protocol,
        "FullyQualifiedDomainName": alb_dns_name,
        "ResourcePath": pick("path", "ResourcePath", hc.path),
        "Port": port,
        "RequestInterval": pick("interval_seconds", "RequestInterval", hc.interval_seconds),
        "FailureThreshold": pick("failure_threshold", "FailureThreshold", hc.failure_threshold),
    }
    if protocol == "HTTPS":
        out["EnableSNI"] = bool(like.get("EnableSNI", True))
    return out


def switch_refs(cfg: Config) -> tuple[str, str, str]:
    """(CALCULATED check, CLOUDWATCH_METRIC check, alarm) names of the DNS switch
    (:mod:`tasks.resources.dns_switch`), derived from the primary check's name so an adopted
    stack's carry its own names."""
    ref = names_for(cfg, "primary").health_check_reference
    return f"{ref}-switch", f"{ref}-alarm", f"{ref}-primary-out"


MUTABLE_HC = ("FullyQualifiedDomainName", "ResourcePath", "Port", "FailureThreshold", "EnableSNI")


def find_health_check(cfg: Config, role: Role = "primary") -> dict[str, Any] | None:
    """The health check tagged ``Name=<stack>-<role>``, if any."""
    return find_health_check_named(cfg, names_for(cfg, role).health_check_reference)


def find_health_check_named(cfg: Config, ref: str) -> dict[str, Any] | None:
    """The health check whose Name tag is ``ref``, if any."""
    r53 = route53_client(cfg)
    checks = [
        hc
        for page in r53.get_paginator("list_health_checks").paginate()
        for hc in page["HealthChecks"]
    ]
    for i in range(0, len(checks), 10):
        batch = checks[i : i + 10]
        tagged = r53.list_tags_for_resources(
            ResourceType="healthcheck", ResourceIds=[c["Id"] for c in batch]
        )
        for ts in tagged["ResourceTagSets"]:
            if tag_dict(ts.get("Tags")).get("Name") == ref:
                return next(c for c in batch if c["Id"] == ts["ResourceId"])
    return None


@step("ensure health check on {role} load balancer")
def ensure_health_check(
    cfg: Config,
    role: Role,
    alb_dns_name: str,
    like: dict[str, Any] | None = None,
    *,
    dry_run: bool = False,
) -> StepResult:
    """``like``: the config of a check to match (the primary's, for the DR one)."""
    names = names_for(cfg, role)
    r53, ref = route53_client(cfg), names.health_check_reference
    found = find_health_check(cfg, role)
    want = health_check_config(cfg, alb_dns_name, like or (found or {}).get("HealthCheckConfig"))
    tags = {**names.tags("dns"), "Name": ref}
    if found is None:
        change = created("route53:health-check", ref, "global", want)
        if dry_run:
            return StepResult(
                changes=[change],
                outputs={"health_check_id": placeholder("route53:health-check", ref)},
            )
        hc = r53.create_health_check(
            CallerReference=f"{ref}-{uuid.uuid4()}", HealthCheckConfig=want
        )["HealthCheck"]
        r53.change_tags_for_resource(
            ResourceType="healthcheck", ResourceId=hc["Id"], AddTags=tag_list(tags)
        )
        return StepResult(changes=[change], outputs={"health_check_id": hc["Id"]}, applied=True)
    have = found["HealthCheckConfig"]
    changes: list[Change] = []
    before, after = diff({k: want[k] for k in MUTABLE_HC if k in want}, have)
    if after:
        changes.append(updated("route53:health-check", ref, "global", before, after))
        if not dry_run:
            r53.update_health_check(
                HealthCheckId=found["Id"], HealthCheckVersion=found["HealthCheckVersion"], **after
            )
    note = ""
    if have.get("RequestInterval") != want["RequestInterval"] or have.get("Type") != want["Type"]:
        note = (
            f"{ref} is {have.get('Type')} every {have.get('RequestInterval')}s; type and interval "
            "cannot change in place (left as they are)"
        )
    return StepResult(
        changes=changes, outputs={"health_check_id": found["Id"]}, applied=not dry_run, detail=note
    )


def app_records(
    cfg: Config,
    primary: dict[str, str],
    dr: dict[str, str] | None,
    health_check_id: str,
    active: Role = "primary",
) -> list[dict[str, Any]]:
    """Desired alias records for the app name: ``primary``/``dr`` hold ``alb_dns_name`` and
    ``alb_zone_id``. Without a DR ALB yet, only the primary record.

    ``active`` is the region that takes the traffic (the DR one after a failover): its record
    is the PRIMARY failover record (or weight 100) and carries ``health_check_id``, a check
    on its own load balancer; the other region's is the SECONDARY (weight 0)."""
    name = fqdn(origin_name(cfg))
    out = []
    albs: dict[Role, dict[str, str] | None] = {"primary": primary, "dr": dr}
    for role, alb in albs.items():
        if alb is None:
            continue
        record: dict[str, Any] = {
            "Name": name,
            "Type": "A",
            "SetIdentifier": names_for(cfg, role).record_set_id,
            "AliasTarget": {
                "HostedZoneId": alb["alb_zone_id"],
                "DNSName": fqdn(alb["alb_dns_name"]),
                "EvaluateTargetHealth": True,
            },
        }
        if cfg.dns.strategy == "weighted":
            record["Weight"] = 100 if role == active else 0
        else:
            record["Failover"] = "PRIMARY" if role == active else "SECONDARY"
        if role == active:
            record["HealthCheckId"] = health_check_id
        out.append(record)
    return out


def cloudfront_record(cfg: Config, distribution_domain: str) -> dict[str, Any]:
    assert cfg.edge is not None
    return {
        "Name": fqdn(cfg.edge.domain),
        "Type": "A",
        "AliasTarget": {
            "HostedZoneId": CLOUDFRONT_ZONE_ID,
            "DNSName": fqdn(distribution_domain),
            "EvaluateTargetHealth": False,
        },
    }


def _key(r: dict[str, Any]) -> tuple[str, str, str]:
    return (fqdn(r["Name"]).lower(), r["Type"], r.get("SetIdentifier", ""))


def comparable_record(r: dict[str, Any]) -> dict[str, Any]:
    """A record set as Route 53 compares it: without its name, alias targets normalised
    (fully qualified, lower case). Two records are the same when these are equal. Pure."""
    out = {k: v for k, v in r.items() if k not in ("Name",)}
    if "AliasTarget" in out:
        at = out["AliasTarget"]
        out["AliasTarget"] = {**at, "DNSName": fqdn(at["DNSName"]).lower()}
    return out


def list_records(cfg: Config, zone_id: str, name: str) -> list[dict[str, Any]]:
    r53 = route53_client(cfg)
    out = []
    for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        out += [
            r for r in page["ResourceRecordSets"] if fqdn(r["Name"]).lower() == fqdn(name).lower()
        ]
    return out


@step("ensure DNS records")
def ensure_dns_records(
    cfg: Config,
    primary: dict[str, str],
    dr: dict[str, str] | None,
    health_check_id: str,
    distribution_domain: str | None = None,
    *,
    dry_run: bool = False,
) -> StepResult:
    """UPSERT the records whose content differs; records of other names are never touched."""
    if cfg.edge is None:
        return StepResult(skipped="no edge block: no DNS records")
    zone = _zone_or_planned(cfg, dry_run)
    want = app_records(cfg, primary, dr, health_check_id)
    if distribution_domain and cfg.edge.cloudfront:
        want.append(cloudfront_record(cfg, distribution_domain))
    names = {r["Name"] for r in want}
    have = {_key(r): r for n in names for r in list_records(cfg, zone, n)} if zone else {}
    changes: list[Change] = []
    batch = []
    for record in want:
        current = have.get(_key(record))
        if current is not None and comparable_record(current) == comparable_record(record):
            continue
        label = f"{record['Name']} {record.get('SetIdentifier', '')}".strip()
        if current is None:
            changes.append(created("route53:record", label, "global", comparable_record(record)))
        else:
            before, after = diff(comparable_record(record), comparable_record(current))
            changes.append(updated("route53:record", label, "global", before, after))
        batch.append({"Action": "UPSERT", "ResourceRecordSet": record})
    if batch and not dry_run:
        route53_client(cfg).change_resource_record_sets(
            HostedZoneId=zone, ChangeBatch={"Comment": f"tierbook {cfg.stack}", "Changes": batch}
        )
    return StepResult(
        changes=changes,
        outputs={"zone_id": zone, "record_name": fqdn(origin_name(cfg))},
        applied=not dry_run,
    )


def find_dns(cfg: Config) -> dict[str, Any]:
    """Read-only: the zone, the app records (which region each points at) and the health check."""
    if cfg.edge is None:
        raise NotFound("no edge block in the config: the stack has no DNS name")
    zone = find_zone_id(cfg, cfg.edge.hosted_zone)
    records = list_records(cfg, zone, origin_name(cfg))
    roles: tuple[Role, ...] = ("primary", "dr")
    ids = {names_for(cfg, role).record_set_id: role for role in roles}
    by_role = {ids[r["SetIdentifier"]]: r for r in records if r.get("SetIdentifier") in ids}
    hc = find_health_check(cfg, "primary")
    return {
        "zone_id": zone,
        "name": fqdn(origin_name(cfg)),
        "strategy": cfg.dns.strategy,
        "records": by_role,
        "health_check_id": hc["Id"] if hc else None,
    }


def stack_records(
    cfg: Config, roles: list[Role], app: list[dict[str, Any]], apex: list[dict[str, Any]],
    distribution_domain: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The records of ``roles`` among the app name's (``app``) and the domain's (``apex``).
    Pure."""
    idents = {f"{cfg.stack}-{r}" for r in roles}
    out = [r for r in app if r.get("SetIdentifier") in idents]
    if distribution_domain and "primary" in roles:
        target = fqdn(distribution_domain).lower()
        out += [
            r
            for r in apex
            if fqdn((r.get("AliasTarget") or {}).get("DNSName", "")).lower() == target
        ]
    return out


@step("delete DNS records and health checks")
def ensure_dns_deleted(cfg: Config, roles: list[Role], *, dry_run: bool = False) -> StepResult:
    if cfg.edge is None:
        return result([], dry_run)
    try:
        zone = find_zone_id(cfg, cfg.edge.hosted_zone)
    except NotFound:
        zone = None
    changes: list[Change] = []
    if zone is not None:
        dist = find_distribution(cfg) if cfg.edge.cloudfront else None
        app = list_records(cfg, zone, origin_name(cfg))
        apex = list_records(cfg, zone, cfg.edge.domain) if dist else []
        doomed = stack_records(cfg, roles, app, apex, dist["DomainName"] if dist else None)
        changes += [
            deleted("route53:record", f"{r['Name']} {r.get('SetIdentifier', '')}".strip(), "global")
            for r in doomed
        ]
        if doomed and not dry_run:
            route53_client(cfg).change_resource_record_sets(
                HostedZoneId=zone,
                ChangeBatch={
                    "Comment": f"tierbook destroy {cfg.stack}",
                    "Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in doomed],
                },
            )
    if "primary" in roles:  # the switch: parents before their children, then its alarm
        changes += _delete_switch(cfg, dry_run)
    for role in roles:  # after the records: a record's health check cannot go before it
        hc = find_health_check(cfg, role)
        if hc is None:
            continue
        changes.append(
            deleted("route53:health-check", names_for(cfg, role).health_check_reference, "global")
        )
        if not dry_run:
            route53_client(cfg).delete_health_check(HealthCheckId=hc["Id"])
    return result(changes, dry_run)


def _delete_switch(cfg: Config, dry_run: bool) -> list[Change]:
    switch, alarm_check, alarm = switch_refs(cfg)
    changes: list[Change] = []
    for ref in (switch, alarm_check):
        hc = find_health_check_named(cfg, ref)
        if hc is None:
            continue
        changes.append(deleted("route53:health-check", ref, "global"))
        if not dry_run:
            route53_client(cfg).delete_health_check(HealthCheckId=hc["Id"])
    cw = connect(cfg).client("cloudwatch", cfg.regions.dr)
    if cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]:
        changes.append(deleted("cloudwatch:alarm", alarm, cfg.regions.dr))
        if not dry_run:
            cw.delete_alarms(AlarmNames=[alarm])
    return changes
