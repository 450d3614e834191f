"""Destroy, data layer: databases (replicas first, the writer with a final snapshot), the
cache, subnet groups, the master secret's DR replica and the KMS keys.

The KMS key goes last and is only scheduled for deletion (the 7-day minimum window): the final
snapshot is encrypted with it, so within that window it can still be restored, copied under
another key, or the deletion cancelled (``kms cancel-key-deletion``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.aws import connect
from tasks.changes import Change, StepResult
from tasks.database import describe_instance, is_aurora, primary_secret_arn, rds_client
from tasks.retry import absent, is_code, wait_for
from tasks.steps import step
from tasks.teardown import GONE_TIMEOUT_S, database_identifiers, deleted, result, wait_gone

KMS_PENDING_DAYS = 7  # the minimum AWS allows


FINAL = "-final-"  # final snapshots: <instance>-final-<UTC stamp>, so they sort by age


def final_snapshot_id(identifier: str, at: datetime | None = None) -> str:
    return f"{identifier}{FINAL}{(at or datetime.now(UTC)).strftime('%Y%m%d-%H%M%S')}"


@step("remove the database secret's DR replica")
def ensure_secret_replica_deleted(cfg: Config, *, dry_run: bool = False) -> StepResult:
    """The replica tierbook added to the RDS-managed master secret (RDS owns the secret)."""
    arn = primary_secret_arn(cfg)
    if not arn:
        return result([], dry_run)
    sm = connect(cfg).client("secretsmanager", cfg.regions.primary)
    found = absent(lambda: sm.describe_secret(SecretId=arn), "ResourceNotFoundException")
    status = (found or {}).get("ReplicationStatus") or []
    if not any(r.get("Region") == cfg.regions.dr for r in status):
        return result([], dry_run)
    if not dry_run:
        sm.remove_regions_from_replication(SecretId=arn, RemoveReplicaRegions=[cfg.regions.dr])
    return result([deleted("secretsmanager:replica", arn.split(":")[-1], cfg.regions.dr)], dry_run)


def _delete_instance(rds: Any, db: dict[str, Any], final_snapshot: str | None) -> None:
    params: dict[str, Any] = {"DBInstanceIdentifier": db["DBInstanceIdentifier"]}
    if final_snapshot:
        params["FinalDBSnapshotIdentifier"] = final_snapshot
    else:
        params["SkipFinalSnapshot"] = True
    try:
        rds.delete_db_instance(**params, DeleteAutomatedBackups=True)
    except Exception as exc:  # a retried delete whose first attempt went through
        if not is_code(exc, "DBInstanceNotFound", "DBInstanceNotFoundFault"):
            raise


@step("delete {role} databases")
def ensure_databases_deleted(
    cfg: Config, role: Role, skip_final_snapshot: bool = False, *, dry_run: bool = False
) -> StepResult:
    """Replicas first (each would otherwise be promoted to a standalone database when its
    source goes), then the primary's writer with a final snapshot unless told to skip it."""
    if is_aurora(cfg):
        from tasks.teardown_aurora import delete_aurora

        return delete_aurora(cfg, role, skip_final_snapshot, dry_run=dry_run)
    names = names_for(cfg, role)
    region, rds = names.region, rds_client(cfg, role)
    writer = describe_instance(rds, names.db_instance) if role == "primary" else None
    idents = database_identifiers(cfg, role, writer)
    changes: list[Change] = []
    snapshot = None
    for ident in idents:
        db = describe_instance(rds, ident)
        if db is None:
            continue
        is_writer = role == "primary" and ident == names.db_instance
        take = is_writer and not skip_final_snapshot
        if db.get("DBInstanceStatus") != "deleting":
            if take:
                snapshot = final_snapshot_id(ident)
            detail = f"final snapshot {snapshot}" if take else "no final snapshot"
            changes.append(deleted("rds:instance", ident, region, detail))
            if not dry_run:
                _delete_instance(rds, db, snapshot if take else None)
        if not dry_run:
            wait_gone(partial(describe_instance, rds, ident), f"database {ident} deleted")
    if snapshot is None and role == "primary" and not skip_final_snapshot:
        snapshot = _earlier_final_snapshot(rds, names.db_instance)
    elif snapshot and not dry_run:
        wait_for(
            lambda: rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot)["DBSnapshots"][0][
                "Status"
            ],
            until=lambda s: s == "available",
            what=f"final snapshot {snapshot} available",
            timeout_s=GONE_TIMEOUT_S,
        )
    return result(changes, dry_run, final_snapshot=snapshot)


