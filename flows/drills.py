"""Drills: prove the stack recovers, on a schedule, and measure how fast.

**Backup drill**, as it would read on a wiki:

1. Snapshot the primary database (or take its newest automated snapshot) and, side by side,
   snapshot the cache.
2. Copy the database snapshot to the DR region under the DR region's KMS key. Side by side,
   export the cache's snapshot to S3 and copy the file to the DR region.
3. Restore the database snapshot into a temporary instance in the DR data subnets, and seed a
   temporary cache from the file there; wait until both are available.
4. Run the configured check on the instance (through the check hook; skipped, with the
   reason, without).
5. Delete the temporary instance and the temporary cache (with its file): always, also when
   an earlier step failed.
6. Prune drill snapshots older than ``keep_days``.

Reports the snapshot's age when the restore began and the time of each part: the database's
copy and restore, the cache's export, copy and restore.

**AZ game day**, as it would read on a wiki:

1. Check the stop alarms exist and none is in ALARM, and that the stack is healthy; get
   approval in a protected environment; take the ``game-day`` lock.
2. Force a database failover (Multi-AZ: reboot with failover; Aurora: ``FailoverDBCluster`` to
   a reader), start a cache failover, stop the ECS tasks of one AZ —
   reading the stop alarms between each: one in ALARM aborts the game day. With
   ``isolate_network``, also cut the AZ's subnets (every tier) off with a deny-all network
   ACL, their original ACLs recorded first in the DR region's lock table.
3. Wait until the database is available, every service runs its desired count and the cache
   is available (still watching the stop alarms); report each one's time to recovery.
4. Put the AZ's subnets back on their original network ACLs and delete the deny-all one: at
   the end, and after a failure or an abort. A cut a killed run left is restored by the next
   game day (before its checks) or the readiness drill.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from prefect import flow

from configs import resolve_config
from configs.errors import BadInput
from flows.approval import approve_protected
from flows.guards import open_run
from flows.isolation import reconnect, restore_left_isolation
from flows.report import Timeline, publish_plan, runbook
from tasks.core.changes import Change
from tasks.core.locks import hold
from tasks.resources.buckets import ensure_drill_bucket
from tasks.resources.network.vpc import find_network
from tasks.runbooks.drills.backup import (
    RESTORE_TIMEOUT_S,
    check_restored_data,
    copy_snapshot_to_dr,
    delete_temporary_instance,
    drill_id,
    plan_backup_drill,
    prune_drill_snapshots,
    restore_temporary_instance,
    snapshot_cache,
    take_db_snapshot,
    utcnow,
)
from tasks.runbooks.drills.cache_restore import (
    copy_cache_export_to_dr,
    delete_temporary_cache,
    export_cache_snapshot,
    plan_cache_restore,
    restore_temporary_cache,
)
from tasks.runbooks.drills.game_day import (
    abort_if_alarm,
    check_steady_state,
    check_stop_alarms,
    choose_az,
    force_db_failover,
    plan_game_day,
    start_cache_failover,
    stop_tasks_in_az,
    wait_for_recovery,
)
from tasks.runbooks.drills.isolation import isolate_az, plan_isolation

SOURCES = ("new", "automated")


def _planned(tl: Timeline, environment: str, runbook: str, changes: list[Change]) -> None:
    tl.changes = changes
    tl.outcome = "planned"
    tl.metrics["changes"] = len(changes)
    publish_plan(runbook, environment, changes)


def _cleanup(tl: Timeline, cfg: Any, drill: str, failing: bool, started: list[Any]) -> None:
    """Delete the temporary instance and cache once every started step has ended; a failed
    delete never hides the drill's own failure."""
    for future in started:
        future.wait()
    deletes = [delete_temporary_instance] + ([delete_temporary_cache] if cfg.cache else [])
    error: Exception | None = None
    for delete in deletes:
        try:
            delete(cfg, drill)
        except Exception as exc:
            error = error or exc
            tl.note(f"could not {delete.name} for {drill}: {exc}; delete it by hand")
    if error is not None and not failing:
        raise error


def _seconds(tl: Timeline, key: str, future: Any) -> Any:
    """The step's outputs, its time recorded under ``key``."""
    out = future.result().outputs
    tl.metrics[key] = round(out["seconds"], 1)
    return out


