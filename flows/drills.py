"""Drills: prove the stack recovers, on a schedule, and measure how fast.

**Backup drill**, as it would read on a wiki:

1. Snapshot the primary database (or take its newest automated snapshot) and, side by side,
   snapshot the cache.
2. Copy the database snapshot to the DR region under the DR region's KMS key.
3. Restore it into a temporary instance in the DR data subnets; wait until it is available.
4. Run the configured check on it (through the check hook; skipped, with the reason, without).
5. Delete the temporary instance: always, also when an earlier step failed.
6. Prune drill snapshots older than ``keep_days``.

Reports the snapshot's age when the restore began, the copy time and the restore time.

**AZ game day**: see :func:`game_day`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from configs import resolve_config
from configs.errors import BadInput
from flows.report import Timeline, runbook
from tasks.backup import (
    RESTORE_TIMEOUT_S,
    check_restored_data,
    copy_snapshot_to_dr,
    delete_temporary_instance,
    drill_id,
    prune_drill_snapshots,
    restore_temporary_instance,
    snapshot_cache,
    take_db_snapshot,
    utcnow,
)
from tasks.preflight import check_account

SOURCES = ("new", "automated")


def _cleanup(tl: Timeline, cfg: Any, instance: str, failing: bool) -> None:
    """Delete the temporary instance; a failed delete never hides the drill's own failure."""
    try:
        delete_temporary_instance(cfg, instance)
    except Exception as exc:
        if not failing:
            raise
        tl.note(f"could not delete {instance}: {exc}; delete it by hand")


@flow(name="backup-drill", persist_result=False)
def backup_drill(
    config: str = "sandbox",
    source: str = "new",
    restore_timeout_s: float = RESTORE_TIMEOUT_S,
) -> dict[str, Any]:
    """Restore the primary database's backup in the DR region, check it, measure, clean up."""
    if source not in SOURCES:
        raise BadInput(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
    if restore_timeout_s <= 0:
        raise BadInput(f"restore_timeout_s must be positive (got {restore_timeout_s})")
    cfg = resolve_config(config)
    with runbook("backup-drill", cfg.stack) as tl:
        check_account(cfg)
        drill = drill_id(cfg, utcnow())
        tl.metrics["drill"] = drill
        keep = [drill]
        failing = True
        try:
            cache = snapshot_cache.submit(cfg, drill)
            snap = take_db_snapshot(cfg, drill, source).outputs
            keep.append(snap["id"])
            copy = copy_snapshot_to_dr(cfg, snap["arn"], drill).outputs
            tl.metrics["copy_seconds"] = round(copy["seconds"], 1)
            age = (utcnow() - datetime.fromisoformat(snap["created"])).total_seconds()
            tl.metrics["snapshot_age_seconds"] = round(age, 1)
            restored = restore_temporary_instance(
                cfg, drill, drill, timeout_s=restore_timeout_s
            ).outputs
            tl.metrics["restore_seconds"] = round(restored["seconds"], 1)
            check = check_restored_data(cfg, drill, restored["host"], restored["port"])
            tl.metrics["check"] = check.outcome() + (f" ({check.skipped})" if check.skipped else "")
            cache.result()
            failing = False
        finally:
            _cleanup(tl, cfg, drill, failing)
        pruned = prune_drill_snapshots(cfg, keep)
        tl.metrics["pruned"] = len(pruned.outputs["deleted"])
    return tl.model_dump(mode="json")
