"""S3 buckets of the edge: static assets (served only through CloudFront) and ALB access logs.

Both: Block Public Access on, objects owned by the bucket owner (no ACLs), encryption at rest
with S3-managed keys (ALB log delivery supports only SSE-S3), TLS-only access. Assets are
versioned; logs expire after ``LOG_EXPIRY_DAYS``. The log bucket admits ALB log delivery for
its region; the asset bucket admits exactly one CloudFront distribution (Origin Access
Control), set once the distribution exists (:func:`ensure_asset_bucket_policy`).

A third bucket per region, made by the backup drill when the stack has a cache, stages the
cache's backup on its way to the DR region (:func:`ensure_drill_bucket`). ElastiCache reads and
writes a bucket only through its ACL, so this one keeps ACLs (objects still owned by the
bucket owner) and grants ElastiCache's canonical user what exports and restores need; its
objects expire after a day, and the drill deletes its own at its end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect, role_client
from tasks.core.changes import Change, StepResult, created, deleted, result, tag_change, updated
from tasks.core.policies import policy_doc, same_policy
from tasks.core.retry import absent
from tasks.core.steps import step
from tasks.core.tags import missing_tags, tag_dict, tag_list

LOG_EXPIRY_DAYS = 90
S3_BATCH = 1000  # DeleteObjects takes at most this many keys


LOG_PREFIX = "alb"


# Regions older than August 2022 deliver ALB logs from a regional ELB account; newer ones
# use the log-delivery service principal.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
ELB_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "ca-central-1": "985666609251",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "eu-central-1": "054676820928",
    "eu-north-1": "897822967062",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-south-1": "718504428378",
    "sa-east-1": "507241528517",
}


PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


# ElastiCache's canonical user in the commercial regions, which exports backups to S3 and seeds
# new groups from them: https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/backups-exporting.html
ELASTICACHE_CANONICAL_ID = "540804c33a284a299d2547575ce1010f2312ef3da9b3a053c8bc45bf233e4353"
# on the bucket: list it, write the export, read the bucket's ACL (the service checks it)
ELASTICACHE_BUCKET_PERMISSIONS = ("READ", "WRITE", "READ_ACP")
DRILL_EXPIRY_DAYS = 1


def _deny_plain_http(bucket: str) -> dict[str, Any]:
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def log_bucket_policy(bucket: str, region: str, account: str) -> dict[str, Any]:
    elb = ELB_ACCOUNTS.get(region)
    principal = (
        {"AWS": f"arn:aws:iam::{elb}:root"}
        if elb
        else {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            _deny_plain_http(bucket),
            {
                "Sid": "AlbLogDelivery",
                "Effect": "Allow",
                "Principal": principal,
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/{LOG_PREFIX}/AWSLogs/{account}/*",
            },
        ],
    }


def asset_bucket_policy(bucket: str, distribution_arn: str | None) -> dict[str, Any]:
    statements = [_deny_plain_http(bucket)]
    if distribution_arn:
        statements.append(
            {
                "Sid": "CloudFrontOnly",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _read(fn: Callable[[], Any], *missing: str) -> Any:
    return absent(fn, *missing)


class _Bucket:
    """Describe/compare/set one bucket's settings; each setting is (current, desired, apply)."""

    def __init__(
        self,
        cfg: Config,
        role: Role,
        name: str,
        dry_run: bool,
        ownership: str = "BucketOwnerEnforced",
    ) -> None:
        self.ownership = ownership
        self.names = names_for(cfg, role)
        self.s3 = connect(cfg).client("s3", self.names.region)
        self.name, self.dry_run, self.changes = name, dry_run, []  # type: ignore[var-annotated]

    def exists(self) -> bool:
        return (
            _read(lambda: self.s3.head_bucket(Bucket=self.name), "404", "NoSuchBucket", "NotFound")
            is not None
        )

    def create(self, tags: dict[str, str]) -> None:
        self.changes.append(created("s3:bucket", self.name, self.names.region, {"tags": tags}))
        if self.dry_run:
            return
        extra = (
            {}
            if self.names.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": self.names.region}}
        )
        self.s3.create_bucket(Bucket=self.name, ObjectOwnership=self.ownership, **extra)

    def setting(
        self, key: str, current: Any, desired: Any, apply: Callable[[], Any], *, created: bool
    ) -> None:
        if current == desired:
            return
        if not created:
            self.changes.append(
                updated("s3:bucket", self.name, self.names.region, {key: current}, {key: desired})
            )
        if not self.dry_run:
            apply()

    def current(self, getter: str, key: str, *missing: str) -> Any:
        if not self.readable:  # a bucket a dry run has not created
            return None
        got = _read(lambda: getattr(self.s3, getter)(Bucket=self.name), *missing)
        return None if got is None else got.get(key)

    readable = True


