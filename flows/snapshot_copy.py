"""Snapshot copy: the routine of a backup-and-restore posture (``dr.posture: backup_restore``).

A fresh snapshot of the primary's database, copied to the DR region under the DR key, the
source deleted, the oldest copies beyond ``dr.snapshot_copy.keep`` deleted. Its deployment runs
on ``dr.snapshot_copy.cron``; readiness fails once the newest copy is older than
``dr.snapshot_copy.rpo_budget_minutes`` — the data a failover restored from it would lose.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from configs import resolve_config
from configs.errors import BadInput, Refused
from flows.fencing import fence_on_return
from flows.report import runbook
from tasks.resources.database.copies import ensure_snapshot_copy, prune_snapshot_copies
from tasks.resources.database.lookup import dr_database
from tasks.runbooks.preflight import check_account


@flow(name="snapshot-copy", persist_result=False)
def snapshot_copy(config: str = "sandbox", plan: bool = False) -> dict[str, Any]:
    """Copy a fresh snapshot of the primary's database to the DR region; prune old copies.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        plan: Only list the copy it would make and the copies it would delete.
    """
    cfg = resolve_config(config)
    if not cfg.restores:
        raise BadInput(
            f"{cfg.stack} is a {cfg.dr.posture.replace('_', ' ')}: snapshot copies are the data "
            "of dr.posture backup_restore (its DR replica holds the data here)"
        )
    with runbook("snapshot-copy", cfg.stack) as tl:
        check_account(cfg)
        fence_on_return(tl, cfg, dry_run=plan)
        if dr_database(cfg) is not None:
            raise Refused(
                f"{cfg.stack} runs on a database restored in {cfg.regions.dr}: a copy of the "
                "primary's would be stale. Copies resume after `tierbook failback`"
            )
        made = ensure_snapshot_copy(cfg, 0.0, dry_run=plan)
        pruned = prune_snapshot_copies(cfg, dry_run=plan)
        tl.changes.extend(made.changes + pruned.changes)
        if plan:
            tl.outcome = "planned"
        else:
            tl.metrics["copy"] = made.outputs["id"]
            tl.metrics["pruned"] = len(pruned.changes)
    return tl.model_dump(mode="json")