def _earlier_final_snapshot(rds: Any, identifier: str) -> str | None:
    """The newest final snapshot of ``identifier``: taken by a run that then stopped, so the
    run that finishes still reports it."""
    snaps = rds.describe_db_snapshots(DBInstanceIdentifier=identifier, SnapshotType="manual")
    return newest_final(identifier, [s["DBSnapshotIdentifier"] for s in snaps["DBSnapshots"]])


def newest_final(identifier: str, snapshot_ids: list[str]) -> str | None:
    """The newest of ``identifier``'s final snapshots among ``snapshot_ids``. Pure."""
    finals = [s for s in snapshot_ids if s.startswith(identifier + FINAL)]
    return max(finals) if finals else None


@step("delete {role} DB subnet group")
def ensure_db_subnet_group_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    rds, name = rds_client(cfg, role), names.db_subnet_group
    found = absent(
        lambda: rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"],
        "DBSubnetGroupNotFoundFault",
    )
    if not found:
        return result([], dry_run)
    if not dry_run:
        rds.delete_db_subnet_group(DBSubnetGroupName=name)
    return result([deleted("rds:subnet-group", name, names.region)], dry_run)


@step("delete cache")
def ensure_cache_deleted(cfg: Config, *, dry_run: bool = False) -> StepResult:
    """The replication group (its nodes go with it), then its subnet group."""
    names = names_for(cfg, "primary")
    ec = connect(cfg).client("elasticache", names.region)
    ident, group = names.cache, names.cache_subnet_group

    def describe() -> Any:
        return absent(
            lambda: ec.describe_replication_groups(ReplicationGroupId=ident)["ReplicationGroups"],
            "ReplicationGroupNotFoundFault",
        )

    changes: list[Change] = []
    found = describe()
    if found:
        if found[0].get("Status") != "deleting":
            changes.append(deleted("elasticache:replication-group", ident, names.region))
            if not dry_run:
                ec.delete_replication_group(ReplicationGroupId=ident, RetainPrimaryCluster=False)
        if not dry_run:
            wait_gone(describe, f"cache {ident} deleted")
    subnets = absent(
        lambda: ec.describe_cache_subnet_groups(CacheSubnetGroupName=group)["CacheSubnetGroups"],
        "CacheSubnetGroupNotFoundFault",
    )
    if subnets:
        changes.append(deleted("elasticache:subnet-group", group, names.region))
        if not dry_run:
            ec.delete_cache_subnet_group(CacheSubnetGroupName=group)
    return result(changes, dry_run)


@step("schedule {role} KMS key deletion")
def ensure_kms_key_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Schedule the key's deletion, then drop the alias (so a later provision makes a new key).
    In that order: a run interrupted between the two still finds the key by its alias."""
    names = names_for(cfg, role)
    kms = connect(cfg).client("kms", names.region)
    alias = names.kms_alias
    key = absent(lambda: kms.describe_key(KeyId=alias)["KeyMetadata"], "NotFoundException")
    if key is None:
        return result([], dry_run)
    changes = []
    if key.get("KeyState") not in ("PendingDeletion", "PendingReplicaDeletion"):
        changes.append(
            deleted("kms:key", alias, names.region, f"scheduled in {KMS_PENDING_DAYS} days")
        )
        if not dry_run:
            kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=KMS_PENDING_DAYS)
    changes.append(deleted("kms:alias", alias, names.region))
    if not dry_run:
        kms.delete_alias(AliasName=alias)
    return result(changes, dry_run, key_id=key["KeyId"])
