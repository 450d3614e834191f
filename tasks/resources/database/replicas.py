"""Data layer, copies of the primary database: in-region read replicas and the DR replica.

In-region readers go to AZs other than the writer's, so losing one AZ never takes every reader.
The DR replica is a cross-region read replica in the DR region's data subnets, encrypted with
the DR region's key: the database the failover runbook promotes. Aurora's counterparts (reader
instances, a global database secondary) live in :mod:`.aurora`; :mod:`.engine` picks one.
"""

from __future__ import annotations

from typing import Any

from configs.errors import NotFound
from configs.models import Config
from configs.names import names_for
from tasks.core.changes import Action, Change, StepResult, created, is_placeholder
from tasks.core.retry import absent, wait_for
from tasks.core.steps import step
from tasks.core.tags import tag_list
from tasks.resources.database.lookup import (
    INSTANCE_NOT_FOUND,
    describe_instance,
    is_aurora,
    lookup_database,
    missing_info,
    rds_client,
)
from tasks.resources.database.postgres import AVAILABLE, converge_instance, instance_settings

DB_TIMEOUT_S = 3600.0


def reader_azs(azs: list[str], writer_az: str | None, count: int) -> list[str]:
    """AZs for ``count`` readers, round-robin over the AZs that are not the writer's. Pure."""
    others = [az for az in azs if az != writer_az] or azs
    return [others[i % len(others)] for i in range(count)]


def source_name(db: dict[str, Any]) -> str:
    """The identifier a replica copies (RDS gives an ARN across regions). Pure."""
    return str(db.get("ReadReplicaSourceDBInstanceIdentifier") or "").split(":")[-1]


def replace_reader(rds: Any, ident: str, region: str, source: str) -> Change:
    """Delete a reader that copies another database than the writer (a region move set the
    old writer aside under a new name, and its readers followed it): its data is stale."""
    absent(  # gone already: a retried call after the first one went through
        lambda: rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True),
        *INSTANCE_NOT_FOUND,
    )
    wait_for(
        lambda: describe_instance(rds, ident),
        until=lambda d: d is None,
        what=f"stale reader {ident} deleted",
        timeout_s=DB_TIMEOUT_S,
        describe=lambda d: str((d or {}).get("DBInstanceStatus")),
    )
    return Change(
        resource="rds:read-replica",
        name=ident,
        action=Action.REPLACE,
        region=region,
        detail=f"replicated {source}, not the writer: replaced",
    )


def replica_params(cfg: Config, ident: str, data_sg: str) -> dict[str, Any]:
    """``CreateDBInstanceReadReplica`` settings of a replica named ``ident`` (the failover
    runbook's re-protection makes the same replica the other way round)."""
    settings = instance_settings(cfg, data_sg, replica=True)
    return {
        **settings,
        "DBInstanceIdentifier": ident,
        "Tags": tag_list(names_for(cfg, "primary").tags("data")),
    }


def ensure_postgres_readers(cfg: Config, data_sg: str, *, dry_run: bool = False) -> StepResult:
    """The body of ``ensure primary read replicas`` for RDS PostgreSQL."""
    names = names_for(cfg, "primary")
    region = names.region
    rds = rds_client(cfg, "primary")
    count = cfg.database.read_replicas
    if count == 0:
        return StepResult(skipped="no read replicas configured")
    writer = describe_instance(rds, names.db_instance)
    azs = reader_azs(cfg.network.primary.azs, (writer or {}).get("AvailabilityZone"), count)
    changes: list[Change] = []
    endpoints: list[str] = []
    for i, az in enumerate(azs):
        ident = names.db_read_replica(i)
        have = describe_instance(rds, ident)
        if have is not None and source_name(have) not in ("", names.db_instance):
            if dry_run:
                changes.append(
                    Change(
                        resource="rds:read-replica",
                        name=ident,
                        action=Action.REPLACE,
                        region=region,
                        detail=f"replicates {source_name(have)}, not the writer",
                    )
                )
                continue
            changes.append(replace_reader(rds, ident, region, source_name(have)))
            have = None
        if have is None:
            if not any(c.name == ident for c in changes):
                changes.append(created("rds:read-replica", ident, region, {"az": az}))
            if dry_run:
                continue
            params = replica_params(cfg, ident, data_sg)
            params.pop("MultiAZ")  # readers are single-AZ each, spread over the AZs
            params.pop("BackupRetentionPeriod", None)
            rds.create_db_instance_read_replica(
                SourceDBInstanceIdentifier=names.db_instance,
                AvailabilityZone=az,
                **{k: v for k, v in params.items() if k != "CopyTagsToSnapshot"},
            )
            continue
        desired = instance_settings(cfg, data_sg, replica=True)
        desired["MultiAZ"] = bool(have.get("MultiAZ"))
        changes += converge_instance(
            rds, names, ident, have, desired, managed_secret=False, dry_run=dry_run
        )
        endpoints.append((have.get("Endpoint") or {}).get("Address", ""))
    return StepResult(changes=changes, outputs={"readers": endpoints}, applied=not dry_run)


def ensure_postgres_dr_replica(
    cfg: Config, source_arn: str, kms_key_arn: str, data_sg: str, *, dry_run: bool = False
) -> StepResult:
    """The body of ``ensure DR database replica`` for RDS PostgreSQL: a cross-region read
    replica, encrypted with the DR region's key."""
    names = names_for(cfg, "dr")
    region = names.region
    rds = rds_client(cfg, "dr")
    ident = names.db_instance
    have = describe_instance(rds, ident)
    desired = instance_settings(cfg, data_sg, replica=True)
    if have is None:
        change = created(
            "rds:cross-region-replica",
            ident,
            region,
            {"source": source_arn, "encrypted": True, "multi_az": cfg.database.multi_az},
        )
        if dry_run:
            return StepResult(changes=[change], outputs=missing_info(cfg, "dr").model_dump())
        if is_placeholder(source_arn):
            raise NotFound(f"primary database of {cfg.stack} does not exist; provision it first")
        rds.create_db_instance_read_replica(
            SourceDBInstanceIdentifier=source_arn,
            SourceRegion=cfg.regions.primary,
            KmsKeyId=kms_key_arn,
            DBSubnetGroupName=names.db_subnet_group,
            **{
                k: v
                for k, v in replica_params(cfg, ident, data_sg).items()
                if k != "CopyTagsToSnapshot"
            },
        )
        return StepResult(
            changes=[change], outputs=lookup_database(cfg, "dr").model_dump(), applied=True
        )
    changes = converge_instance(
        rds, names, ident, have, desired, managed_secret=False, dry_run=dry_run
    )
    return StepResult(
        changes=changes, outputs=lookup_database(cfg, "dr").model_dump(), applied=not dry_run
    )


def lookup_name(cfg: Config, role: str) -> str:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    return names.db_cluster if is_aurora(cfg) else names.db_instance


@step("wait for {role} database available")
def wait_for_database(cfg: Config, role: str, *, timeout_s: float = DB_TIMEOUT_S) -> StepResult:
    """Replicas can only be made from an available source; the app needs an endpoint."""
    info = wait_for(
        lambda: lookup_database(cfg, role),  # type: ignore[arg-type]
        until=lambda i: i.exists and i.status == AVAILABLE,
        failed=lambda i: (
            f"status {i.status}"
            if i.status in ("failed", "incompatible-parameters", "storage-full")
            else None
        ),
        what=f"{role} database {lookup_name(cfg, role)} available",
        timeout_s=timeout_s,
        describe=lambda i: i.status,
    )
    return StepResult(
        outputs=info.model_dump(), status="passed", detail=f"{info.identifier} available"
    )
