"""The database master secret, replicated to the DR region.

RDS keeps the master password in Secrets Manager (``ManageMasterUserPassword``); the DR app
stack reads it in its own region, so the secret is replicated there with the DR region's key
and stays readable if the primary region is gone.
"""

from __future__ import annotations

from configs.models import Config
from tasks.core.aws import connect
from tasks.core.changes import StepResult, created, deleted, is_placeholder, result
from tasks.core.retry import absent
from tasks.core.steps import step
from tasks.resources.database.lookup import in_region, primary_secret_arn


@step("ensure database secret replicated to DR")
def ensure_secret_replica(
    cfg: Config, secret_arn: str | None, kms_key_arn: str, *, dry_run: bool = False
) -> StepResult:
    dr = cfg.regions.dr
    if not secret_arn:
        return StepResult(skipped="the database has no managed master secret")
    change = created("secretsmanager:replica", secret_arn.split(":")[-1], dr, {"kms": kms_key_arn})
    if is_placeholder(secret_arn):
        return StepResult(changes=[change])
    sm = connect(cfg).client("secretsmanager", cfg.regions.primary)
    status = sm.describe_secret(SecretId=secret_arn).get("ReplicationStatus") or []
    if any(r.get("Region") == dr for r in status):
        return StepResult(outputs={"dr_secret_arn": in_region(secret_arn, dr)})
    if not dry_run:
        sm.replicate_secret_to_regions(
            SecretId=secret_arn, AddReplicaRegions=[{"Region": dr, "KmsKeyId": kms_key_arn}]
        )
    return StepResult(
        changes=[change], outputs={"dr_secret_arn": in_region(secret_arn, dr)}, applied=not dry_run
    )


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
