"""The backup drill's cache part: prove the cache's backup restores in the DR region.

ElastiCache copies a backup only within its region, so the way to DR goes through S3, as AWS
documents it: the drill's cache snapshot is exported to the primary region's drill bucket
(``CopySnapshot`` with ``TargetBucket``, one ``<snapshot>-0001.rdb`` per shard), the file is
copied to the DR region's drill bucket (S3's managed copy, multipart when large) and made
readable by ElastiCache, and a temporary replication group is seeded from it
(``CreateReplicationGroup`` with ``SnapshotArns``) in the DR data subnets, behind the data
security group, encrypted. Each part is timed. :func:`delete_temporary_cache` runs at the end
whatever happened: the group, its subnet group and both copies of the file are deleted; it
refuses any group not named like a drill.

The buckets are :func:`tasks.resources.buckets.ensure_drill_bucket`'s (ACLs kept for
ElastiCache's canonical user, objects expire after a day, deleted by ``destroy``).
"""

from __future__ import annotations

import time
from typing import Any

from configs.errors import NotFound, Refused
from configs.models import Config
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.changes import Change, StepResult, created, temporary
from tasks.core.errors import AwsError
from tasks.core.retry import absent, is_code, wait_for
from tasks.core.steps import step
from tasks.resources.buckets import ELASTICACHE_CANONICAL_ID
from tasks.resources.network.vpc import NetworkIds
from tasks.runbooks.drills.backup import drill_prefix, drill_tags

EXPORT_TIMEOUT_S = 3600.0
CACHE_RESTORE_TIMEOUT_S = 3600.0
CACHE_DELETE_TIMEOUT_S = 1800.0
# ReplicationGroupId and CacheSubnetGroupName: at most 40 characters
GROUP_ID_MAX = 40
FAILED = {"create-failed"}


def export_key(drill: str) -> str:
    """The file ElastiCache writes for a one-shard (cluster mode off) export. Pure."""
    return f"{drill}-0001.rdb"


def temporary_cache_id(cfg: Config, drill: str) -> str:
    """The temporary group's id: the drill's, or its prefix and random part when that is too
    long for ElastiCache. Pure."""
    if len(drill) <= GROUP_ID_MAX:
        return drill
    short = f"{drill_prefix(cfg)}{drill[-4:]}"
    if len(short) > GROUP_ID_MAX:
        raise Refused(
            f"{cfg.stack}: too long for a temporary cache id ({len(short)} > {GROUP_ID_MAX} "
            "characters); shorten app or env, or run the drill without the cache restore"
        )
    return short


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    return absent(lambda: s3.head_object(Bucket=bucket, Key=key), "404", "NoSuchKey", "NotFound")


@step("export cache backup")
def export_cache_snapshot(
    cfg: Config, drill: str, *, timeout_s: float = EXPORT_TIMEOUT_S
) -> StepResult:
    """The drill's cache snapshot exported to the primary drill bucket; an export already made
    by this drill is reused."""
    names = names_for(cfg, "primary")
    bucket, key = names.drill_bucket, export_key(drill)
    s3 = connect(cfg).client("s3", names.region)
    started = time.monotonic()
    if _head(s3, bucket, key) is None:
        ec = connect(cfg).client("elasticache", names.region)
        ec.copy_snapshot(SourceSnapshotName=drill, TargetSnapshotName=drill, TargetBucket=bucket)
    done = wait_for(
        lambda: _head(s3, bucket, key) or {},
        until=bool,
        what=f"export s3://{bucket}/{key}",
        timeout_s=timeout_s,
    )
    seconds = time.monotonic() - started
    size = int(done.get("ContentLength") or 0)
    return StepResult(
        outputs={"seconds": seconds, "bytes": size},
        status="ok",
        detail=f"s3://{bucket}/{key} ({size} bytes, {seconds:.1f}s)",
    )


@step("copy cache backup to DR")
def copy_cache_export_to_dr(cfg: Config, drill: str) -> StepResult:
    """The exported file copied into the DR drill bucket and made readable by ElastiCache
    (an object ACL: owner full control, ElastiCache read)."""
    primary, dr = names_for(cfg, "primary"), names_for(cfg, "dr")
    key = export_key(drill)
    source = connect(cfg).client("s3", primary.region)
    target = connect(cfg).client("s3", dr.region)
    started = time.monotonic()
    target.copy(
        {"Bucket": primary.drill_bucket, "Key": key}, dr.drill_bucket, key, SourceClient=source
    )
    owner = target.get_object_acl(Bucket=dr.drill_bucket, Key=key)["Owner"]
    target.put_object_acl(
        Bucket=dr.drill_bucket,
        Key=key,
        AccessControlPolicy={
            "Owner": owner,
            "Grants": [
                {
                    "Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]},
                    "Permission": "FULL_CONTROL",
                },
                {
                    "Grantee": {"Type": "CanonicalUser", "ID": ELASTICACHE_CANONICAL_ID},
                    "Permission": "READ",
                },
            ],
        },
    )
    seconds = time.monotonic() - started
    arn = f"arn:aws:s3:::{dr.drill_bucket}/{key}"
    return StepResult(
        outputs={"seconds": seconds, "arn": arn},
        status="ok",
        detail=f"{arn} ({seconds:.1f}s)",
    )


def _group(ec: Any, ident: str) -> dict[str, Any] | None:
    found = absent(
        lambda: ec.describe_replication_groups(ReplicationGroupId=ident)["ReplicationGroups"],
        "ReplicationGroupNotFoundFault",
    )
    return found[0] if found else None


