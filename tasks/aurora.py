"""Aurora PostgreSQL: a cluster with a writer and readers in different AZs, and for DR a global
database whose secondary cluster lives in the DR region (the path failover detaches and
promotes). Chosen with ``database.engine: aurora-postgresql``.
"""

from __future__ import annotations

from typing import Any

from configs.errors import AwsError, NotFound
from configs.models import Config
from configs.names import names_for
from tasks import converge
from tasks.changes import Change, StepResult, diff
from tasks.database import (
    describe_cluster,
    describe_instance,
    info_from_cluster,
    lookup_database,
    missing_info,
    rds_client,
)
from tasks.retry import is_code, wait_for

GLOBAL_TIMEOUT_S = 1800.0


def global_cluster_id(cfg: Config) -> str:
    return f"{cfg.stack}-global"


def describe_global_cluster(rds: Any, gid: str) -> dict[str, Any] | None:
    """The global cluster named ``gid``, or None. Only an entry with that name counts: a list
    that ignores the filter is not taken for it."""
    try:
        found = rds.describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"]
    except AwsError as exc:
        if is_code(exc, "GlobalClusterNotFoundFault"):
            return None
        raise
    return next((g for g in found if g.get("GlobalClusterIdentifier") == gid), None)


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
    return [converge.update("rds:cluster", c["DBClusterIdentifier"], names.region, before, after)]


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
        return [converge.update("rds:cluster-instance", ident, names.region, before, after)]
    if not dry_run:
        rds.create_db_instance(
            DBInstanceIdentifier=ident,
            DBClusterIdentifier=cluster_id,
            Engine="aurora-postgresql",
            AvailabilityZone=az,
            Tags=converge.tag_list(names.tags("data")),
            **instance_settings(cfg),
        )
    return [converge.create("rds:cluster-instance", ident, names.region, {"az": az})]


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
            converge.create(
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
                Tags=converge.tag_list(names.tags("data")),
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
    from tasks.replicas import reader_azs

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
        changes.append(converge.create("rds:global-cluster", gid, "global", {"source": source_arn}))
        if not dry_run:
            if converge.is_placeholder(source_arn):
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
        changes.append(converge.create("rds:cluster", ident, names.region, {"global": gid}))
        if not dry_run:
            rds.create_db_cluster(
                DBClusterIdentifier=ident,
                GlobalClusterIdentifier=gid,
                Engine="aurora-postgresql",
                EngineVersion=cfg.database.engine_version,
                StorageEncrypted=True,
                KmsKeyId=kms_key_arn,
                DBSubnetGroupName=names.db_subnet_group,
                Tags=converge.tag_list(names.tags("data")),
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
