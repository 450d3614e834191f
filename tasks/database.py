"""Data layer: the PostgreSQL database of each region, found and converged.

Primary: an RDS PostgreSQL instance (Multi-AZ) or an Aurora PostgreSQL cluster with a writer
and readers spread over the AZs. Encrypted with the stack's KMS key, the master password
managed by RDS in Secrets Manager (never seen by tierbook), backups for PITR, deletion
protection, Performance Insights, IAM authentication. DR: a cross-region read replica (Aurora:
a secondary cluster of a global database), the path the failover runbook promotes.

:func:`find_database` is what the app layer reads to point task definitions at the database.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from configs.errors import AwsError
from configs.models import Config
from configs.names import Role, names_for
from tasks import converge
from tasks.aws import connect
from tasks.changes import Action, Change, StepResult, diff
from tasks.retry import is_code
from tasks.steps import step

AVAILABLE = "available"


class DatabaseInfo(BaseModel):
    """One region's database endpoint as the app needs it (pure data)."""

    role: str
    region: str
    identifier: str
    kind: str  # "instance" | "cluster"
    exists: bool
    endpoint: str
    port: int
    arn: str
    secret_arn: str | None
    status: str
    reader_endpoint: str | None = None
    replica_of: str | None = None


def rds_client(cfg: Config, role: Role) -> Any:
    return connect(cfg).client("rds", names_for(cfg, role).region)


def is_aurora(cfg: Config) -> bool:
    return cfg.database.engine == "aurora-postgresql"


def describe_instance(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]  # type: ignore[no-any-return]
    except AwsError as exc:
        if is_code(exc, "DBInstanceNotFound", "DBInstanceNotFoundFault"):
            return None
        raise


def describe_cluster(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]  # type: ignore[no-any-return]
    except AwsError as exc:
        if is_code(exc, "DBClusterNotFoundFault", "DBClusterNotFound"):
            return None
        raise


def in_region(arn: str, region: str) -> str:
    """The same ARN in another region (a replicated secret keeps its name and suffix)."""
    parts = arn.split(":")
    parts[3] = region
    return ":".join(parts)


def secret_of(resource: dict[str, Any]) -> str | None:
    return (resource.get("MasterUserSecret") or {}).get("SecretArn")


def primary_secret_arn(cfg: Config) -> str | None:
    """The RDS-managed master secret of the primary database, if it exists."""
    names = names_for(cfg, "primary")
    rds = rds_client(cfg, "primary")
    found = (
        describe_cluster(rds, names.db_cluster)
        if is_aurora(cfg)
        else describe_instance(rds, names.db_instance)
    )
    return secret_of(found) if found else None


def info_from_instance(cfg: Config, role: Role, db: dict[str, Any]) -> DatabaseInfo:
    names = names_for(cfg, role)
    endpoint = db.get("Endpoint") or {}
    return DatabaseInfo(
        role=role,
        region=names.region,
        identifier=db["DBInstanceIdentifier"],
        kind="instance",
        exists=True,
        endpoint=endpoint.get("Address", ""),
        port=int(endpoint.get("Port") or cfg.database.port),
        arn=db["DBInstanceArn"],
        secret_arn=secret_of(db),
        status=db.get("DBInstanceStatus", ""),
        replica_of=db.get("ReadReplicaSourceDBInstanceIdentifier"),
    )


def info_from_cluster(cfg: Config, role: Role, db: dict[str, Any]) -> DatabaseInfo:
    names = names_for(cfg, role)
    return DatabaseInfo(
        role=role,
        region=names.region,
        identifier=db["DBClusterIdentifier"],
        kind="cluster",
        exists=True,
        endpoint=db.get("Endpoint", ""),
        reader_endpoint=db.get("ReaderEndpoint"),
        port=int(db.get("Port") or cfg.database.port),
        arn=db["DBClusterArn"],
        secret_arn=secret_of(db),
        status=db.get("Status", ""),
        replica_of=db.get("ReplicationSourceIdentifier") or db.get("GlobalClusterIdentifier"),
    )


def missing_info(cfg: Config, role: Role) -> DatabaseInfo:
    names = names_for(cfg, role)
    ident = names.db_cluster if is_aurora(cfg) else names.db_instance
    kind = "cluster" if is_aurora(cfg) else "instance"
    ph = converge.placeholder(f"rds:{kind}", ident)
    return DatabaseInfo(
        role=role,
        region=names.region,
        identifier=ident,
        kind=kind,
        exists=False,
        endpoint=ph,
        port=cfg.database.port,
        arn=ph,
        secret_arn=converge.placeholder("secretsmanager:secret", f"rds!{ident}"),
        status="missing",
    )


