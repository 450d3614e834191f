"""ElastiCache backups through S3, which moto 5.2 lacks: ``CopySnapshot`` with a
``TargetBucket`` (an export) and ``CreateReplicationGroup`` with ``SnapshotArns`` (a group
seeded from ``.rdb`` files), with the checks AWS makes.

* An export writes ``<TargetSnapshotName>-0001.rdb`` (one shard) into the bucket. Refused, with
  AWS's messages, when the source snapshot is missing, the bucket does not exist, is in another
  region, or does not grant ElastiCache's canonical user ``READ``, ``WRITE`` and ``READ_ACP`` in
  its ACL (a bucket whose ownership setting disables ACLs grants nothing), or already holds the
  object.
* A group seeded from ``SnapshotArns`` is refused unless each object exists and its ACL grants
  ElastiCache ``READ``.

The answers are AWS's error codes (``SnapshotNotFoundFault``, ``InvalidParameterValue``).
"""

from __future__ import annotations

from typing import Any

# ElastiCache's canonical user (commercial regions), as AWS documents it for exports
CANONICAL_ID = "540804c33a284a299d2547575ce1010f2312ef3da9b3a053c8bc45bf233e4353"
BUCKET_NEEDS = ("READ", "WRITE", "READ_ACP")
# what the export holds: an RDB header, enough for a client to recognise the file
RDB = b"REDIS0011\xfa\tredis-ver\x057.2.0\xff" + b"\x00" * 8


def fault(code: str, message: str) -> Exception:
    from sandbox.sim_elasticache import fault as cache_fault

    return cache_fault(code, message)


def granted(acl: Any, permission: str) -> bool:
    """Whether ``acl`` (moto's FakeAcl) grants ElastiCache ``permission``."""
    for grant in getattr(acl, "grants", None) or []:
        if any(g.id == CANONICAL_ID for g in grant.grantees) and (
            permission in grant.permissions or "FULL_CONTROL" in grant.permissions
        ):
            return True
    return False


def acls_enabled(bucket: Any) -> bool:
    """A bucket's ACL counts unless its ownership setting is ``BucketOwnerEnforced`` (moto
    keeps the setting as a plain string)."""
    return bool(bucket.ownership_rule) and bucket.ownership_rule != "BucketOwnerEnforced"


def s3_of(account: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account]["aws"]


def export(account: str, region: str, source: Any, target: str, bucket_name: str) -> str:
    """Write the export of ``source`` (moto's Snapshot) as ``<target>-0001.rdb``."""
    s3 = s3_of(account)
    bucket = s3.buckets.get(bucket_name)
    if bucket is None:
        raise fault("InvalidParameterValue", f"The S3 bucket {bucket_name} does not exist.")
    if bucket.region_name != region:
        raise fault(
            "InvalidParameterValue", f"The S3 bucket {bucket_name} is outside of the region."
        )
    for permission in BUCKET_NEEDS:
        if not (acls_enabled(bucket) and granted(bucket.acl, permission)):
            raise fault(
                "InvalidParameterValue",
                f"ElastiCache has not been granted {permission} permissions "
                f"{bucket_name} on the S3 Bucket.",
            )
    key = f"{target}-0001.rdb"
    if key in bucket.keys:
        raise fault(
            "InvalidParameterValue",
            f"The S3 bucket {bucket_name} already contains an object with name {key}.",
        )
    s3.put_object(bucket_name, key, RDB, encryption="AES256")
    return key


def check_seed(account: str, arns: list[str]) -> None:
    """Each ``arn:aws:s3:::bucket/key`` exists and ElastiCache may read it."""
    s3 = s3_of(account)
    for arn in arns:
        path = arn.split(":::", 1)[-1]
        bucket_name, _, key = path.partition("/")
        bucket = s3.buckets.get(bucket_name)
        obj = bucket.keys.get(key) if bucket is not None and key else None
        if obj is None:
            raise fault("InvalidParameterValue", f"No such file: {arn}")
        if not (acls_enabled(bucket) and granted(obj.acl, "READ")):
            raise fault(
                "InvalidParameterValue",
                f"ElastiCache has not been granted READ permissions on the S3 object {arn}.",
            )


def install() -> None:
    """Teach moto's ElastiCache the export and the seeding (once, from ``moto_fixes``)."""
    from moto.core.responses import ActionResult
    from moto.elasticache.models import ElastiCacheBackend
    from moto.elasticache.responses import ElastiCacheResponse

    def copy_snapshot(self: Any) -> ActionResult:
        backend = self.elasticache_backend
        name = self._get_param("SourceSnapshotName")
        target = self._get_param("TargetSnapshotName")
        bucket = self._get_param("TargetBucket")
        source = backend.snapshots.get(name)
        if source is None:
            raise fault("SnapshotNotFoundFault", f"Snapshot {name} not found.")
        if not bucket:
            raise fault(
                "InvalidParameterValue", "the sandbox copies snapshots only to S3 (TargetBucket)"
            )
        export(self.current_account, self.region, source, target, bucket)
        return ActionResult(
            {
                "Snapshot": {
                    "SnapshotName": target,
                    "ReplicationGroupId": source.replication_group_id,
                    "SnapshotStatus": "exporting",
                    "SnapshotSource": "manual",
                }
            }
        )

    ElastiCacheResponse.copy_snapshot = copy_snapshot  # type: ignore[attr-defined]

    create = ElastiCacheBackend.create_replication_group

    def create_replication_group(self: Any, **kwargs: Any) -> Any:
        if kwargs.get("snapshot_arns"):
            check_seed(self.account_id, list(kwargs["snapshot_arns"]))
        return create(self, **kwargs)

    ElastiCacheBackend.create_replication_group = create_replication_group  # type: ignore[method-assign,assignment]
