from __future__ import annotations

from typing import Any

import pytest

from configs.errors import NotFound
from configs.models import Config
from sandbox.testing import Mutations, Net, plain
from tasks.resources.certificates import ensure_certificate
from tasks.resources.dns import ensure_dns_records, ensure_health_check, find_dns
from tasks.resources.load_balancer import (
    ensure_listeners,
    ensure_load_balancer,
    ensure_target_group,
    listener_drift,
    listener_specs,
)

LOG_BUCKET = "shop-sandbox-logs-123456789012-us-east-1"


def make_zone(cfg: Config) -> str:
    r53 = plain(cfg, "route53", "us-east-1")
    return str(r53.create_hosted_zone(Name="example.com", CallerReference="z")["HostedZone"]["Id"])


def build_alb(cfg: Config, net: Net, role: str = "primary") -> dict[str, Any]:
    lb = ensure_load_balancer.fn(
        cfg, role, net.subnets["public"], net.security_groups["alb"], LOG_BUCKET
    ).outputs
    tg = ensure_target_group.fn(cfg, role, net.vpc_id).outputs
    cert = ensure_certificate.fn(cfg, role).outputs["certificate_arn"]
    listeners = ensure_listeners.fn(cfg, role, lb["alb_arn"], tg["target_group_arn"], cert).outputs
    return {**lb, **tg, "certificate_arn": cert, **listeners}


def test_dry_run_plans_the_whole_entry_with_placeholders(
    sandbox_cfg: Config, net: Net, mutations: Mutations
) -> None:
    make_zone(sandbox_cfg)
    mutations.reset()
    lb = ensure_load_balancer.fn(
        sandbox_cfg, "primary", net.subnets["public"], net.security_groups["alb"], LOG_BUCKET,
        dry_run=True,
    )  # fmt: skip
    tg = ensure_target_group.fn(sandbox_cfg, "primary", net.vpc_id, dry_run=True)
    cert = ensure_certificate.fn(sandbox_cfg, "primary", dry_run=True)
    listeners = ensure_listeners.fn(
        sandbox_cfg, "primary", lb.outputs["alb_arn"], tg.outputs["target_group_arn"],
        cert.outputs["certificate_arn"], dry_run=True,
    )  # fmt: skip
    assert mutations.calls == []
    assert [c.action.value for c in lb.changes + tg.changes + cert.changes] == ["create"] * 3
    assert [c.name for c in listeners.changes] == ["shop-sandbox:443", "shop-sandbox:80"]


def test_entry_converges_and_second_run_changes_nothing(sandbox_cfg: Config, net: Net) -> None:
    make_zone(sandbox_cfg)
    out = build_alb(sandbox_cfg, net)
    again = [
        ensure_load_balancer.fn(
            sandbox_cfg, "primary", net.subnets["public"], net.security_groups["alb"], LOG_BUCKET
        ),
        ensure_target_group.fn(sandbox_cfg, "primary", net.vpc_id),
        ensure_certificate.fn(sandbox_cfg, "primary"),
        ensure_listeners.fn(
            sandbox_cfg, "primary", out["alb_arn"], out["target_group_arn"], out["certificate_arn"]
        ),
    ]
    assert [r.changes for r in again] == [[], [], [], []]

    elb = plain(sandbox_cfg, "elbv2", "us-east-1")
    lb = elb.describe_load_balancers(Names=["shop-sandbox"])["LoadBalancers"][0]
    assert lb["Scheme"] == "internet-facing"
    attrs = {
        a["Key"]: a["Value"]
        for a in elb.describe_load_balancer_attributes(LoadBalancerArn=out["alb_arn"])["Attributes"]
    }
    assert attrs["deletion_protection.enabled"] == "true"
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attrs["access_logs.s3.bucket"] == LOG_BUCKET
    tg_attrs = {
        a["Key"]: a["Value"]
        for a in elb.describe_target_group_attributes(TargetGroupArn=out["target_group_arn"])[
            "Attributes"
        ]
    }
    assert tg_attrs["stickiness.enabled"] == "false"
    assert tg_attrs["deregistration_delay.timeout_seconds"] == "30"
    tg = elb.describe_target_groups(Names=["shop-sandbox-web"])["TargetGroups"][0]
    assert (tg["TargetType"], tg["Port"], tg["HealthCheckPath"]) == ("ip", 8080, "/healthz")
    listeners = {
        x["Port"]: x for x in elb.describe_listeners(LoadBalancerArn=out["alb_arn"])["Listeners"]
    }
    assert listeners[80]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    assert listeners[443]["Certificates"] == [{"CertificateArn": out["certificate_arn"]}]
    acm = plain(sandbox_cfg, "acm", "us-east-1")
    cert = acm.describe_certificate(CertificateArn=out["certificate_arn"])["Certificate"]
    assert set(cert["SubjectAlternativeNames"]) == {"shop.example.com", "origin.shop.example.com"}