def lookup_database(cfg: Config, role: Role) -> DatabaseInfo:
    """:func:`find_database` without the timeline entry (for steps that need it inline)."""
    names = names_for(cfg, role)
    rds = rds_client(cfg, role)
    if is_aurora(cfg):
        cluster = describe_cluster(rds, names.db_cluster)
        info = info_from_cluster(cfg, role, cluster) if cluster else None
    else:
        instance = describe_instance(rds, names.db_instance)
        info = info_from_instance(cfg, role, instance) if instance else None
    if info is None:
        info = missing_info(cfg, role)
    if role == "dr" and info.exists:
        # A replica has no master secret of its own: the app in DR reads the primary's secret
        # through its replica in the DR region (tasks.secrets).
        primary = info.secret_arn or primary_secret_arn(cfg)
        info.secret_arn = in_region(primary, names.region) if primary else None
    return info


@step("find {role} database")
def find_database(cfg: Config, role: Role) -> DatabaseInfo:
    """Read-only: endpoint, port, ARN, master secret ARN and status of ``role``'s database.

    On an account without it, every id is a placeholder and ``exists`` is False.
    """
    return lookup_database(cfg, role)


# -- subnet group ----------------------------------------------------------------------------
@step("ensure {role} DB subnet group")
def ensure_db_subnet_group(
    cfg: Config, role: Role, data_subnets: list[str], *, dry_run: bool = False
) -> StepResult:
    """The data subnets of every AZ, so Multi-AZ standby and readers can land anywhere."""
    names = names_for(cfg, role)
    region = names.region
    rds = rds_client(cfg, role)
    name = names.db_subnet_group
    try:
        group = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0]
    except AwsError as exc:
        if not is_code(exc, "DBSubnetGroupNotFoundFault"):
            raise
        group = None
    if group is None:
        change = converge.create("rds:subnet-group", name, region, {"subnets": len(data_subnets)})
        if not dry_run:
            rds.create_db_subnet_group(
                DBSubnetGroupName=name,
                DBSubnetGroupDescription=f"{names.stem} data tier",
                SubnetIds=data_subnets,
                Tags=converge.tag_list(names.tags("data")),
            )
        return StepResult(changes=[change], outputs={"name": name}, applied=not dry_run)
    have = sorted(s["SubnetIdentifier"] for s in group.get("Subnets", []))
    if have == sorted(data_subnets):
        return StepResult(outputs={"name": name})
    change = converge.update(
        "rds:subnet-group", name, region, {"subnets": have}, {"subnets": sorted(data_subnets)}
    )
    if not dry_run:
        rds.modify_db_subnet_group(DBSubnetGroupName=name, SubnetIds=data_subnets)
    return StepResult(changes=[change], outputs={"name": name}, applied=not dry_run)


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
    return converge.tag_dict(db.get("TagList"))


def _converge_instance(
    rds: Any,
    names: Any,
    ident: str,
    db: dict[str, Any],
    desired: dict[str, Any],
    *,
    managed_secret: bool,
    dry_run: bool,
) -> list[Change]:
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
        changes.append(converge.update("rds:instance", ident, region, before, after))
        if not dry_run:
            rds.modify_db_instance(DBInstanceIdentifier=ident, ApplyImmediately=True, **after)
    tags = names.tags("data")
    if tag := converge.tag_change("rds:instance", ident, region, tags, _tags_of(db)):
        changes.append(tag)
        if not dry_run:
            todo = converge.missing_tags(tags, _tags_of(db))
            rds.add_tags_to_resource(ResourceName=db["DBInstanceArn"], Tags=converge.tag_list(todo))
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
        "Tags": converge.tag_list(names.tags("data")),
    }
    if d.performance_insights:
        params["PerformanceInsightsKMSKeyId"] = kms_key_arn
    return params


# -- primary ---------------------------------------------------------------------------------
@step("ensure primary database")
def ensure_database(
    cfg: Config, kms_key_arn: str, data_sg: str, *, dry_run: bool = False
) -> StepResult:
    """The writer: RDS PostgreSQL (Multi-AZ) or, for Aurora, the cluster and its instances."""
    if is_aurora(cfg):
        from tasks.aurora import ensure_aurora_cluster

        return ensure_aurora_cluster(cfg, kms_key_arn, data_sg, dry_run=dry_run)
    names = names_for(cfg, "primary")
    region = names.region
    rds = rds_client(cfg, "primary")
    ident = names.db_instance
    desired = instance_settings(cfg, data_sg)
    db = describe_instance(rds, ident)
    if db is None:
        d = cfg.database
        change = converge.create(
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
    changes = _converge_instance(
        rds, names, ident, db, desired, managed_secret=True, dry_run=dry_run
    )
    return StepResult(
        changes=changes,
        outputs=info_from_instance(cfg, "primary", db).model_dump(),
        applied=not dry_run,
    )
