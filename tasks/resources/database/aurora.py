"""Aurora PostgreSQL: a cluster with a writer and readers in different AZs, and for DR a global
database whose secondary cluster lives in the DR region (the path failover detaches and
promotes). Chosen with ``database.engine: aurora-postgresql``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from configs.errors import NotFound
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.changes import (
    GONE_TIMEOUT_S,
    Change,
    StepResult,
    created,
    deleted,
    diff,
    is_placeholder,
    result,
    updated,
)
from tasks.core.retry import is_code, wait_for, wait_gone
from tasks.core.tags import tag_list
from tasks.resources.database.lookup import (
    INSTANCE_NOT_FOUND,
    describe_cluster,
    describe_global_cluster,
    describe_instance,
    global_cluster_id,
    info_from_cluster,
    lookup_database,
    missing_info,
    rds_client,
)
from tasks.resources.database.postgres import final_snapshot_id, newest_final
from tasks.resources.database.replicas import reader_azs

GLOBAL_TIMEOUT_S = 1800.0


def cluster_settings(cfg: Config, data_sg: str) -> dict[str, Any]:
    """What ``ModifyDBCluster`` converges. Pure."""
    d = cfg.database
    return {
        "BackupRetentionPeriod": d.backup_retention_days,
        "DeletionProtection": d.deletion_protection,
        "EnableIAMDatabaseAuthentication": d.iam_auth,
        "VpcSecurityGroupIds": [data_sg],
        "CopyTagsToSnapshot": True,
    }


def observed_cluster(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "BackupRetentionPeriod": c.get("BackupRetentionPeriod"),
        "DeletionProtection": bool(c.get("DeletionProtection")),
        "EnableIAMDatabaseAuthentication": bool(c.get("IAMDatabaseAuthenticationEnabled")),
        "VpcSecurityGroupIds": sorted(
            g["VpcSecurityGroupId"] for g in c.get("VpcSecurityGroups", [])
        ),
        "CopyTagsToSnapshot": bool(c.get("CopyTagsToSnapshot")),
    }


def _converge_cluster(
    rds: Any, cfg: Config, role: str, c: dict[str, Any], data_sg: str, dry_run: bool
) -> list[Change]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    want = cluster_settings(cfg, data_sg)
    if role == "dr":
        want.pop("BackupRetentionPeriod")
    before, after = diff(want, observed_cluster(c))
    if not after:
        return []
    if not dry_run:
        rds.modify_db_cluster(
            DBClusterIdentifier=c["DBClusterIdentifier"], ApplyImmediately=True, **after
        )
    return [updated("rds:cluster", c["DBClusterIdentifier"], names.region, before, after)]


def instance_settings(cfg: Config) -> dict[str, Any]:
    """What ``ModifyDBInstance`` converges on a cluster's instance. Pure."""
    return {
        "DBInstanceClass": cfg.database.instance_class,
        "EnablePerformanceInsights": cfg.database.performance_insights,
        "PubliclyAccessible": False,
    }


def observed_instance(i: dict[str, Any]) -> dict[str, Any]:
    return {
        "DBInstanceClass": i.get("DBInstanceClass"),
        "EnablePerformanceInsights": bool(i.get("PerformanceInsightsEnabled")),
        "PubliclyAccessible": bool(i.get("PubliclyAccessible")),
    }


def _ensure_instance(
    rds: Any, cfg: Config, role: str, cluster_id: str, ident: str, az: str, dry_run: bool
) -> list[Change]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    found = describe_instance(rds, ident)
    if found is not None:
        before, after = diff(instance_settings(cfg), observed_instance(found))
        if not after:
            return []
        if not dry_run:
            rds.modify_db_instance(DBInstanceIdentifier=ident, ApplyImmediately=True, **after)
        return [updated("rds:cluster-instance", ident, names.region, before, after)]
    if not dry_run:
        rds.create_db_instance(
            DBInstanceIdentifier=ident,
            DBClusterIdentifier=cluster_id,
            Engine="aurora-postgresql",
            AvailabilityZone=az,
            Tags=tag_list(names.tags("data")),
            **instance_settings(cfg),
        )
    return [created("rds:cluster-instance", ident, names.region, {"az": az})]


