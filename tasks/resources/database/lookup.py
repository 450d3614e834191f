"""Lookup: from aurora, database, readiness, teardown."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import placeholder
from tasks.core.errors import AwsError
from tasks.core.retry import absent, is_code
from tasks.core.steps import step


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


# RDS names its not-found answers both ways (the API reference's and the SDK's fault names).
INSTANCE_NOT_FOUND = ("DBInstanceNotFound", "DBInstanceNotFoundFault")
CLUSTER_NOT_FOUND = ("DBClusterNotFoundFault", "DBClusterNotFound")
SNAPSHOT_NOT_FOUND = ("DBSnapshotNotFound", "DBSnapshotNotFoundFault")


def describe_instance(rds: Any, identifier: str) -> dict[str, Any] | None:
    found = absent(
        lambda: rds.describe_db_instances(DBInstanceIdentifier=identifier), *INSTANCE_NOT_FOUND
    )
    return found["DBInstances"][0] if found else None


def describe_cluster(rds: Any, identifier: str) -> dict[str, Any] | None:
    found = absent(
        lambda: rds.describe_db_clusters(DBClusterIdentifier=identifier), *CLUSTER_NOT_FOUND
    )
    return found["DBClusters"][0] if found else None


def describe_snapshot(rds: Any, identifier: str) -> dict[str, Any] | None:
    found = absent(
        lambda: rds.describe_db_snapshots(DBSnapshotIdentifier=identifier), *SNAPSHOT_NOT_FOUND
    )
    return found["DBSnapshots"][0] if found else None


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
    ph = placeholder(f"rds:{kind}", ident)
    return DatabaseInfo(
        role=role,
        region=names.region,
        identifier=ident,
        kind=kind,
        exists=False,
        endpoint=ph,
        port=cfg.database.port,
        arn=ph,
        secret_arn=placeholder("secretsmanager:secret", f"rds!{ident}"),
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


# -- the database ----------------------------------------------------------------------------
def dr_database(cfg: Config) -> dict[str, Any] | None:
    names = names_for(cfg, "dr")
    rds = connect(cfg).client("rds", names.region)
    if is_aurora(cfg):
        return describe_cluster(rds, names.db_cluster)
    return describe_instance(rds, names.db_instance)


def dr_writes(cfg: Config) -> bool:
    """Whether the DR database is the writer since a failover."""
    db = dr_database(cfg)
    return db is not None and writes(cfg, db)


def writes(cfg: Config, db: dict[str, Any]) -> bool:
    """Whether DR's database ``db`` writes: a standalone instance, or an Aurora cluster that
    writes for its global database or has left it (a global secondary names no source)."""
    if is_replica(db):
        return False
    if not is_aurora(cfg):
        return True
    rds = connect(cfg).client("rds", cfg.regions.dr)
    glob = describe_global_cluster(rds, global_cluster_id(cfg)) or {}
    me = [
        m for m in glob.get("GlobalClusterMembers", []) if m["DBClusterArn"] == db["DBClusterArn"]
    ]
    return not me or bool(me[0].get("IsWriter"))


def is_replica(db: dict[str, Any]) -> bool:
    return bool(
        db.get("ReadReplicaSourceDBInstanceIdentifier") or db.get("ReplicationSourceIdentifier")
    )


# -- deletion protection ---------------------------------------------------------------------
def database_identifiers(cfg: Config, role: Role, primary: dict[str, Any] | None) -> list[str]:
    """This stack's database instances in ``role``: the primary's read replicas (derived
    ``-roN`` names, plus any same-region replica of the primary carrying that prefix) and the
    writer in primary; the cross-region replica in DR."""
    names = names_for(cfg, role)
    if role == "dr":
        return [names.db_instance]
    prefix = f"{names.db_instance}-ro"
    derived = [names.db_read_replica(i) for i in range(cfg.database.read_replicas)]
    listed = [
        r
        for r in (primary or {}).get("ReadReplicaDBInstanceIdentifiers", [])
        if r.startswith(prefix)
    ]
    return [*sorted(set(derived) | set(listed)), names.db_instance]
