"""The CloudFront distribution: assets from S3 through Origin Access Control, the rest from the
app's origin name (the failover record in front of both ALBs) over HTTPS only.

Found by its comment (``names.distribution_comment``); only the fields tierbook manages are
compared, and a drifted distribution is updated from its current config (with its ETag), so
settings made elsewhere survive.
"""

from __future__ import annotations

from typing import Any

from configs.models import Config
from configs.names import names_for, origin_name
from tasks.core.aws import connect
from tasks.core.changes import (
    GONE_TIMEOUT_S,
    Change,
    StepResult,
    created,
    deleted,
    placeholder,
    result,
    updated,
)
from tasks.core.retry import wait_for
from tasks.core.steps import step
from tasks.core.tags import tag_list
from tasks.resources.waf import CLOUDFRONT_REGION, find_web_acl

# AWS managed policies: CachingOptimized, CachingDisabled, AllViewerExceptHostHeader.
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"


ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


ASSET_PATH = "/assets/*"


ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]


def _cf(cfg: Config) -> Any:
    return connect(cfg).client("cloudfront", "us-east-1")


def managed(
    cfg: Config,
    asset_domain: str,
    oac_id: str,
    web_acl_arn: str | None,
    certificate_arn: str | None,
) -> dict[str, Any]:
    """The fields of a DistributionConfig that tierbook owns."""
    assert cfg.edge is not None
    viewer_cert: dict[str, Any] = (
        {
            "ACMCertificateArn": certificate_arn,
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1.2_2021",
        }
        if certificate_arn
        else {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1.2_2021"}
    )
    aliases = [cfg.edge.domain] if certificate_arn else []
    return {
        "Comment": names_for(cfg, "primary").distribution_comment,
        "Enabled": True,
        "Aliases": {"Quantity": len(aliases), **({"Items": aliases} if aliases else {})},
        "Origins": {
            "Quantity": 2,
            "Items": [
                {
                    "Id": "assets",
                    "DomainName": asset_domain,
                    "OriginAccessControlId": oac_id,
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                },
                {
                    "Id": "app",
                    "DomainName": origin_name(cfg),
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": "https-only",
                        "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                    },
                },
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "app",
            "ViewerProtocolPolicy": "redirect-to-https",
            "Compress": True,
            "CachePolicyId": CACHING_DISABLED,
            "OriginRequestPolicyId": ALL_VIEWER_EXCEPT_HOST,
            "AllowedMethods": {
                "Quantity": 7,
                "Items": ALL_METHODS,
                "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
            },
        },
        "CacheBehaviors": {
            "Quantity": 1,
            "Items": [
                {
                    "PathPattern": ASSET_PATH,
                    "TargetOriginId": "assets",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "CachePolicyId": CACHING_OPTIMIZED,
                    "Compress": True,
                }
            ],
        },
        "ViewerCertificate": viewer_cert,
        "WebACLId": web_acl_arn or "",
        "HttpVersion": "http2and3",
        "PriceClass": "PriceClass_100",
    }


def projection(conf: Any, like: Any) -> Any:
    """``conf`` cut down to the keys of ``like`` (recursively; lists item by item)."""
    if isinstance(like, dict):
        return {k: projection((conf or {}).get(k), v) for k, v in like.items()}
    if isinstance(like, list):
        items = conf if isinstance(conf, list) else []
        return [projection(items[i] if i < len(items) else None, v) for i, v in enumerate(like)] + (
            ["…extra"] * (len(items) - len(like))
        )
    return conf


def drift(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in want.items() if projection(have.get(k), v) != v}


def merged(current: dict[str, Any], fix: dict[str, Any]) -> dict[str, Any]:
    """``current`` with the drifted top-level fields replaced (the rest kept as found)."""
    out = dict(current)
    for key, value in fix.items():
        if key in ("Origins", "DefaultCacheBehavior", "CacheBehaviors"):
            out[key] = _overlay(current.get(key), value)
        else:
            out[key] = value
    return out


def _overlay(have: Any, want: Any) -> Any:
    if isinstance(want, dict) and isinstance(have, dict):
        return {**have, **{k: _overlay(have.get(k), v) for k, v in want.items()}}
    if isinstance(want, list) and isinstance(have, list):
        by_id = {(h.get("Id") or h.get("PathPattern")): h for h in have if isinstance(h, dict)}
        return [
            _overlay(by_id.get(w.get("Id") or w.get("PathPattern")), w)
            if isinstance(w, dict)
            else w
            for w in want
        ]
    return want


def find_distribution(cfg: Config) -> dict[str, Any] | None:
    comment = names_for(cfg, "primary").distribution_comment
    for page in _cf(cfg).get_paginator("list_distributions").paginate():
        for d in (page.get("DistributionList") or {}).get("Items", []) or []:
            if d.get("Comment") == comment:
                return dict(d)
    return None


def _ensure_oac(cfg: Config, dry_run: bool) -> tuple[list[Change], str]:
    cf, name = _cf(cfg), f"{cfg.stack}-assets"
    items = (
        cf.list_origin_access_controls().get("OriginAccessControlList", {}).get("Items", []) or []
    )
    found = next((o for o in items if o["Name"] == name), None)
    if found:
        return [], str(found["Id"])
    conf = {
        "Name": name,
        "Description": f"{cfg.stack} asset bucket",
        "SigningProtocol": "sigv4",
        "SigningBehavior": "always",
        "OriginAccessControlOriginType": "s3",
    }
    change = created("cloudfront:origin-access-control", name, "global", conf)
    if dry_run:
        return [change], placeholder("cloudfront:origin-access-control", name)
    return [change], str(
        cf.create_origin_access_control(OriginAccessControlConfig=conf)["OriginAccessControl"]["Id"]
    )


@step("ensure CloudFront distribution")
def ensure_distribution(
    cfg: Config,
    asset_bucket_domain: str,
    web_acl_arn: str | None,
    certificate_arn: str | None = None,
    *,
    dry_run: bool = False,
) -> StepResult:
    if cfg.edge is None or not cfg.edge.cloudfront:
        return StepResult(skipped="CloudFront is off")
    cf = _cf(cfg)
    changes, oac_id = _ensure_oac(cfg, dry_run)
    want = managed(cfg, asset_bucket_domain, oac_id, web_acl_arn, certificate_arn)
    found = find_distribution(cfg)
    label = want["Comment"]
    if found is None:
        changes.append(
            created(
                "cloudfront:distribution",
                label,
                "global",
                {"origins": [o["DomainName"] for o in want["Origins"]["Items"]]},
            )
        )
        if dry_run:
            ph = placeholder("cloudfront:distribution", label)
            return StepResult(
                changes=changes,
                outputs={"distribution_id": ph, "distribution_arn": ph, "distribution_domain": ph},
            )
        config = {**want, "CallerReference": f"tierbook-{cfg.stack}", "DefaultRootObject": ""}
        tags = {"Items": tag_list(names_for(cfg, "primary").tags("edge"))}
        d = cf.create_distribution_with_tags(
            DistributionConfigWithTags={"DistributionConfig": config, "Tags": tags}
        )["Distribution"]
        return StepResult(changes=changes, outputs=_outputs(d), applied=True)
    got = cf.get_distribution_config(Id=found["Id"])
    fix = drift(want, got["DistributionConfig"])
    if fix:
        before = {k: projection(got["DistributionConfig"].get(k), v) for k, v in fix.items()}
        changes.append(updated("cloudfront:distribution", label, "global", before, fix))
        if not dry_run:
            cf.update_distribution(
                Id=found["Id"],
                IfMatch=got["ETag"],
                DistributionConfig=merged(got["DistributionConfig"], fix),
            )
    return StepResult(changes=changes, outputs=_outputs(found), applied=not dry_run)


def _outputs(d: dict[str, Any]) -> dict[str, str]:
    return {
        "distribution_id": d["Id"],
        "distribution_arn": d["ARN"],
        "distribution_domain": d["DomainName"],
    }


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