def ensure_aurora_cluster(
    cfg: Config, kms_key_arn: str, data_sg: str, *, dry_run: bool = False
) -> StepResult:
    names = names_for(cfg, "primary")
    rds = rds_client(cfg, "primary")
    d = cfg.database
    ident = names.db_cluster
    cluster = describe_cluster(rds, ident)
    changes: list[Change] = []
    if cluster is None:
        changes.append(
            created(
                "rds:cluster",
                ident,
                names.region,
                {"engine": f"aurora-postgresql {d.engine_version}"},
            )
        )
        if not dry_run:
            rds.create_db_cluster(
                DBClusterIdentifier=ident,
                Engine="aurora-postgresql",
                EngineVersion=d.engine_version,
                MasterUsername=d.master_username,
                ManageMasterUserPassword=True,
                MasterUserSecretKmsKeyId=kms_key_arn,
                DatabaseName=d.db_name,
                Port=d.port,
                StorageEncrypted=True,
                KmsKeyId=kms_key_arn,
                DBSubnetGroupName=names.db_subnet_group,
                Tags=tag_list(names.tags("data")),
                **cluster_settings(cfg, data_sg),
            )
    else:
        changes += _converge_cluster(rds, cfg, "primary", cluster, data_sg, dry_run)
    changes += _ensure_instance(
        rds, cfg, "primary", ident, f"{ident}-1", cfg.network.primary.azs[0], dry_run
    )
    return StepResult(
        changes=changes, outputs=lookup_database(cfg, "primary").model_dump(), applied=not dry_run
    )


def ensure_aurora_readers(cfg: Config, data_sg: str, *, dry_run: bool = False) -> StepResult:
    """Readers round-robin over the AZs other than the first (instance 1, the writer as
    created, is there; an in-region failover swaps roles, not AZs)."""
    names = names_for(cfg, "primary")
    rds = rds_client(cfg, "primary")
    count = max(1 if d_multi(cfg) else 0, cfg.database.read_replicas)
    azs = reader_azs(cfg.network.primary.azs, cfg.network.primary.azs[0], count)
    changes: list[Change] = []
    for i, az in enumerate(azs):
        changes += _ensure_instance(
            rds, cfg, "primary", names.db_cluster, f"{names.db_cluster}-{i + 2}", az, dry_run
        )
    return StepResult(changes=changes, applied=not dry_run)


def d_multi(cfg: Config) -> bool:
    """Multi-AZ for Aurora means at least one reader in another AZ to fail over to."""
    return cfg.database.multi_az


def ensure_aurora_secondary(
    cfg: Config, source_arn: str, kms_key_arn: str, data_sg: str, *, dry_run: bool = False
) -> StepResult:
    """A global database around the primary cluster, and its secondary cluster in DR."""
    names = names_for(cfg, "dr")
    changes: list[Change] = []
    gid = global_cluster_id(cfg)
    prds = rds_client(cfg, "primary")
    if describe_global_cluster(prds, gid) is None:
        changes.append(created("rds:global-cluster", gid, "global", {"source": source_arn}))
        if not dry_run:
            if is_placeholder(source_arn):
                raise NotFound(f"primary cluster of {cfg.stack} does not exist")
            prds.create_global_cluster(
                GlobalClusterIdentifier=gid, SourceDBClusterIdentifier=source_arn
            )
            # A secondary can only join a global cluster that is available.
            wait_for(
                lambda: describe_global_cluster(prds, gid),
                until=lambda g: bool(g) and g.get("Status") == "available",  # type: ignore[union-attr]
                what=f"global cluster {gid} available",
                timeout_s=GLOBAL_TIMEOUT_S,
                describe=lambda g: (g or {}).get("Status", "missing"),
            )
    rds = rds_client(cfg, "dr")
    ident = names.db_cluster
    cluster = describe_cluster(rds, ident)
    if cluster is None:
        changes.append(created("rds:cluster", ident, names.region, {"global": gid}))
        if not dry_run:
            rds.create_db_cluster(
                DBClusterIdentifier=ident,
                GlobalClusterIdentifier=gid,
                Engine="aurora-postgresql",
                EngineVersion=cfg.database.engine_version,
                StorageEncrypted=True,
                KmsKeyId=kms_key_arn,
                DBSubnetGroupName=names.db_subnet_group,
                Tags=tag_list(names.tags("data")),
                **{
                    k: v
                    for k, v in cluster_settings(cfg, data_sg).items()
                    if k != "BackupRetentionPeriod"
                },
            )
    else:
        changes += _converge_cluster(rds, cfg, "dr", cluster, data_sg, dry_run)
    changes += _ensure_instance(rds, cfg, "dr", ident, f"{ident}-1", cfg.network.dr.azs[0], dry_run)
    found = describe_cluster(rds, ident)
    info = info_from_cluster(cfg, "dr", found) if found else missing_info(cfg, "dr")
    return StepResult(changes=changes, outputs=info.model_dump(), applied=not dry_run)


def cluster_protected(cfg: Config, role: Role) -> dict[str, Any] | None:
    """The stack's cluster in ``role`` when deletion protection is on."""
    found = describe_cluster(rds_client(cfg, role), names_for(cfg, role).db_cluster)
    return found if found and found.get("DeletionProtection") else None


