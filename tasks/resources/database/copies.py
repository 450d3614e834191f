"""Snapshot copies in DR: the data of a backup-and-restore posture.

A copy is a fresh manual snapshot of the primary's database, copied to the DR region under the
DR region's KMS key, named ``<app>-<env>-dr-copy-<UTC stamp>`` and tagged with the time its
source was taken (``tierbook:source-created``: the moment of the data, which a failover from
it loses everything after). The source snapshot in the primary is deleted once the copy is
available; the oldest copies beyond ``dr.snapshot_copy.keep`` are deleted, never the newest.

Finding the newest copy reads the DR region only: a failover with the primary dark restores it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from configs.errors import NotFound
from configs.models import Config
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.changes import StepResult, created, deleted
from tasks.core.errors import AwsError
from tasks.core.retry import is_code, wait_for
from tasks.core.steps import step
from tasks.core.tags import tag_dict, tag_list
from tasks.resources.database.lookup import describe_instance, describe_snapshot

COPY_TIMEOUT_S = 7200.0


SOURCE_CREATED_TAG = "tierbook:source-created"


STAMP = "%Y%m%d%H%M%S"  # then milliseconds: two runs within a second make two copies


def utcnow() -> datetime:
    return datetime.now(UTC)


def copy_prefix(cfg: Config) -> str:
    return f"{cfg.stack}-dr-copy-"


def copy_id(cfg: Config, at: datetime) -> str:
    return f"{copy_prefix(cfg)}{at.strftime(STAMP)}{at.microsecond // 1000:03d}"


def wait_snapshot(rds: Any, ident: str, what: str, timeout_s: float) -> dict[str, Any]:
    """``ident`` once available; fails at once when it failed or vanished."""
    return wait_for(
        lambda: describe_snapshot(rds, ident) or {"Status": "missing"},
        until=lambda s: s.get("Status") == "available",
        failed=lambda s: (
            f"snapshot is {s['Status']}" if s.get("Status") in ("failed", "missing") else None
        ),
        what=what,
        timeout_s=timeout_s,
        describe=lambda s: str(s.get("Status")),
    )


def copy_to_dr(
    cfg: Config, source_arn: str, target: str, tags: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    """Copy a primary snapshot into DR as ``target``, re-encrypted with the DR region's key (an
    encrypted snapshot cannot use a key of another region); a copy already there is reused.
    Returns the copy once available."""
    dr = names_for(cfg, "dr")
    rds = connect(cfg).client("rds", dr.region)
    kms = connect(cfg).client("kms", dr.region)
    try:
        key_arn = kms.describe_key(KeyId=dr.kms_alias)["KeyMetadata"]["Arn"]
    except AwsError as exc:
        if is_code(exc, "NotFoundException"):
            raise NotFound(
                f"KMS key {dr.kms_alias} not found in {dr.region}: run `tierbook provision`"
            ) from exc
        raise
    if describe_snapshot(rds, target) is None:
        rds.copy_db_snapshot(
            SourceDBSnapshotIdentifier=source_arn,
            TargetDBSnapshotIdentifier=target,
            KmsKeyId=key_arn,
            SourceRegion=cfg.regions.primary,
            Tags=tag_list(tags),
        )
    return wait_snapshot(rds, target, f"copy {target} available in {dr.region}", timeout_s)


def source_created(snap: dict[str, Any]) -> datetime | None:
    """When the copied data was taken: the tag this module writes, else what RDS keeps."""
    stamp = tag_dict(snap.get("TagList")).get(SOURCE_CREATED_TAG)
    if stamp:
        return datetime.fromisoformat(stamp)
    when = snap.get("OriginalSnapshotCreateTime") or snap.get("SnapshotCreateTime")
    return when if isinstance(when, datetime) else None


def find_copies(cfg: Config) -> list[dict[str, Any]]:
    """The available copies in DR, oldest first (DR reads only)."""
    rds = connect(cfg).client("rds", cfg.regions.dr)
    pages = rds.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual")
    prefix = copy_prefix(cfg)
    found = [
        s
        for p in pages
        for s in p["DBSnapshots"]
        if s["DBSnapshotIdentifier"].startswith(prefix) and s.get("Status") == "available"
    ]
    dated = [(when, s) for s in found if (when := source_created(s)) is not None]
    return [s for _, s in sorted(dated, key=lambda p: p[0])]


def newest_copy(cfg: Config) -> dict[str, Any] | None:
    copies = find_copies(cfg)
    return copies[-1] if copies else None


def copy_age_s(snap: dict[str, Any], now: datetime | None = None) -> float:
    when = source_created(snap)
    return ((now or utcnow()) - when).total_seconds() if when else float("inf")


def copies_to_prune(copies: list[dict[str, Any]], keep: int) -> list[str]:
    """The oldest beyond ``keep`` (copies oldest first); the newest is always kept. Pure."""
    keep = max(1, keep)
    return [s["DBSnapshotIdentifier"] for s in copies[: max(0, len(copies) - keep)]]


@step("copy a primary snapshot to DR")
def ensure_snapshot_copy(
    cfg: Config, younger_than_s: float, *, dry_run: bool = False, timeout_s: float = COPY_TIMEOUT_S
) -> StepResult:
    """A copy in DR whose data is younger than ``younger_than_s`` (0: a new one always): a new
    snapshot of the primary, copied to DR, the source deleted. Each step looks before it acts:
    a run stopped half-way and started again goes on with the same copy."""
    primary, dr = names_for(cfg, "primary"), names_for(cfg, "dr")
    newest = newest_copy(cfg)
    if newest is not None and younger_than_s > 0 and copy_age_s(newest) < younger_than_s:
        return StepResult(
            outputs={"id": newest["DBSnapshotIdentifier"], "age_s": copy_age_s(newest)},
            detail=f"{newest['DBSnapshotIdentifier']} is {copy_age_s(newest):.0f}s old",
        )
    now = utcnow()
    target = copy_id(cfg, now)
    change = created("rds:snapshot-copy", target, dr.region, {"source": primary.db_instance})
    if dry_run:
        return StepResult(changes=[change])
    rds = connect(cfg).client("rds", primary.region)
    if describe_instance(rds, primary.db_instance) is None:
        raise NotFound(
            f"primary database {primary.db_instance} not found in {primary.region}: "
            "run `tierbook provision`"
        )
    tags = primary.tags("dr-copy")
    if describe_snapshot(rds, target) is None:
        rds.create_db_snapshot(
            DBInstanceIdentifier=primary.db_instance,
            DBSnapshotIdentifier=target,
            Tags=tag_list(tags),
        )
    source = wait_snapshot(rds, target, f"snapshot {target} available", timeout_s)
    taken = source.get("SnapshotCreateTime") or now
    tags[SOURCE_CREATED_TAG] = taken.astimezone(UTC).isoformat()
    copy_to_dr(cfg, source["DBSnapshotArn"], target, tags, timeout_s)
    rds.delete_db_snapshot(DBSnapshotIdentifier=target)
    return StepResult(
        changes=[change],
        outputs={"id": target, "age_s": (utcnow() - taken).total_seconds()},
        applied=True,
        detail=f"{target} in {dr.region} under {dr.kms_alias}",
    )


@step("prune old snapshot copies in DR")
def prune_snapshot_copies(cfg: Config, *, dry_run: bool = False) -> StepResult:
    """Delete the oldest copies beyond ``dr.snapshot_copy.keep``."""
    dr = cfg.regions.dr
    doomed = copies_to_prune(find_copies(cfg), cfg.dr.snapshot_copy.keep)
    changes = [deleted("rds:snapshot-copy", ident, dr) for ident in doomed]
    if not dry_run:
        rds = connect(cfg).client("rds", dr)
        for ident in doomed:
            rds.delete_db_snapshot(DBSnapshotIdentifier=ident)
    return StepResult(changes=changes, applied=bool(doomed) and not dry_run)