def _converge_bucket(
    cfg: Config,
    role: Role,
    name: str,
    policy: dict[str, Any] | None,
    component: str,
    *,
    versioned: bool,
    expire_days: int | None,
    dry_run: bool,
    object_ownership: str = "BucketOwnerEnforced",
    then: Callable[[_Bucket, bool], None] | None = None,
) -> list[Change]:
    """``then(bucket, created)``: a setting only some buckets have, converged last."""
    b = _Bucket(cfg, role, name, dry_run, object_ownership)
    tags = b.names.tags(component)
    created = not b.exists()
    if created:
        b.create(tags)
        b.readable = not dry_run
    s3 = b.s3
    pab = b.current(
        "get_public_access_block",
        "PublicAccessBlockConfiguration",
        "NoSuchPublicAccessBlockConfiguration",
    )
    b.setting(
        "public_access_block",
        pab,
        PUBLIC_ACCESS_BLOCK,
        lambda: s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
        ),
        created=created,
    )
    ownership = b.current(
        "get_bucket_ownership_controls", "OwnershipControls", "OwnershipControlsNotFoundError"
    )
    want_own = {"Rules": [{"ObjectOwnership": object_ownership}]}
    b.setting(
        "ownership",
        ownership,
        want_own,
        lambda: s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=want_own),
        created=created,
    )
    enc = b.current(
        "get_bucket_encryption",
        "ServerSideEncryptionConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
    )
    algo = (
        ((enc or {}).get("Rules") or [{}])[0]
        .get("ApplyServerSideEncryptionByDefault", {})
        .get("SSEAlgorithm")
    )
    b.setting(
        "encryption",
        algo,
        "AES256",
        lambda: s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=ENCRYPTION),
        created=created,
    )
    if versioned:
        status = b.current("get_bucket_versioning", "Status")
        b.setting(
            "versioning",
            status,
            "Enabled",
            lambda: s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            ),
            created=created,
        )
    if expire_days:
        rules = (
            b.current("get_bucket_lifecycle_configuration", "Rules", "NoSuchLifecycleConfiguration")
            or []
        )
        mine = next((r for r in rules if r.get("ID") == "tierbook-expire"), None)
        have_days = (mine or {}).get("Expiration", {}).get("Days")
        rule = {
            "ID": "tierbook-expire",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Expiration": {"Days": expire_days},
        }
        others = [r for r in rules if r.get("ID") != "tierbook-expire"]
        b.setting(
            "expire_days",
            have_days,
            expire_days,
            lambda: s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [*others, rule]}
            ),
            created=created,
        )
    if policy is not None:
        have_policy = b.current("get_bucket_policy", "Policy", "NoSuchBucketPolicy")
        same = same_policy(have_policy, policy)
        b.setting(
            "policy",
            None if same else policy_doc(have_policy),
            None if same else policy,
            lambda: s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy)),
            created=created,
        )
    if not created:
        have_tags = tag_dict(
            (_read(lambda: s3.get_bucket_tagging(Bucket=name), "NoSuchTagSet") or {}).get("TagSet")
        )
        if change := tag_change("s3:bucket", name, b.names.region, tags, have_tags):
            b.changes.append(change)
    else:
        have_tags = {}
    if (created or missing_tags(tags, have_tags)) and not dry_run:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list({**have_tags, **tags})})
    if then is not None:
        then(b, created)
    return b.changes


