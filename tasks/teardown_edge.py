"""Destroy, edge and DNS: the app's failover records and the CloudFront alias, the health
check, the CloudFront distribution (disabled, then deleted), its origin access control and
its web ACL.

Only records tierbook wrote are deleted: those with the stack's set identifiers
(``<stack>-primary``/``<stack>-dr``) and the domain's alias to the stack's own distribution.
The hosted zone stays: it usually holds other names, and provision only adopts it.
"""

from __future__ import annotations

from typing import Any

from configs.errors import NotFound
from configs.models import Config
from configs.names import Role, names_for
from tasks.aws import connect
from tasks.certificates import origin_name
from tasks.changes import Change, StepResult
from tasks.distribution import find_distribution
from tasks.dns import find_health_check, find_zone_id, fqdn, list_records
from tasks.retry import wait_for
from tasks.steps import step
from tasks.teardown import GONE_TIMEOUT_S, deleted, result
from tasks.waf import CLOUDFRONT_REGION
from tasks.waf import _find as find_web_acl


def _r53(cfg: Config) -> Any:
    return connect(cfg).client("route53", cfg.regions.primary)


def _cf(cfg: Config) -> Any:
    return connect(cfg).client("cloudfront", cfg.regions.primary)


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
            _r53(cfg).change_resource_record_sets(
                HostedZoneId=zone,
                ChangeBatch={
                    "Comment": f"tierbook destroy {cfg.stack}",
                    "Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in doomed],
                },
            )
    for role in roles:  # after the records: a record's health check cannot go before it
        hc = find_health_check(cfg, role)
        if hc is None:
            continue
        changes.append(
            deleted("route53:health-check", names_for(cfg, role).health_check_reference, "global")
        )
        if not dry_run:
            _r53(cfg).delete_health_check(HealthCheckId=hc["Id"])
    return result(changes, dry_run)


@step("delete CloudFront distribution")
def ensure_distribution_deleted(cfg: Config, *, dry_run: bool = False) -> StepResult:
    """Disable → wait until deployed → delete; then the origin access control and the
    CLOUDFRONT-scope web ACL, which a live distribution would still use."""
    if cfg.edge is None or not cfg.edge.cloudfront:
        return result([], dry_run)
    cf = _cf(cfg)
    changes: list[Change] = []
    found = find_distribution(cfg)
    if found is not None:
        label = names_for(cfg, "primary").distribution_comment
        changes.append(
            deleted("cloudfront:distribution", label, "global", "disabled, then deleted")
        )
        if not dry_run:
            _delete_distribution(cf, found["Id"])
    oac_name = f"{cfg.stack}-assets"
    items = cf.list_origin_access_controls().get("OriginAccessControlList", {}).get("Items") or []
    for oac in (o for o in items if o["Name"] == oac_name):
        changes.append(deleted("cloudfront:origin-access-control", oac_name, "global"))
        if not dry_run:
            etag = cf.get_origin_access_control(Id=oac["Id"])["ETag"]
            cf.delete_origin_access_control(Id=oac["Id"], IfMatch=etag)
    waf = connect(cfg).client("wafv2", CLOUDFRONT_REGION)
    acl_name = f"{names_for(cfg, 'primary').web_acl}-cloudfront"
    if acl := find_web_acl(waf, acl_name, "CLOUDFRONT"):
        changes.append(deleted("wafv2:web-acl", acl_name, "global"))
        if not dry_run:
            waf.delete_web_acl(
                Name=acl_name, Scope="CLOUDFRONT", Id=acl["Id"], LockToken=acl["LockToken"]
            )
    return result(changes, dry_run)


def _delete_distribution(cf: Any, ident: str) -> None:
    got = cf.get_distribution_config(Id=ident)
    conf = got["DistributionConfig"]
    if conf.get("Enabled"):
        cf.update_distribution(
            Id=ident, IfMatch=got["ETag"], DistributionConfig={**conf, "Enabled": False}
        )
    wait_for(
        lambda: cf.get_distribution(Id=ident),
        until=lambda d: d["Distribution"]["Status"] == "Deployed",
        what=f"CloudFront distribution {ident} disabled",
        timeout_s=GONE_TIMEOUT_S,
        describe=lambda d: str(d["Distribution"]["Status"]),
    )
    cf.delete_distribution(Id=ident, IfMatch=cf.get_distribution_config(Id=ident)["ETag"])
