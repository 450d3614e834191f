"""Data layer: the customer-managed KMS key of each region's data stores.

One key per region (an encrypted cross-region replica must use a key of its own region), found
by alias, rotated yearly. A key that is disabled or pending deletion is not quietly replaced:
every snapshot and replica encrypted with it depends on it, so that is a failure to look at.
"""

from __future__ import annotations

from typing import Any

from configs.errors import StepFailed
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import (
    Change,
    StepResult,
    created,
    deleted,
    placeholder,
    result,
    tag_change,
    updated,
)
from tasks.core.retry import absent
from tasks.core.steps import step
from tasks.core.tags import missing_tags, tag_dict, tag_list


def _describe(kms: Any, alias: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = absent(
        lambda: kms.describe_key(KeyId=alias)["KeyMetadata"], "NotFoundException"
    )
    return found


@step("ensure {role} KMS key")
def ensure_kms_key(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    region = names.region
    kms = connect(cfg).client("kms", region)
    alias = names.kms_alias
    tags = names.tags("data")
    key = _describe(kms, alias)
    changes: list[Change] = []
    if key is None:
        changes.append(created("kms:key", alias, region, {"rotation": True}))
        if dry_run:
            return StepResult(changes=changes, outputs={"key_arn": placeholder("kms:key", alias)})
        key = kms.create_key(
            Description=f"{names.stem} data at rest ({region})",
            Tags=tag_list(tags, "TagKey", "TagValue"),
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
        kms.enable_key_rotation(KeyId=key["KeyId"])
        return StepResult(changes=changes, outputs={"key_arn": key["Arn"]}, applied=True)
    if key.get("KeyState") not in ("Enabled", None):
        raise StepFailed(f"KMS key {alias} in {region} is {key['KeyState']}; fix it by hand")
    have = tag_dict(kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags"), "TagKey", "TagValue")
    if change := tag_change("kms:key", alias, region, tags, have):
        changes.append(change)
        if not dry_run:
            todo = missing_tags(tags, have)
            kms.tag_resource(KeyId=key["KeyId"], Tags=tag_list(todo, "TagKey", "TagValue"))
    if not kms.get_key_rotation_status(KeyId=key["KeyId"]).get("KeyRotationEnabled"):
        changes.append(updated("kms:key", alias, region, {"rotation": False}, {"rotation": True}))
        if not dry_run:
            kms.enable_key_rotation(KeyId=key["KeyId"])
    return StepResult(changes=changes, outputs={"key_arn": key["Arn"]}, applied=not dry_run)


KMS_PENDING_DAYS = 7  # the minimum AWS allows


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
