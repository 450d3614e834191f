"""The public entry of a region: ALB, its target group, its listeners, its certificate.

Stateless app, so no stickiness; a short deregistration delay drains tasks quickly on deploys
and scale-in; HTTP only redirects to HTTPS. The certificate comes from :mod:`tasks.certificates`.
"""

from __future__ import annotations

from typing import Any

from configs.errors import StepFailed
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import role_client
from tasks.core.changes import (
    Change,
    StepResult,
    created,
    deleted,
    diff,
    is_placeholder,
    placeholder,
    result,
    tag_change,
    updated,
)
from tasks.core.errors import AwsError
from tasks.core.retry import absent, is_code, wait_gone
from tasks.core.steps import step
from tasks.core.tags import missing_tags, tag_dict, tag_list
from tasks.resources.waf import find_web_acl

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


DEREGISTRATION_DELAY_S = 30


HEALTH = {
    "HealthCheckProtocol": "HTTP",
    "HealthCheckIntervalSeconds": 15,
    "HealthyThresholdCount": 3,
    "UnhealthyThresholdCount": 3,
    "Matcher": {"HttpCode": "200"},
}


def alb_attributes(log_bucket: str) -> dict[str, str]:
    return {
        "deletion_protection.enabled": "true",
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": log_bucket,
        "access_logs.s3.prefix": "alb",
    }


def target_group_attributes() -> dict[str, str]:
    return {
        "stickiness.enabled": "false",
        "deregistration_delay.timeout_seconds": str(DEREGISTRATION_DELAY_S),
    }


def attribute_drift(desired: dict[str, str], actual: list[dict[str, str]]) -> dict[str, str]:
    have = tag_dict(actual)
    return {k: v for k, v in desired.items() if have.get(k) != v}


def listener_specs(tg_arn: str, certificate_arn: str) -> dict[int, dict[str, Any]]:
    return {
        443: {
            "Protocol": "HTTPS",
            "SslPolicy": TLS_POLICY,
            "Certificates": [{"CertificateArn": certificate_arn}],
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}],
        },
        80: {
            "Protocol": "HTTP",
            "DefaultActions": [
                {
                    "Type": "redirect",
                    "RedirectConfig": {
                        "Protocol": "HTTPS",
                        "Port": "443",
                        "StatusCode": "HTTP_301",
                    },
                }
            ],
        },
    }


