from __future__ import annotations

from configs.models import Config
from sandbox.testing import Mutations, Net, plain
from tasks.resources.waf import ensure_alb_web_acl, ensure_cloudfront_web_acl, rules


def make_alb(cfg: Config, net: Net) -> str:
    elb = plain(cfg, "elbv2", "us-east-1")
    return str(
        elb.create_load_balancer(
            Name="shop-sandbox",
            Subnets=net.subnets["public"],
            SecurityGroups=[net.security_groups["alb"]],
        )["LoadBalancers"][0]["LoadBalancerArn"]
    )


def test_web_acls_converge_associate_and_restore_drift(
    sandbox_cfg: Config, net: Net, mutations: Mutations
) -> None:
    alb = make_alb(sandbox_cfg, net)
    mutations.reset()
    plan = ensure_alb_web_acl.fn(sandbox_cfg, "primary", alb, dry_run=True)
    ensure_cloudfront_web_acl.fn(sandbox_cfg, dry_run=True)
    assert mutations.calls == []
    assert [c.resource for c in plan.changes] == ["wafv2:web-acl", "wafv2:association"]

    acl = ensure_alb_web_acl.fn(sandbox_cfg, "primary", alb).outputs["web_acl_arn"]
    cf = ensure_cloudfront_web_acl.fn(sandbox_cfg).outputs["cloudfront_web_acl_arn"]
    assert ensure_alb_web_acl.fn(sandbox_cfg, "primary", alb).changes == []
    assert ensure_cloudfront_web_acl.fn(sandbox_cfg).changes == []
    assert ":global/webacl/" in cf

    waf = plain(sandbox_cfg, "wafv2", "us-east-1")
    assert waf.get_web_acl_for_resource(ResourceArn=alb)["WebACL"]["ARN"] == acl
    got = waf.get_web_acl(Name="shop-sandbox", Scope="REGIONAL", Id=acl.split("/")[-1])
    names = [r["Name"] for r in got["WebACL"]["Rules"]]
    assert names == [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
        "rate-per-ip",
    ]
    assert got["WebACL"]["Rules"][3]["Statement"]["RateBasedStatement"]["Limit"] == 2000

    waf.update_web_acl(
        Name="shop-sandbox", Scope="REGIONAL", Id=acl.split("/")[-1], LockToken=got["LockToken"],
        DefaultAction={"Allow": {}}, Rules=rules(50_000),
        VisibilityConfig=got["WebACL"]["VisibilityConfig"],
    )  # fmt: skip
    fixed = ensure_alb_web_acl.fn(sandbox_cfg, "primary", alb)
    assert [c.resource for c in fixed.changes] == ["wafv2:web-acl"]
    got = waf.get_web_acl(Name="shop-sandbox", Scope="REGIONAL", Id=acl.split("/")[-1])
    assert got["WebACL"]["Rules"][3]["Statement"]["RateBasedStatement"]["Limit"] == 2000