@flow(name="backup-drill", persist_result=False)
def backup_drill(
    config: str = "sandbox",
    source: Literal["new", "automated"] = "new",
    restore_timeout_s: float = RESTORE_TIMEOUT_S,
    plan: bool = False,
) -> dict[str, Any]:
    """Restore the primary database's backup in the DR region, check it, measure, clean up.
    With ``plan``, only list what it would make and delete.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        source: new: take a snapshot now; automated: the newest automated backup.
        restore_timeout_s: Give up on the restore after this many seconds.
        plan: Only list what the drill would make and delete; change nothing.
    """
    if source not in SOURCES:
        raise BadInput(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
    if restore_timeout_s <= 0:
        raise BadInput(f"restore_timeout_s must be positive (got {restore_timeout_s})")
    cfg = resolve_config(config)
    with runbook("backup-drill", cfg.stack) as tl:
        open_run(tl, cfg, dry_run=plan)
        drill = drill_id(cfg, utcnow())
        tl.metrics["drill"] = drill
        if plan:
            changes = plan_backup_drill(cfg, drill, source).changes
            if cfg.cache is not None:
                for role in ("primary", "dr"):
                    changes += ensure_drill_bucket(cfg, role, dry_run=True).changes
                changes += plan_cache_restore(cfg, drill)
            _planned(tl, cfg.stack, "backup-drill", changes)
            return tl.model_dump(mode="json")
        keep = [drill]
        failing = True
        # the cache's part runs beside the database's, one step of it per database step
        started: list[Any] = []

        def cache_part(step: Any, *args: Any, **kwargs: Any) -> Any:
            started.append(step.submit(cfg, *args, **kwargs))
            return started[-1]

        try:
            cache = cache_part(snapshot_cache, drill)
            buckets = [cache_part(ensure_drill_bucket, r) for r in ("primary", "dr") if cfg.cache]
            network = cache_part(find_network, "dr") if cfg.cache else None
            snap = take_db_snapshot(cfg, drill, source).outputs
            keep.append(snap["id"])
            if cfg.cache is not None:
                for f in (cache, *buckets):
                    f.result()
                cache = cache_part(export_cache_snapshot, drill)
            copy = copy_snapshot_to_dr(cfg, snap["arn"], drill).outputs
            tl.metrics["copy_seconds"] = round(copy["seconds"], 1)
            if cfg.cache is not None:
                _seconds(tl, "cache_export_seconds", cache)
                cache = cache_part(copy_cache_export_to_dr, drill)
            age = (utcnow() - datetime.fromisoformat(snap["created"])).total_seconds()
            tl.metrics["snapshot_age_seconds"] = round(age, 1)
            restored = restore_temporary_instance(
                cfg, drill, drill, timeout_s=restore_timeout_s
            ).outputs
            tl.metrics["restore_seconds"] = round(restored["seconds"], 1)
            if cfg.cache is not None:
                arn = _seconds(tl, "cache_copy_seconds", cache)["arn"]
                dr_network = network.result() if network else None
                cache = cache_part(
                    restore_temporary_cache, drill, arn, dr_network, timeout_s=restore_timeout_s
                )
            check = check_restored_data(cfg, drill, restored["host"], restored["port"])
            tl.metrics["check"] = check.outcome() + (f" ({check.skipped})" if check.skipped else "")
            if cfg.cache is not None:
                _seconds(tl, "cache_restore_seconds", cache)
            else:
                cache.result()
            failing = False
        finally:
            _cleanup(tl, cfg, drill, failing, started)
        pruned = prune_drill_snapshots(cfg, keep)
        tl.metrics["pruned"] = len(pruned.outputs["deleted"])
    return tl.model_dump(mode="json")


@flow(name="game-day", persist_result=False)
def game_day(
    config: str = "sandbox",
    az: str | None = None,
    yes: bool = False,
    recovery_timeout_s: float | None = None,
    plan: bool = False,
    isolate_network: bool = False,
) -> dict[str, Any]:
    """Fail the database and cache over and stop one AZ's tasks; time the recovery.
    With ``plan``, only list the faults it would inject.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        az: The Availability Zone to lose (empty: the one running the most tasks).
        yes: Approval given up front for a protected environment (``--yes``); from a
            deployment, a protected environment's run pauses for approval instead.
        recovery_timeout_s: Give up waiting for recovery after this many seconds (empty:
            the config's value).
        plan: Only list the faults the drill would inject; change nothing.
        isolate_network: Also cut the AZ's subnets off with a deny-all network ACL for the
            duration of the faults; the original ACLs are restored at the end, after a
            failure or an abort, and (after a crash) by the next game day or readiness drill.
    """
    cfg = resolve_config(config)
    zones = cfg.network.primary.azs
    if az is not None and az not in zones:
        raise BadInput(f"--az {az} is not one of the primary region's AZs ({', '.join(zones)})")
    timeout_s = recovery_timeout_s or cfg.drills.game_day.recovery_timeout_seconds
    if timeout_s <= 0:
        raise BadInput(f"recovery timeout must be positive (got {timeout_s})")
    with runbook("game-day", cfg.stack) as tl:
        open_run(tl, cfg, dry_run=plan)
        restore_left_isolation(tl, cfg, dry_run=plan, strict=True)
        check_stop_alarms(cfg)
        check_steady_state(cfg)
        az = az or choose_az(cfg).outputs["az"]
        if plan:
            tl.metrics["az"] = az
            changes = plan_game_day(cfg, az).changes
            if isolate_network:
                changes += plan_isolation(cfg, az)
            _planned(tl, cfg.stack, "game-day", changes)
            return tl.model_dump(mode="json")
        approve_protected(tl, cfg, yes, f"a game day in {az}")
        tl.metrics["az"] = az
        with hold(cfg, "game-day", region=cfg.regions.primary, purpose=f"game day in {az}"):
            injected: dict[str, float] = {}
            failing = True
            try:
                db = force_db_failover(cfg)
                if "at" in db.outputs:
                    injected["database"] = db.outputs["at"]
                abort_if_alarm(cfg)
                cache = start_cache_failover(cfg)
                tl.metrics["cache_failover"] = cache.outcome()
                if "at" in cache.outputs:
                    injected["cache"] = cache.outputs["at"]
                abort_if_alarm(cfg)
                stopped = stop_tasks_in_az(cfg, az).outputs
                tl.metrics["tasks_stopped"] = sum(stopped["stopped"].values())
                for svc, count in stopped["stopped"].items():
                    if count:
                        injected[svc] = stopped["at"]
                if isolate_network:
                    abort_if_alarm(cfg)
                    cut = isolate_az(cfg, az)
                    tl.changes.extend(cut.changes)
                    tl.metrics["subnets_isolated"] = len(cut.outputs["subnets"])
                recovery = wait_for_recovery(cfg, injected, timeout_s).outputs["seconds"]
                for target, seconds in recovery.items():
                    tl.metrics[f"{target}_recovery_seconds"] = seconds
                if recovery:
                    tl.metrics["recovery_seconds"] = max(recovery.values())
                failing = False
            finally:
                if isolate_network:
                    reconnect(tl, cfg, failing=failing)
    return tl.model_dump(mode="json")