def _delete_instances(
    rds: Any, cluster: dict[str, Any], region: str, dry_run: bool
) -> list[Change]:
    """Readers before the writer (a writer going first fails over to a reader)."""
    members = sorted(cluster.get("DBClusterMembers", []), key=lambda m: m["IsClusterWriter"])
    changes: list[Change] = []
    for m in members:
        ident = m["DBInstanceIdentifier"]
        db = describe_instance(rds, ident)
        if db is None:
            continue
        if db.get("DBInstanceStatus") != "deleting":
            changes.append(deleted("rds:cluster-instance", ident, region))
            if not dry_run:
                try:
                    rds.delete_db_instance(DBInstanceIdentifier=ident)
                except Exception as exc:  # a retried delete whose first attempt went through
                    if not is_code(exc, *INSTANCE_NOT_FOUND):
                        raise
        if not dry_run:
            wait_gone(partial(describe_instance, rds, ident), f"instance {ident} deleted")
    return changes


def _leave_global(cfg: Config, role: Role, cluster: dict[str, Any], dry_run: bool) -> list[Change]:
    """Detach ``cluster`` from the stack's global database (DR goes first: the primary can only
    leave once no secondary is left); the primary's turn deletes the global cluster too."""
    prds, gid = rds_client(cfg, "primary"), global_cluster_id(cfg)
    found = describe_global_cluster(prds, gid)
    if found is None:
        return []
    changes: list[Change] = []
    arn, ident = cluster["DBClusterArn"], cluster["DBClusterIdentifier"]
    members = [m["DBClusterArn"] for m in found.get("GlobalClusterMembers", [])]
    if arn in members:
        changes.append(deleted("rds:global-cluster-member", ident, names_for(cfg, role).region))
        if not dry_run:
            prds.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=arn)
            wait_for(
                lambda: describe_global_cluster(prds, gid),
                until=lambda g: (
                    arn
                    not in [m["DBClusterArn"] for m in (g or {}).get("GlobalClusterMembers", [])]
                ),
                what=f"{ident} out of {gid}",
                timeout_s=GONE_TIMEOUT_S,
                describe=lambda g: str((g or {}).get("GlobalClusterMembers")),
            )
    leaving = {arn}
    if dry_run and role == "primary":  # the plan: the DR half, planned first, will have left
        leaving.add((_dr_cluster(cfg) or {}).get("DBClusterArn", ""))
    if role == "primary" and not [m for m in members if m not in leaving]:
        changes.append(deleted("rds:global-cluster", gid, "global"))
        if not dry_run:
            prds.delete_global_cluster(GlobalClusterIdentifier=gid)
    return changes


def _dr_cluster(cfg: Config) -> dict[str, Any] | None:
    return describe_cluster(rds_client(cfg, "dr"), names_for(cfg, "dr").db_cluster)


def delete_aurora(
    cfg: Config, role: Role, skip_final_snapshot: bool, *, dry_run: bool = False
) -> StepResult:
    """The body of ``delete {role} databases`` for an Aurora stack."""
    names = names_for(cfg, role)
    rds, region, ident = rds_client(cfg, role), names.region, names.db_cluster
    cluster = describe_cluster(rds, ident)
    snapshot = None
    take = role == "primary" and not skip_final_snapshot
    if cluster is None:
        return result([], dry_run, final_snapshot=_earlier(rds, ident) if take else None)
    changes = _delete_instances(rds, cluster, region, dry_run)
    changes += _leave_global(cfg, role, cluster, dry_run)
    if cluster.get("Status") != "deleting":
        snapshot = final_snapshot_id(ident) if take else None
        detail = f"final snapshot {snapshot}" if snapshot else "no final snapshot"
        changes.append(deleted("rds:cluster", ident, region, detail))
        if not dry_run:
            params: dict[str, Any] = {"DBClusterIdentifier": ident}
            if snapshot:
                params["FinalDBSnapshotIdentifier"] = snapshot
            else:
                params["SkipFinalSnapshot"] = True
            rds.delete_db_cluster(**params, DeleteAutomatedBackups=True)
    if not dry_run:
        wait_gone(partial(describe_cluster, rds, ident), f"cluster {ident} deleted")
        if snapshot:
            wait_for(
                lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)[
                    "DBClusterSnapshots"
                ][0]["Status"],
                until=lambda s: s == "available",
                what=f"final snapshot {snapshot} available",
                timeout_s=GONE_TIMEOUT_S,
            )
    return result(changes, dry_run, final_snapshot=snapshot)


def _earlier(rds: Any, ident: str) -> str | None:
    """The newest final snapshot of the cluster: a run that stopped after deleting it."""
    snaps = rds.describe_db_cluster_snapshots(DBClusterIdentifier=ident, SnapshotType="manual")
    return newest_final(
        ident, [s["DBClusterSnapshotIdentifier"] for s in snaps["DBClusterSnapshots"]]
    )
