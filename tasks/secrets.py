"""The database master secret, replicated to the DR region.

RDS keeps the master password in Secrets Manager (``ManageMasterUserPassword``); the DR app
stack reads it in its own region, so the secret is replicated there with the DR region's key
and stays readable if the primary region is gone.
"""

from __future__ import annotations

from configs.models import Config
from tasks import converge
from tasks.aws import connect
from tasks.changes import StepResult
from tasks.steps import step


@step("ensure database secret replicated to DR")
def ensure_secret_replica(
    cfg: Config, secret_arn: str | None, kms_key_arn: str, *, dry_run: bool = False
) -> StepResult:
    dr = cfg.regions.dr
    if not secret_arn:
        return StepResult(skipped="the database has no managed master secret")
    change = converge.create(
        "secretsmanager:replica", secret_arn.split(":")[-1], dr, {"kms": kms_key_arn}
    )
    if converge.is_placeholder(secret_arn):
        return StepResult(changes=[change])
    sm = connect(cfg).client("secretsmanager", cfg.regions.primary)
    status = sm.describe_secret(SecretId=secret_arn).get("ReplicationStatus") or []
    if any(r.get("Region") == dr for r in status):
        return StepResult(outputs={"dr_secret_arn": _in(secret_arn, dr)})
    if not dry_run:
        sm.replicate_secret_to_regions(
            SecretId=secret_arn, AddReplicaRegions=[{"Region": dr, "KmsKeyId": kms_key_arn}]
        )
    return StepResult(
        changes=[change], outputs={"dr_secret_arn": _in(secret_arn, dr)}, applied=not dry_run
    )


def _in(arn: str, region: str) -> str:
    from tasks.database import in_region

    return in_region(arn, region)
