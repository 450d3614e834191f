"""The database steps runbooks call: the one place that picks RDS PostgreSQL or Aurora.

``database.engine`` in the config decides once, here; :mod:`.postgres` and :mod:`.replicas`
hold the instance path, :mod:`.aurora` the cluster path, and neither knows of the other's
steps. Flows and runbook steps call these, never a backend's body.
"""

from __future__ import annotations

from typing import Any

from configs.models import Config
from configs.names import Role
from tasks.core.changes import StepResult
from tasks.core.steps import step
from tasks.resources.database.aurora import (
    cluster_protected,
    delete_aurora,
    ensure_aurora_cluster,
    ensure_aurora_readers,
    ensure_aurora_secondary,
)
from tasks.resources.database.lookup import is_aurora
from tasks.resources.database.postgres import delete_postgres, ensure_postgres
from tasks.resources.database.replicas import ensure_postgres_dr_replica, ensure_postgres_readers

__all__ = [
    "ensure_database",
    "ensure_databases_deleted",
    "ensure_dr_replica",
    "ensure_read_replicas",
    "protected_cluster",
]


@step("ensure primary database")
def ensure_database(
    cfg: Config, kms_key_arn: str, data_sg: str, *, dry_run: bool = False
) -> StepResult:
    """The writer: RDS PostgreSQL (Multi-AZ) or, for Aurora, the cluster and its instances."""
    if is_aurora(cfg):
        return ensure_aurora_cluster(cfg, kms_key_arn, data_sg, dry_run=dry_run)
    return ensure_postgres(cfg, kms_key_arn, data_sg, dry_run=dry_run)


@step("ensure primary read replicas")
def ensure_read_replicas(
    cfg: Config, kms_key_arn: str, data_sg: str, *, dry_run: bool = False
) -> StepResult:
    if is_aurora(cfg):
        return ensure_aurora_readers(cfg, data_sg, dry_run=dry_run)
    return ensure_postgres_readers(cfg, data_sg, dry_run=dry_run)


@step("ensure DR database replica")
def ensure_dr_replica(
    cfg: Config,
    source_arn: str,
    kms_key_arn: str,
    data_sg: str,
    *,
    dry_run: bool = False,
) -> StepResult:
    """The cross-region copy the DR region's app reads from and the failover promotes: a read
    replica, or for Aurora the secondary cluster of a global database."""
    if not cfg.database.dr_replica:
        return StepResult(skipped="database.dr_replica is off")
    if is_aurora(cfg):
        return ensure_aurora_secondary(cfg, source_arn, kms_key_arn, data_sg, dry_run=dry_run)
    return ensure_postgres_dr_replica(cfg, source_arn, kms_key_arn, data_sg, dry_run=dry_run)


@step("delete {role} databases")
def ensure_databases_deleted(
    cfg: Config, role: Role, skip_final_snapshot: bool = False, *, dry_run: bool = False
) -> StepResult:
    """Replicas (or readers) first, then the writer with a final snapshot unless told to skip
    it; for Aurora the cluster also leaves its global database."""
    if is_aurora(cfg):
        return delete_aurora(cfg, role, skip_final_snapshot, dry_run=dry_run)
    return delete_postgres(cfg, role, skip_final_snapshot, dry_run=dry_run)


def protected_cluster(cfg: Config, role: Role) -> dict[str, Any] | None:
    """The stack's Aurora cluster in ``role`` when deletion protection is on; None for an RDS
    PostgreSQL stack (its instances carry their own flag)."""
    return cluster_protected(cfg, role) if is_aurora(cfg) else None
