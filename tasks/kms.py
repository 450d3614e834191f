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
from tasks import converge
from tasks.aws import connect
from tasks.changes import Change, StepResult
from tasks.retry import is_code
from tasks.steps import step


def _describe(kms: Any, alias: str) -> dict[str, Any] | None:
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]  # type: ignore[no-any-return]
    except Exception as exc:
        if is_code(exc, "NotFoundException"):
            return None
        raise


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
        changes.append(converge.create("kms:key", alias, region, {"rotation": True}))
        if dry_run:
            return StepResult(
                changes=changes, outputs={"key_arn": converge.placeholder("kms:key", alias)}
            )
        key = kms.create_key(
            Description=f"{names.stem} data at rest ({region})",
            Tags=converge.tag_list(tags, "TagKey", "TagValue"),
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
        kms.enable_key_rotation(KeyId=key["KeyId"])
        return StepResult(changes=changes, outputs={"key_arn": key["Arn"]}, applied=True)
    if key.get("KeyState") not in ("Enabled", None):
        raise StepFailed(f"KMS key {alias} in {region} is {key['KeyState']}; fix it by hand")
    have = converge.tag_dict(
        kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags"), "TagKey", "TagValue"
    )
    if change := converge.tag_change("kms:key", alias, region, tags, have):
        changes.append(change)
        if not dry_run:
            todo = converge.missing_tags(tags, have)
            kms.tag_resource(KeyId=key["KeyId"], Tags=converge.tag_list(todo, "TagKey", "TagValue"))
    if not kms.get_key_rotation_status(KeyId=key["KeyId"]).get("KeyRotationEnabled"):
        changes.append(
            converge.update("kms:key", alias, region, {"rotation": False}, {"rotation": True})
        )
        if not dry_run:
            kms.enable_key_rotation(KeyId=key["KeyId"])
    return StepResult(changes=changes, outputs={"key_arn": key["Arn"]}, applied=not dry_run)