def test_target_group_drift_is_reported_exactly_and_restored(sandbox_cfg: Config, net: Net) -> None:
    tg = ensure_target_group.fn(sandbox_cfg, "primary", net.vpc_id).outputs["target_group_arn"]
    elb = plain(sandbox_cfg, "elbv2", "us-east-1")
    elb.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "stickiness.enabled", "Value": "true"}]
    )
    fixed = ensure_target_group.fn(sandbox_cfg, "primary", net.vpc_id)
    assert [(c.before, c.after) for c in fixed.changes] == [
        ({"stickiness.enabled": "true"}, {"stickiness.enabled": "false"})
    ]
    attrs = elb.describe_target_group_attributes(TargetGroupArn=tg)["Attributes"]
    assert {"Key": "stickiness.enabled", "Value": "false"} in attrs


def test_adopted_target_group_is_fixed_not_recreated(sandbox_cfg: Config, net: Net) -> None:
    elb = plain(sandbox_cfg, "elbv2", "us-east-1")
    arn = elb.create_target_group(
        Name="shop-sandbox-web", Protocol="HTTP", Port=8080, VpcId=net.vpc_id, TargetType="ip",
        HealthCheckPath="/",
    )["TargetGroups"][0]["TargetGroupArn"]  # fmt: skip
    result = ensure_target_group.fn(sandbox_cfg, "primary", net.vpc_id)
    assert result.outputs["target_group_arn"] == arn
    assert result.changes[0].after is not None
    assert result.changes[0].after["HealthCheckPath"] == "/healthz"
    assert (
        elb.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]["HealthCheckPath"]
        == "/healthz"
    )


def test_listener_drift_reads_forward_config_and_redirects() -> None:
    specs = listener_specs("tg", "cert")
    have = {
        "Protocol": "HTTPS",
        "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "Certificates": [{"CertificateArn": "cert", "IsDefault": True}],
        "DefaultActions": [
            {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "tg"}]}}
        ],
    }
    assert listener_drift(specs[443], have) == {}
    assert set(listener_drift(specs[443], {**have, "SslPolicy": "old"})) == {"SslPolicy"}


def test_failover_records_and_health_check(sandbox_cfg: Config, net: Net, dr_net: Net) -> None:
    make_zone(sandbox_cfg)
    primary = build_alb(sandbox_cfg, net)
    dr = build_alb(sandbox_cfg, dr_net, "dr")
    hc = ensure_health_check.fn(sandbox_cfg, "primary", primary["alb_dns_name"])
    hc_id = hc.outputs["health_check_id"]
    assert ensure_health_check.fn(sandbox_cfg, "primary", primary["alb_dns_name"]).changes == []

    first = ensure_dns_records.fn(sandbox_cfg, primary, dr, hc_id)
    assert len(first.changes) == 2
    assert ensure_dns_records.fn(sandbox_cfg, primary, dr, hc_id).changes == []

    found = find_dns(sandbox_cfg)
    assert found["health_check_id"] == hc_id
    assert found["records"]["primary"]["Failover"] == "PRIMARY"
    assert found["records"]["primary"]["HealthCheckId"] == hc_id
    assert found["records"]["dr"]["Failover"] == "SECONDARY"
    assert found["records"]["dr"]["AliasTarget"]["DNSName"].startswith(dr["alb_dns_name"].lower())
    r53 = plain(sandbox_cfg, "route53", "us-east-1")
    config = r53.get_health_check(HealthCheckId=hc_id)["HealthCheck"]["HealthCheckConfig"]
    assert (config["ResourcePath"], config["FullyQualifiedDomainName"]) == (
        "/healthz",
        primary["alb_dns_name"],
    )


def test_weighted_strategy_gives_dr_weight_zero(sandbox_cfg: Config, net: Net) -> None:
    cfg = sandbox_cfg.model_copy(
        update={"dns": sandbox_cfg.dns.model_copy(update={"strategy": "weighted"})}
    )
    make_zone(cfg)
    alb = {"alb_dns_name": "a.elb.amazonaws.com", "alb_zone_id": "Z1"}
    dr = {"alb_dns_name": "b.elb.amazonaws.com", "alb_zone_id": "Z2"}
    ensure_dns_records.fn(cfg, alb, dr, "hc-1")
    records = find_dns(cfg)["records"]
    assert (records["primary"]["Weight"], records["dr"]["Weight"]) == (100, 0)


def test_missing_hosted_zone_is_bad_input(sandbox_cfg: Config) -> None:
    with pytest.raises(NotFound, match=r"example\.com"):
        find_dns(sandbox_cfg)
