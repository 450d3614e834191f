"""An approval a fleet run hands to one environment's run on a work pool.

A runbook started from a deployment is approved only in its paused run's form: no parameter
approves it, so a run started from the UI always waits for a typed approval. A fleet's
children dispatched to a work pool are deployment runs too, and the fleet has already been
approved once (``--yes``, or the fleet's name typed). So the fleet, after its approval, leaves
a **grant** beside the environment's locks (its DR region's lock table) for each child:

    lock_id "<app>-<env>/approval/<runbook>/<fleet run id>", kind "approval-grant",
    fleet_run_id, fleet, reason, expires_at

A deployment run takes (conditionally deletes) the grant only when it names the runbook it
runs, the run's own parent is that fleet run (Prefect's ``parent_flow_run_id``, set by
``run_deployment(as_subflow=True)``) and it has not expired. Nothing a UI form or an API
call's ``parameters`` carry is consulted, and a grant is taken once: a run started by hand
finds none and pauses as before. The fleet withdraws the grants its children did not take.
"""

from __future__ import annotations

import time

from configs.models import Config
from tasks.core.locks import ensure_lock_table, lock_key
from tasks.core.records import delete_record, put_record, take_record

KIND = "approval-grant"
# Long enough for a busy pool to start the child, short enough that a stray grant lapses.
GRANT_TTL_S = 3600.0


def grant_id(cfg: Config, runbook: str, fleet_run_id: str) -> str:
    return lock_key(cfg, f"approval/{runbook}/{fleet_run_id}")


def grant_approval(
    cfg: Config, runbook: str, *, fleet_run_id: str, fleet: str, reason: str
) -> None:
    """Leave the fleet's approval of ``runbook`` on this environment for its child run (the
    lock table is made if no lock was ever taken there: the child will take one)."""
    ensure_lock_table(cfg, cfg.regions.dr)
    put_record(
        cfg,
        grant_id(cfg, runbook, fleet_run_id),
        KIND,
        {
            "fleet_run_id": fleet_run_id,
            "fleet": fleet,
            "reason": reason,
            "expires_at": time.time() + GRANT_TTL_S,
        },
    )


def take_approval(cfg: Config, runbook: str, *, parent_run_id: str) -> dict[str, str] | None:
    """The grant a fleet run left for this run (and it is gone), or None: there is none for
    this runbook from this run's parent, or it has expired."""
    found = take_record(
        cfg,
        grant_id(cfg, runbook, parent_run_id),
        expect={"fleet_run_id": parent_run_id},
        now=time.time(),
    )
    return {k: str(v) for k, v in found.items()} if found else None


def withdraw_approval(cfg: Config, runbook: str, *, fleet_run_id: str) -> bool:
    """Remove a grant the child did not take (it never started, or failed before approval)."""
    return delete_record(cfg, grant_id(cfg, runbook, fleet_run_id))