@step("restore temporary cache in DR")
def restore_temporary_cache(
    cfg: Config,
    drill: str,
    arn: str,
    network: NetworkIds,
    *,
    timeout_s: float = CACHE_RESTORE_TIMEOUT_S,
) -> StepResult:
    """A one-node replication group seeded from ``arn``, in a subnet group of its own over
    the DR data subnets behind the data group (``network``: DR's, as ``find_network`` reads
    it); single node, no failover: it lives only as long as the drill."""
    c = cfg.cache
    assert c is not None
    dr = names_for(cfg, "dr")
    if not network.complete:
        raise NotFound(f"the DR network of {cfg.stack} is not all there: provision DR first")
    ident = temporary_cache_id(cfg, drill)
    ec = connect(cfg).client("elasticache", dr.region)
    started = time.monotonic()
    if _group(ec, ident) is None:
        try:
            ec.create_cache_subnet_group(
                CacheSubnetGroupName=ident,
                CacheSubnetGroupDescription=f"backup drill {drill}",
                SubnetIds=network.subnets["data"],
                Tags=drill_tags(cfg, drill),
            )
        except AwsError as exc:
            if not is_code(exc, "CacheSubnetGroupAlreadyExists"):
                raise
        params: dict[str, Any] = {
            "ReplicationGroupId": ident,
            "ReplicationGroupDescription": f"backup drill {drill}",
            "Engine": c.engine,
            "EngineVersion": c.engine_version,
            "CacheNodeType": c.node_type,
            "NumCacheClusters": 1,
            "CacheSubnetGroupName": ident,
            "Port": c.port,
            "TransitEncryptionEnabled": True,
            "AtRestEncryptionEnabled": True,
            "SnapshotArns": [arn],
            "SecurityGroupIds": [network.security_groups["data"]],
            "Tags": drill_tags(cfg, drill),
        }
        ec.create_replication_group(**params)
    wait_for(
        lambda: _group(ec, ident) or {"Status": "missing"},
        until=lambda g: g.get("Status") == "available",
        failed=lambda g: (
            f"group is {g['Status']}" if g.get("Status") in FAILED | {"missing"} else None
        ),
        what=f"temporary cache {ident} available",
        timeout_s=timeout_s,
        describe=lambda g: str(g.get("Status")),
    )
    seconds = time.monotonic() - started
    return StepResult(
        outputs={"seconds": seconds, "cache": ident},
        status="ok",
        detail=f"{ident} available in {dr.region} ({seconds:.1f}s)",
    )


@step("delete temporary cache")
def delete_temporary_cache(
    cfg: Config, drill: str, *, timeout_s: float = CACHE_DELETE_TIMEOUT_S
) -> StepResult:
    """Always runs, also after a failed step: the group (once AWS accepts its delete), its
    subnet group, the exported file in both buckets. Refuses anything not named like a drill."""
    ident = temporary_cache_id(cfg, drill)
    if not ident.startswith(drill_prefix(cfg)) or not drill.startswith(drill_prefix(cfg)):
        raise Refused(f"{ident} is not a drill cache; not deleting it")
    dr = names_for(cfg, "dr")
    ec = connect(cfg).client("elasticache", dr.region)
    gone: list[str] = []
    group = _group(ec, ident)
    if group is not None:
        if group.get("Status") not in ("available", "create-failed", "deleting"):
            wait_for(
                lambda: _group(ec, ident) or {"Status": "gone"},
                until=lambda g: (
                    g.get("Status") in ("available", "create-failed", "deleting", "gone")
                ),
                what=f"{ident} ready to delete",
                timeout_s=timeout_s,
            )
        if (_group(ec, ident) or {}).get("Status") not in (None, "deleting"):
            ec.delete_replication_group(ReplicationGroupId=ident)
        wait_for(
            lambda: _group(ec, ident) is None,
            until=bool,
            what=f"{ident} deleted",
            timeout_s=timeout_s,
        )
        gone.append(f"replication group {ident}")
    if (
        absent(
            lambda: ec.delete_cache_subnet_group(CacheSubnetGroupName=ident),
            "CacheSubnetGroupNotFoundFault",
        )
        is not None
    ):
        gone.append(f"subnet group {ident}")
    key = export_key(drill)
    for role in ("primary", "dr"):
        names = names_for(cfg, role)
        s3 = connect(cfg).client("s3", names.region)
        if _head(s3, names.drill_bucket, key) is not None:
            s3.delete_object(Bucket=names.drill_bucket, Key=key)
            gone.append(f"s3://{names.drill_bucket}/{key}")
    return StepResult(
        outputs={"deleted": gone},
        status="ok",
        detail=("deleted " + ", ".join(gone)) if gone else "nothing was made: nothing to delete",
    )


def plan_cache_restore(cfg: Config, drill: str) -> list[Change]:
    """What the cache part makes and deletes. Pure."""
    primary, dr = names_for(cfg, "primary"), names_for(cfg, "dr")
    key, ident = export_key(drill), temporary_cache_id(cfg, drill)
    return [
        created("s3:object", f"{primary.drill_bucket}/{key}", primary.region, {"export_of": drill}),
        created("s3:object", f"{dr.drill_bucket}/{key}", dr.region, {"copy_of": key}),
        *temporary(
            "elasticache:replication-group",
            ident,
            dr.region,
            {"seeded_from": f"{dr.drill_bucket}/{key}", "nodes": 1},
            "temporary: deleted with its subnet group and both files at the end",
        ),
    ]