def _grant_elasticache(b: _Bucket, created: bool) -> None:
    """The bucket's ACL: what it grants, and ElastiCache's
    :data:`ELASTICACHE_BUCKET_PERMISSIONS`."""
    grantee = ELASTICACHE_CANONICAL_ID
    acl = b.s3.get_bucket_acl(Bucket=b.name) if b.readable else None
    have = sorted(
        g["Permission"]
        for g in (acl or {}).get("Grants", [])
        if g.get("Grantee", {}).get("ID") == grantee
    )
    want = sorted(ELASTICACHE_BUCKET_PERMISSIONS)

    def apply() -> None:
        current = b.s3.get_bucket_acl(Bucket=b.name)
        owner = current["Owner"]
        others = [g for g in current["Grants"] if g.get("Grantee", {}).get("ID") != grantee]
        mine = [
            {"Grantee": {"Type": "CanonicalUser", "ID": grantee}, "Permission": p} for p in want
        ]
        b.s3.put_bucket_acl(
            Bucket=b.name, AccessControlPolicy={"Owner": owner, "Grants": [*others, *mine]}
        )

    b.setting("acl_grants", have or None, want, apply, created=created)


@step("ensure {role} log bucket")
def ensure_log_bucket(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    policy = log_bucket_policy(names.log_bucket, names.region, cfg.account_id)
    changes = _converge_bucket(
        cfg,
        role,
        names.log_bucket,
        policy,
        "logs",
        versioned=False,
        expire_days=LOG_EXPIRY_DAYS,
        dry_run=dry_run,
    )
    return StepResult(
        changes=changes, outputs={"log_bucket": names.log_bucket}, applied=not dry_run
    )


@step("ensure {role} asset bucket")
def ensure_asset_bucket(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """The bucket and its settings; its policy waits for the distribution (see below)."""
    names = names_for(cfg, role)
    changes = _converge_bucket(
        cfg,
        role,
        names.asset_bucket,
        None,
        "assets",
        versioned=True,
        expire_days=None,
        dry_run=dry_run,
    )
    domain = f"{names.asset_bucket}.s3.{names.region}.amazonaws.com"
    return StepResult(
        changes=changes,
        outputs={"asset_bucket": names.asset_bucket, "asset_bucket_domain": domain},
        applied=not dry_run,
    )


@step("ensure {role} asset bucket policy")
def ensure_asset_bucket_policy(
    cfg: Config, role: Role, distribution_arn: str, *, dry_run: bool = False
) -> StepResult:
    """Only ``distribution_arn`` may read the assets (and only over TLS)."""
    names = names_for(cfg, role)
    policy = asset_bucket_policy(names.asset_bucket, distribution_arn)
    changes = _converge_bucket(
        cfg,
        role,
        names.asset_bucket,
        policy,
        "assets",
        versioned=True,
        expire_days=None,
        dry_run=dry_run,
    )
    return StepResult(changes=changes, applied=not dry_run)


@step("ensure {role} drill bucket")
def ensure_drill_bucket(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """The backup drill's staging bucket for the cache's backup (see the module's text)."""
    names = names_for(cfg, role)
    changes = _converge_bucket(
        cfg,
        role,
        names.drill_bucket,
        None,  # no policy: only the ACL's two grantees reach it (and the sandbox serves HTTP)
        "drill",
        versioned=False,
        expire_days=DRILL_EXPIRY_DAYS,
        dry_run=dry_run,
        object_ownership="BucketOwnerPreferred",
        then=_grant_elasticache,
    )
    return StepResult(
        changes=changes, outputs={"drill_bucket": names.drill_bucket}, applied=not dry_run
    )


@step("delete {role} buckets")
def ensure_buckets_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """The log bucket, the asset bucket in primary, the backup drill's bucket where a drill
    made one: every object version and delete marker first, since S3 refuses to delete a
    bucket that is not empty."""
    names = names_for(cfg, role)
    s3 = role_client(cfg, "s3", role)
    buckets = [names.log_bucket] + ([names.asset_bucket] if role == "primary" else [])
    buckets.append(names.drill_bucket)
    changes: list[Change] = []
    for bucket in buckets:
        if absent(partial(s3.head_bucket, Bucket=bucket), "404", "NoSuchBucket") is None:
            continue
        changes.append(deleted("s3:bucket", bucket, names.region, "emptied of every version"))
        if dry_run:
            continue
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            keys = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for i in range(0, len(keys), S3_BATCH):
                s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": keys[i : i + S3_BATCH], "Quiet": True}
                )
        s3.delete_bucket(Bucket=bucket)
    return result(changes, dry_run)