def listener_drift(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in want.items():
        actual = have.get(key)
        if key == "DefaultActions":
            actual = [_action(a) for a in actual or []]
            value = [_action(a) for a in value]
        elif key == "Certificates":
            actual = [{"CertificateArn": c["CertificateArn"]} for c in actual or []]
        if actual != value:
            out[key] = want[key]
    return out


def _action(a: dict[str, Any]) -> dict[str, Any]:
    keep = {"Type": a["Type"]}
    if a["Type"] == "forward":
        keep["TargetGroupArn"] = (
            a.get("TargetGroupArn") or a["ForwardConfig"]["TargetGroups"][0]["TargetGroupArn"]
        )
    if a["Type"] == "redirect":
        rc = a["RedirectConfig"]
        keep["RedirectConfig"] = {k: rc.get(k) for k in ("Protocol", "Port", "StatusCode")}
    return keep


def _tags(elb: Any, arn: str) -> dict[str, str]:
    return tag_dict(elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"])


def _fix_tags(
    elb: Any, kind: str, name: str, region: str, arn: str, tags: dict[str, str], dry_run: bool
) -> list[Change]:
    have = _tags(elb, arn)
    change = tag_change(kind, name, region, tags, have)
    if change and not dry_run:
        elb.add_tags(ResourceArns=[arn], Tags=tag_list(missing_tags(tags, have)))
    return [change] if change else []


def find_load_balancer(cfg: Config, role: Role) -> dict[str, Any] | None:
    try:
        return dict(
            role_client(cfg, "elbv2", role).describe_load_balancers(
                Names=[names_for(cfg, role).alb]
            )["LoadBalancers"][0]
        )
    except AwsError as exc:
        if is_code(exc, "LoadBalancerNotFound"):
            return None
        raise


def _alb_outputs(lb: dict[str, Any]) -> dict[str, str]:
    arn = lb["LoadBalancerArn"]
    return {
        "alb_arn": arn,
        "alb_dns_name": lb["DNSName"],
        "alb_zone_id": lb["CanonicalHostedZoneId"],
        "alb_arn_suffix": arn.split(":loadbalancer/")[-1],
    }


@step("ensure {role} load balancer")
def ensure_load_balancer(
    cfg: Config,
    role: Role,
    subnet_ids: list[str],
    sg_id: str,
    log_bucket: str,
    *,
    dry_run: bool = False,
) -> StepResult:
    """Internet-facing ALB in the public subnets, with the ALB security group."""
    names = names_for(cfg, role)
    elb, region, name = role_client(cfg, "elbv2", role), names.region, names.alb
    tags, attrs = names.tags("edge"), alb_attributes(log_bucket)
    lb = find_load_balancer(cfg, role)
    changes: list[Change] = []
    if lb is None:
        changes.append(
            created("elbv2:load-balancer", name, region, {"subnets": subnet_ids, **attrs})
        )
        if dry_run:
            ph = placeholder("elbv2:load-balancer", name)
            outputs = {"alb_arn": ph, "alb_dns_name": ph, "alb_zone_id": ph, "alb_arn_suffix": ph}
            return StepResult(changes=changes, outputs=outputs)
        lb = elb.create_load_balancer(
            Name=name, Subnets=subnet_ids, SecurityGroups=[sg_id], Scheme="internet-facing",
            Type="application", IpAddressType="ipv4", Tags=tag_list(tags),
        )["LoadBalancers"][0]  # fmt: skip
        elb.modify_load_balancer_attributes(
            LoadBalancerArn=lb["LoadBalancerArn"], Attributes=tag_list(attrs)
        )
        return StepResult(changes=changes, outputs=_alb_outputs(lb), applied=True)
    arn = lb["LoadBalancerArn"]
    if lb.get("Scheme") != "internet-facing" or lb.get("Type") != "application":
        raise StepFailed(f"{name} is {lb.get('Scheme')} {lb.get('Type')}; cannot change in place")
    have_subnets = sorted(z["SubnetId"] for z in lb.get("AvailabilityZones", []))
    if have_subnets != sorted(subnet_ids):
        changes.append(
            updated(
                "elbv2:load-balancer",
                name,
                region,
                {"subnets": have_subnets},
                {"subnets": sorted(subnet_ids)},
            )
        )
        if not dry_run:
            elb.set_subnets(LoadBalancerArn=arn, Subnets=subnet_ids)
    if sorted(lb.get("SecurityGroups", [])) != [sg_id]:
        changes.append(
            updated(
                "elbv2:load-balancer",
                name,
                region,
                {"security_groups": lb.get("SecurityGroups")},
                {"security_groups": [sg_id]},
            )
        )
        if not dry_run:
            elb.set_security_groups(LoadBalancerArn=arn, SecurityGroups=[sg_id])
    drift = attribute_drift(
        attrs, elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    )
    if drift:
        have = tag_dict(elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"])
        changes.append(
            updated("elbv2:load-balancer", name, region, {k: have.get(k) for k in drift}, drift)
        )
        if not dry_run:
            elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=tag_list(drift))
    changes += _fix_tags(elb, "elbv2:load-balancer", name, region, arn, tags, dry_run)
    return StepResult(changes=changes, outputs=_alb_outputs(lb), applied=not dry_run)


@step("ensure {role} target group")
def ensure_target_group(
    cfg: Config, role: Role, vpc_id: str, *, dry_run: bool = False
) -> StepResult:
    """IP target group on the web port and health path (Fargate registers task ENIs)."""
    names = names_for(cfg, role)
    elb, region, name = role_client(cfg, "elbv2", role), names.region, names.target_group
    web = cfg.services.web
    health = {**HEALTH, "HealthCheckPath": web.health_path}
    tags, attrs = names.tags("edge"), target_group_attributes()
    try:
        tg = elb.describe_target_groups(Names=[name])["TargetGroups"][0]
    except AwsError as exc:
        if not is_code(exc, "TargetGroupNotFound"):
            raise
        tg = None
    if tg is None:
        change = created("elbv2:target-group", name, region, {"port": web.port, **health, **attrs})
        if dry_run:
            ph = placeholder("elbv2:target-group", name)
            return StepResult(
                changes=[change], outputs={"target_group_arn": ph, "target_group_arn_suffix": ph}
            )
        tg = elb.create_target_group(
            Name=name, Protocol="HTTP", Port=web.port, VpcId=vpc_id, TargetType="ip",
            Tags=tag_list(tags), **health,
        )["TargetGroups"][0]  # fmt: skip
        elb.modify_target_group_attributes(
            TargetGroupArn=tg["TargetGroupArn"], Attributes=tag_list(attrs)
        )
        return StepResult(changes=[change], outputs=_tg_outputs(tg), applied=True)
    arn = tg["TargetGroupArn"]
    if tg.get("TargetType") != "ip" or tg.get("VpcId") != vpc_id:
        raise StepFailed(
            f"target group {name} is type {tg.get('TargetType')} in {tg.get('VpcId')}; "
            f"Fargate needs type ip in {vpc_id}, and neither can change in place"
        )
    changes: list[Change] = []
    before, after = diff(health, tg)
    if after:
        changes.append(updated("elbv2:target-group", name, region, before, after))
        if not dry_run:
            elb.modify_target_group(TargetGroupArn=arn, **after)
    have_attrs = elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    drift = attribute_drift(attrs, have_attrs)
    if drift:
        have = tag_dict(have_attrs)
        changes.append(
            updated("elbv2:target-group", name, region, {k: have.get(k) for k in drift}, drift)
        )
        if not dry_run:
            elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=tag_list(drift))
    changes += _fix_tags(elb, "elbv2:target-group", name, region, arn, tags, dry_run)
    return StepResult(changes=changes, outputs=_tg_outputs(tg), applied=not dry_run)


def _tg_outputs(tg: dict[str, Any]) -> dict[str, str]:
    arn = tg["TargetGroupArn"]
    return {"target_group_arn": arn, "target_group_arn_suffix": arn.split(":")[-1]}


@step("ensure {role} listeners")
def ensure_listeners(
    cfg: Config,
    role: Role,
    alb_arn: str,
    tg_arn: str,
    certificate_arn: str,
    *,
    dry_run: bool = False,
) -> StepResult:
    """HTTPS:443 forwarding to the target group; HTTP:80 redirecting to HTTPS."""
    names = names_for(cfg, role)
    elb, region = role_client(cfg, "elbv2", role), names.region
    specs = listener_specs(tg_arn, certificate_arn)
    existing: dict[int, dict[str, Any]] = {}
    if not is_placeholder(alb_arn):
        existing = {
            lst["Port"]: lst for lst in elb.describe_listeners(LoadBalancerArn=alb_arn)["Listeners"]
        }
    changes: list[Change] = []
    outputs: dict[str, str] = {}
    for port, spec in specs.items():
        label = f"{names.alb}:{port}"
        have = existing.get(port)
        if have is None:
            changes.append(created("elbv2:listener", label, region, spec))
            outputs[f"listener_{port}_arn"] = placeholder("elbv2:listener", label)
            if not dry_run:
                answer = elb.create_listener(LoadBalancerArn=alb_arn, Port=port, **spec)
                outputs[f"listener_{port}_arn"] = answer["Listeners"][0]["ListenerArn"]
            continue
        outputs[f"listener_{port}_arn"] = have["ListenerArn"]
        drift = listener_drift(spec, have)
        if drift:
            changes.append(
                updated("elbv2:listener", label, region, {k: have.get(k) for k in drift}, drift)
            )
            if not dry_run:
                elb.modify_listener(ListenerArn=have["ListenerArn"], **spec)
    return StepResult(changes=changes, outputs=outputs, applied=not dry_run)


@step("delete {role} load balancer")
def ensure_load_balancer_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Web ACL association → listeners → load balancer (wait until gone) → target group and
    the regional web ACL."""
    names = names_for(cfg, role)
    region = names.region
    elb, waf = role_client(cfg, "elbv2", role), role_client(cfg, "wafv2", role)
    changes: list[Change] = []
    lb = find_load_balancer(cfg, role)
    if lb is not None:
        arn = lb["LoadBalancerArn"]
        acl = absent(
            lambda: waf.get_web_acl_for_resource(ResourceArn=arn).get("WebACL"),
            "WAFNonexistentItemException",
        )
        if acl and acl.get("Name") == names.web_acl:
            changes.append(deleted("wafv2:association", names.alb, region))
            if not dry_run:
                waf.disassociate_web_acl(ResourceArn=arn)
        for listener in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            changes.append(deleted("elbv2:listener", f"{names.alb}:{listener['Port']}", region))
            if not dry_run:
                elb.delete_listener(ListenerArn=listener["ListenerArn"])
        changes.append(deleted("elbv2:load-balancer", names.alb, region))
        if not dry_run:
            elb.delete_load_balancer(LoadBalancerArn=arn)
            wait_gone(lambda: find_load_balancer(cfg, role), f"load balancer {names.alb} deleted")
    tg = absent(
        lambda: elb.describe_target_groups(Names=[names.target_group])["TargetGroups"],
        "TargetGroupNotFound",
    )
    if tg:
        changes.append(deleted("elbv2:target-group", names.target_group, region))
        if not dry_run:
            elb.delete_target_group(TargetGroupArn=tg[0]["TargetGroupArn"])
    if cfg.edge is not None and (acl := find_web_acl(waf, names.web_acl, "REGIONAL")):
        changes.append(deleted("wafv2:web-acl", names.web_acl, region))
        if not dry_run:
            waf.delete_web_acl(
                Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"], LockToken=acl["LockToken"]
            )
    return result(changes, dry_run)
