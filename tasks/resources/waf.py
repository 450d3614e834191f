"""AWS WAF web ACLs: a regional one on each ALB, a CLOUDFRONT-scope one for the distribution.

Rules: AWS managed Common (OWASP core), KnownBadInputs and AmazonIpReputationList groups, and
a per-IP rate-based rule at ``edge.waf_rate_limit`` requests per 5 minutes. A web ACL's rules
are replaced as a whole (``UpdateWebACL`` with the lock token) when any differs.
"""

from __future__ import annotations

from typing import Any, Literal

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import (
    Change,
    StepResult,
    created,
    is_placeholder,
    placeholder,
    tag_change,
    updated,
)
from tasks.core.errors import AwsError
from tasks.core.retry import is_code
from tasks.core.steps import step
from tasks.core.tags import missing_tags, tag_dict, tag_list

Scope = Literal["REGIONAL", "CLOUDFRONT"]


MANAGED = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)


CLOUDFRONT_REGION = "us-east-1"  # CLOUDFRONT-scope ACLs live in us-east-1


def _visibility(metric: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": metric}


def rules(rate_limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "Name": group,
            "Priority": i,
            "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}},
            "OverrideAction": {"None": {}},
            "VisibilityConfig": _visibility(group),
        }
        for i, group in enumerate(MANAGED)
    ]
    out.append(
        {
            "Name": "rate-per-ip",
            "Priority": len(MANAGED),
            "Statement": {"RateBasedStatement": {"Limit": rate_limit, "AggregateKeyType": "IP"}},
            "Action": {"Block": {}},
            "VisibilityConfig": _visibility("rate-per-ip"),
        }
    )
    return out


def rules_differ(want: list[dict[str, Any]], have: list[dict[str, Any]]) -> bool:
    """Compare the parts tierbook sets; AWS may add defaults (e.g. EvaluationWindowSec)."""

    def shape(rule: dict[str, Any]) -> dict[str, Any]:
        st = rule.get("Statement", {})
        if "RateBasedStatement" in st:
            r = st["RateBasedStatement"]
            st = {
                "RateBasedStatement": {
                    "Limit": r.get("Limit"),
                    "AggregateKeyType": r.get("AggregateKeyType"),
                }
            }
        elif "ManagedRuleGroupStatement" in st:
            m = st["ManagedRuleGroupStatement"]
            st = {
                "ManagedRuleGroupStatement": {
                    "VendorName": m.get("VendorName"),
                    "Name": m.get("Name"),
                }
            }
        return {k: rule.get(k) for k in ("Name", "Priority", "Action", "OverrideAction")} | {
            "Statement": st
        }

    return sorted(map(str, map(shape, want))) != sorted(map(str, map(shape, have)))


def find_web_acl(waf: Any, name: str, scope: Scope) -> dict[str, Any] | None:
    """The web ACL summary named ``name`` in ``scope`` (Id, ARN, LockToken), or None."""
    kwargs: dict[str, Any] = {"Scope": scope}
    while True:
        page = waf.list_web_acls(**kwargs)
        for acl in page.get("WebACLs", []):
            if acl["Name"] == name:
                return dict(acl)
        if not page.get("NextMarker"):
            return None
        kwargs["NextMarker"] = page["NextMarker"]


def _ensure_acl(
    cfg: Config, role: Role, scope: Scope, region: str, name: str, dry_run: bool
) -> tuple[list[Change], str]:
    assert cfg.edge is not None
    waf = connect(cfg).client("wafv2", region)
    want, tags = rules(cfg.edge.waf_rate_limit), names_for(cfg, role).tags("edge")
    label = f"{name} ({scope.lower()})"
    found = find_web_acl(waf, name, scope)
    if found is None:
        change = created(
            "wafv2:web-acl",
            label,
            region,
            {"rules": [r["Name"] for r in want], "rate_limit": cfg.edge.waf_rate_limit},
        )
        if dry_run:
            return [change], placeholder("wafv2:web-acl", name)
        summary = waf.create_web_acl(
            Name=name, Scope=scope, DefaultAction={"Allow": {}}, Rules=want,
            VisibilityConfig=_visibility(name), Tags=tag_list(tags),
        )["Summary"]  # fmt: skip
        return [change], str(summary["ARN"])
    acl = waf.get_web_acl(Name=name, Scope=scope, Id=found["Id"])
    changes: list[Change] = []
    if rules_differ(want, acl["WebACL"].get("Rules", [])):
        have_names = [r["Name"] for r in acl["WebACL"].get("Rules", [])]
        changes.append(
            updated(
                "wafv2:web-acl",
                label,
                region,
                {"rules": acl["WebACL"].get("Rules")},
                {"rules": want},
                detail=f"rules {have_names} → {[r['Name'] for r in want]}",
            )
        )
        if not dry_run:
            waf.update_web_acl(
                Name=name,
                Scope=scope,
                Id=found["Id"],
                LockToken=acl["LockToken"],
                DefaultAction=acl["WebACL"].get("DefaultAction", {"Allow": {}}),
                Rules=want,
                VisibilityConfig=acl["WebACL"].get("VisibilityConfig", _visibility(name)),
            )
    have_tags = tag_dict(
        waf.list_tags_for_resource(ResourceARN=found["ARN"])
        .get("TagInfoForResource", {})
        .get("TagList")
    )
    if retag := tag_change("wafv2:web-acl", label, region, tags, have_tags):
        changes.append(retag)
        if not dry_run:
            waf.tag_resource(
                ResourceARN=found["ARN"],
                Tags=tag_list(missing_tags(tags, have_tags)),
            )
    return changes, str(found["ARN"])


@step("ensure {role} web ACL on the load balancer")
def ensure_alb_web_acl(
    cfg: Config, role: Role, alb_arn: str, *, dry_run: bool = False
) -> StepResult:
    """Regional web ACL, associated to the ALB (an association to another ACL is replaced)."""
    if cfg.edge is None:
        return StepResult(skipped="no edge block: no web ACL")
    names = names_for(cfg, role)
    changes, acl_arn = _ensure_acl(cfg, role, "REGIONAL", names.region, names.web_acl, dry_run)
    waf = connect(cfg).client("wafv2", names.region)
    current = None
    if not is_placeholder(alb_arn):
        try:
            current = (waf.get_web_acl_for_resource(ResourceArn=alb_arn).get("WebACL") or {}).get(
                "ARN"
            )
        except AwsError as exc:
            if not is_code(exc, "WAFNonexistentItemException"):
                raise
    if current != acl_arn:
        changes.append(
            updated(
                "wafv2:association",
                names.alb,
                names.region,
                {"web_acl": current},
                {"web_acl": acl_arn},
            )
        )
        if not dry_run:
            waf.associate_web_acl(WebACLArn=acl_arn, ResourceArn=alb_arn)
    return StepResult(changes=changes, outputs={"web_acl_arn": acl_arn}, applied=not dry_run)


@step("ensure CloudFront web ACL")
def ensure_cloudfront_web_acl(cfg: Config, *, dry_run: bool = False) -> StepResult:
    """CLOUDFRONT-scope ACL in us-east-1; the distribution names it in its ``WebACLId``."""
    if cfg.edge is None or not cfg.edge.cloudfront:
        return StepResult(skipped="CloudFront is off: no CLOUDFRONT-scope web ACL")
    name = f"{names_for(cfg, 'primary').web_acl}-cloudfront"
    changes, arn = _ensure_acl(cfg, "primary", "CLOUDFRONT", CLOUDFRONT_REGION, name, dry_run)
    return StepResult(changes=changes, outputs={"cloudfront_web_acl_arn": arn}, applied=not dry_run)
