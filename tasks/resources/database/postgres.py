"""Data layer: the PostgreSQL database of each region, found and converged.

Primary: an RDS PostgreSQL instance (Multi-AZ) or an Aurora PostgreSQL cluster with a writer
and readers spread over the AZs. Encrypted with the stack's KMS key, the master password
managed by RDS in Secrets Manager (never seen by tierbook), backups for PITR, deletion
protection, Performance Insights, IAM authentication. DR: a cross-region read replica (Aurora:
a secondary cluster of a global database), the path the failover runbook promotes.

:func:`find_database` is what the app layer reads to point task definitions at the database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.changes import (
    GONE_TIMEOUT_S,
    Action,
    Change,
    StepResult,
    created,
    deleted,
    diff,
    result,
    tag_change,
    updated,
)
from tasks.core.retry import is_code, wait_for, wait_gone
from tasks.core.tags import missing_tags, tag_dict, tag_list
from tasks.resources.database.lookup import (
    INSTANCE_NOT_FOUND,
    database_identifiers,
    describe_instance,
    info_from_instance,
    lookup_database,
    missing_info,
    rds_client,
)

AVAILABLE = "available"


# -- what the database should be -------------------------------------------------------------
def instance_settings(cfg: Config, data_sg: str, *, replica: bool = False) -> dict[str, Any]:
    """Settings ``ModifyDBInstance`` can converge, keyed by its parameter names. Pure."""
    db = cfg.database
    out: dict[str, Any] = {
        "DBInstanceClass": db.instance_class,
        "MultiAZ": db.multi_az,
        "DeletionProtection": db.deletion_protection,
        "EnablePerformanceInsights": db.performance_insights,
        "EnableIAMDatabaseAuthentication": db.iam_auth,
        "VpcSecurityGroupIds": [data_sg],
        "PubliclyAccessible": False,
        "CopyTagsToSnapshot": True,
    }
    if not replica:
        out["BackupRetentionPeriod"] = db.backup_retention_days
    return out


def observed_settings(db: dict[str, Any]) -> dict[str, Any]:
    """The same keys, read from a ``DescribeDBInstances`` entry. Pure."""
    return {
        "DBInstanceClass": db.get("DBInstanceClass"),
        "MultiAZ": bool(db.get("MultiAZ")),
        "DeletionProtection": bool(db.get("DeletionProtection")),
        "EnablePerformanceInsights": bool(db.get("PerformanceInsightsEnabled")),
        "EnableIAMDatabaseAuthentication": bool(db.get("IAMDatabaseAuthenticationEnabled")),
        "VpcSecurityGroupIds": sorted(
            g["VpcSecurityGroupId"]
            for g in db.get("VpcSecurityGroups", [])
            if g.get("Status", "active") in ("active", "adding")
        ),
        "PubliclyAccessible": bool(db.get("PubliclyAccessible")),
        "CopyTagsToSnapshot": bool(db.get("CopyTagsToSnapshot")),
        "BackupRetentionPeriod": db.get("BackupRetentionPeriod"),
    }


def instance_drift(
    desired: dict[str, Any], db: dict[str, Any], *, managed_secret: bool
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """``(before, after, cannot_fix)``: modifiable differences, and the ones that would need a
    new database (encryption at rest cannot be switched on in place). Pure."""
    have = observed_settings(db)
    want = {k: sorted(v) if isinstance(v, list) else v for k, v in desired.items()}
    before, after = diff(want, have)
    if managed_secret and not db.get("MasterUserSecret"):
        before["ManageMasterUserPassword"], after["ManageMasterUserPassword"] = False, True
    cannot = [] if db.get("StorageEncrypted") else ["StorageEncrypted"]
    return before, after, cannot


def _tags_of(db: dict[str, Any]) -> dict[str, str]:
    return tag_dict(db.get("TagList"))


def converge_instance(
    rds: Any,
    names: Any,
    ident: str,
    db: dict[str, Any],
    desired: dict[str, Any],
    *,
    managed_secret: bool,
    dry_run: bool,
) -> list[Change]:
    """Modify ``ident`` (writer or replica) towards ``desired`` and add missing tags; a
    difference that needs a new database is reported, not done."""
    region = names.region
    changes: list[Change] = []
    before, after, cannot = instance_drift(desired, db, managed_secret=managed_secret)
    if cannot:
        changes.append(
            Change(
                resource="rds:instance",
                name=ident,
                action=Action.REPLACE,
                region=region,
                detail=f"{', '.join(cannot)} cannot change in place: not done (restore a "
                "snapshot into an encrypted instance)",
            )
        )
    if after:
        changes.append(updated("rds:instance", ident, region, before, after))
        if not dry_run:
            rds.modify_db_instance(DBInstanceIdentifier=ident, ApplyImmediately=True, **after)
    tags = names.tags("data")
    if tag := tag_change("rds:instance", ident, region, tags, _tags_of(db)):
        changes.append(tag)
        if not dry_run:
            todo = missing_tags(tags, _tags_of(db))
            rds.add_tags_to_resource(ResourceName=db["DBInstanceArn"], Tags=tag_list(todo))
    return changes


def create_params(cfg: Config, kms_key_arn: str, data_sg: str) -> dict[str, Any]:
    """``CreateDBInstance`` input for the primary. The password is RDS's to make and keep in
    Secrets Manager (``ManageMasterUserPassword``): it never passes through tierbook. Pure."""
    d = cfg.database
    names = names_for(cfg, "primary")
    params: dict[str, Any] = {
        **instance_settings(cfg, data_sg),
        "DBInstanceIdentifier": names.db_instance,
        "Engine": d.engine,
        "EngineVersion": d.engine_version,
        "AllocatedStorage": d.allocated_storage_gb,
        "StorageType": d.storage_type,
        "StorageEncrypted": True,
        "KmsKeyId": kms_key_arn,
        "MasterUsername": d.master_username,
        "ManageMasterUserPassword": True,
        "MasterUserSecretKmsKeyId": kms_key_arn,
        "DBName": d.db_name,
        "Port": d.port,
        "DBSubnetGroupName": names.db_subnet_group,
        "Tags": tag_list(names.tags("data")),
    }
    if d.performance_insights:
        params["PerformanceInsightsKMSKeyId"] = kms_key_arn
    return params


# -- primary ---------------------------------------------------------------------------------
def ensure_postgres(
    cfg: Config, kms_key_arn: str, data_sg: str, *, dry_run: bool = False
) -> StepResult:
    """The body of ``ensure primary database`` for RDS PostgreSQL: a Multi-AZ instance."""
    names = names_for(cfg, "primary")
    region = names.region
    rds = rds_client(cfg, "primary")
    ident = names.db_instance
    desired = instance_settings(cfg, data_sg)
    db = describe_instance(rds, ident)
    if db is None:
        d = cfg.database
        change = created(
            "rds:instance",
            ident,
            region,
            {
                "engine": f"{d.engine} {d.engine_version}",
                "class": d.instance_class,
                "multi_az": d.multi_az,
                "encrypted": True,
                "managed_secret": True,
            },
        )
        if dry_run:
            return StepResult(changes=[change], outputs=missing_info(cfg, "primary").model_dump())
        rds.create_db_instance(**create_params(cfg, kms_key_arn, data_sg))
        return StepResult(
            changes=[change], outputs=lookup_database(cfg, "primary").model_dump(), applied=True
        )
    changes = converge_instance(
        rds, names, ident, db, desired, managed_secret=True, dry_run=dry_run
    )
    return StepResult(
        changes=changes,
        outputs=info_from_instance(cfg, "primary", db).model_dump(),
        applied=not dry_run,
    )


FINAL = "-final-"  # final snapshots: <instance>-final-<UTC stamp>, so they sort by age


def final_snapshot_id(identifier: str, at: datetime | None = None) -> str:
    return f"{identifier}{FINAL}{(at or datetime.now(UTC)).strftime('%Y%m%d-%H%M%S')}"


def _delete_instance(rds: Any, db: dict[str, Any], final_snapshot: str | None) -> None:
    params: dict[str, Any] = {"DBInstanceIdentifier": db["DBInstanceIdentifier"]}
    if final_snapshot:
        params["FinalDBSnapshotIdentifier"] = final_snapshot
    else:
        params["SkipFinalSnapshot"] = True
    try:
        rds.delete_db_instance(**params, DeleteAutomatedBackups=True)
    except Exception as exc:  # a retried delete whose first attempt went through
        if not is_code(exc, *INSTANCE_NOT_FOUND):
            raise


def delete_postgres(
    cfg: Config, role: Role, skip_final_snapshot: bool = False, *, dry_run: bool = False
) -> StepResult:
    """The body of ``delete {role} databases`` for RDS PostgreSQL: replicas first (each would
    otherwise be promoted to a standalone database when its source goes), then the primary's
    writer with a final snapshot unless told to skip it."""
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
