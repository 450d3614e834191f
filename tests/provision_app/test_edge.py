from __future__ import annotations

import json

from configs.models import Config
from sandbox.testing import Mutations, plain
from tasks.resources.buckets import (
    ensure_asset_bucket,
    ensure_asset_bucket_policy,
    ensure_log_bucket,
)
from tasks.resources.cloudfront import ensure_distribution

WAF = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shop-sandbox-cloudfront/x"


def test_buckets_are_private_encrypted_and_converge(
    sandbox_cfg: Config, mutations: Mutations, faithful_moto: None
) -> None:
    plan = [
        ensure_log_bucket.fn(sandbox_cfg, "dr", dry_run=True),
        ensure_asset_bucket.fn(sandbox_cfg, "dr", dry_run=True),
    ]
    assert mutations.calls == []
    assert [c.action.value for r in plan for c in r.changes] == ["create", "create"]

    for role in ("primary", "dr"):
        ensure_log_bucket.fn(sandbox_cfg, role)
        ensure_asset_bucket.fn(sandbox_cfg, role)
        assert ensure_log_bucket.fn(sandbox_cfg, role).changes == []
        assert ensure_asset_bucket.fn(sandbox_cfg, role).changes == []

    s3 = plain(sandbox_cfg, "s3", "us-west-2")
    logs = "shop-sandbox-logs-123456789012-us-west-2"
    assets = "shop-sandbox-assets-123456789012-us-west-2"
    for bucket in (logs, assets):
        pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(pab.values())
        enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=assets)["Status"] == "Enabled"
    policy = json.loads(s3.get_bucket_policy(Bucket=logs)["Policy"])
    delivery = next(s for s in policy["Statement"] if s["Sid"] == "AlbLogDelivery")
    assert delivery["Principal"] == {"AWS": "arn:aws:iam::797873946194:root"}
    assert delivery["Resource"].endswith("/alb/AWSLogs/123456789012/*")

    s3.delete_public_access_block(Bucket=assets)
    fixed = ensure_asset_bucket.fn(sandbox_cfg, "dr")
    assert [list(c.after or {}) for c in fixed.changes] == [["public_access_block"]]
    assert all(s3.get_public_access_block(Bucket=assets)["PublicAccessBlockConfiguration"].values())


def test_distribution_with_origin_access_control_and_bucket_policy(
    sandbox_cfg: Config, mutations: Mutations, faithful_moto: None
) -> None:
    assets = ensure_asset_bucket.fn(sandbox_cfg, "primary").outputs
    mutations.reset()
    plan = ensure_distribution.fn(sandbox_cfg, assets["asset_bucket_domain"], WAF, dry_run=True)
    assert mutations.calls == []
    assert [c.resource for c in plan.changes] == [
        "cloudfront:origin-access-control",
        "cloudfront:distribution",
    ]

    out = ensure_distribution.fn(sandbox_cfg, assets["asset_bucket_domain"], WAF).outputs
    assert ensure_distribution.fn(sandbox_cfg, assets["asset_bucket_domain"], WAF).changes == []
    ensure_asset_bucket_policy.fn(sandbox_cfg, "primary", out["distribution_arn"])
    assert (
        ensure_asset_bucket_policy.fn(sandbox_cfg, "primary", out["distribution_arn"]).changes == []
    )

    cf = plain(sandbox_cfg, "cloudfront", "us-east-1")
    got = cf.get_distribution_config(Id=out["distribution_id"])
    origins = {o["Id"]: o for o in got["DistributionConfig"]["Origins"]["Items"]}
    assert origins["assets"]["OriginAccessControlId"]
    assert origins["app"]["DomainName"] == "origin.shop.example.com"
    assert origins["app"]["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert got["DistributionConfig"]["WebACLId"] == WAF
    s3 = plain(sandbox_cfg, "s3", "us-east-1")
    policy = json.loads(s3.get_bucket_policy(Bucket=assets["asset_bucket"])["Policy"])
    reader = next(s for s in policy["Statement"] if s["Sid"] == "CloudFrontOnly")
    assert reader["Condition"] == {"StringEquals": {"AWS:SourceArn": out["distribution_arn"]}}

    conf = got["DistributionConfig"]
    conf["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "allow-all"
    cf.update_distribution(Id=out["distribution_id"], IfMatch=got["ETag"], DistributionConfig=conf)
    fixed = ensure_distribution.fn(sandbox_cfg, assets["asset_bucket_domain"], WAF)
    assert [list(c.after or {}) for c in fixed.changes] == [["DefaultCacheBehavior"]]
    again = cf.get_distribution_config(Id=out["distribution_id"])["DistributionConfig"]
    assert again["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
