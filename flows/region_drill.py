"""Region drill: rotate the environment through its DR region and back, on a schedule.

As it would read on a wiki:

1. **Readiness**: every check must pass (a drill is no reason to move a stack that is not
   ready); the primary must answer.
2. **Approval** (typed; a scheduled run pauses for it) and the region-move lock, once for
   the whole drill.
3. **Switchover** to DR: DR scaled and healthy, traffic to DR, the primary fenced, replica
   lag 0 confirmed, DR promoted, the primary replicating it.
4. **Back home** the same way: the primary scaled, traffic home, DR fenced, lag 0 confirmed,
   the primary promoted, its readers re-pointed, DR a warm standby replicating it again.
5. The two databases the moves set aside are deleted: both moves verified an RPO of 0, so
   they hold nothing the live ones lack. The stack is as the drill found it.

Publishes a scorecard (``region-drill-<stack>``) with each move's RTO, RPO and write pause.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow

from configs import resolve_config
from configs.errors import Refused
from flows.failover import (
    check_readiness,
    come_home,
    graceful_switch,
    record_readiness,
    record_results,
    refuse_unless_planned_move_possible,
    region_move,
    reverse_replica,
    target_counts,
)
from flows.fencing import fence_on_return
from flows.report import publish_table, runbook
from tasks.resources.database.lookup import is_aurora
from tasks.runbooks.failover.database import drop_retired


@flow(name="drill-region", persist_result=False)
def region_drill(
    config: str = "sandbox",
    plan: bool = False,
    approved: bool = False,
    reason: str = "",
    http_check_url: str = "",
) -> dict[str, Any]:
    """Switch over to the DR region and back, losing nothing; measure both RTOs and the RPO.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        plan: Run the readiness checks and show the steps; change nothing.
        approved: Approval given up front on the command line (``--yes``). Not offered by
            the deployments, and ignored in a run started from one: it always pauses for a
            typed approval (the environment's name and a reason).
        reason: Why; shown in the approval form and kept in the report.
        http_check_url: A URL that must answer 2xx/3xx after each move (empty: none).
    """
    cfg = resolve_config(config)
    started = time.monotonic()
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    with runbook("drill-region", cfg.stack) as tl:
        fence_on_return(tl, cfg, dry_run=plan)
        ready = check_readiness(cfg)
        record_readiness(tl, ready)
        if ready.failing:
            raise Refused(
                "the region drill runs only on a ready stack — "
                + "; ".join(f"{f.check} ({f.status}): {f.detail}" for f in ready.failing)
            )
        refuse_unless_planned_move_possible(cfg, ready, "dr")
        counts = target_counts(cfg, ready)
        if plan:
            tl.outcome = "planned"
            tl.note(
                f"would switch {cfg.stack} over to {cfg.regions.dr} and back to "
                f"{cfg.regions.primary}, each time waiting for replica lag 0 for "
                f"{cfg.failover.switchover_quiet_seconds:g}s after the fence"
            )
            return tl.model_dump(mode="json")
        with region_move(
            tl,
            cfg,
            approved=approved,
            reason=reason or "scheduled region drill",
            what=f"a region drill: switch {cfg.stack} over to {cfg.regions.dr} and back",
        ) as decided:
            out = graceful_switch(tl, cfg, "dr", counts, decided=decided, http_url=http_check_url)
            reverse_replica(tl, cfg, "primary", "dr", stamp)
            back = come_home(
                tl,
                cfg,
                decided=time.monotonic(),
                stamp=stamp,
                close_enough=cfg.failover.max_replica_lag_seconds,
                http_url=http_check_url,
            )
            if not is_aurora(cfg):
                record_results(
                    tl, [drop_retired(cfg, "primary", stamp), drop_retired(cfg, "dr", stamp)]
                )
        rows = [
            {
                "move": f"{cfg.regions.primary} → {cfg.regions.dr}",
                "rto_seconds": out["rto_seconds"],
                "rpo_seconds": out["rpo_seconds"],
                "write_pause_seconds": out["write_pause_seconds"],
            },
            {
                "move": f"{cfg.regions.dr} → {cfg.regions.primary}",
                "rto_seconds": back["rto_seconds"],
                "rpo_seconds": back["rpo_seconds"],
                "write_pause_seconds": back["write_pause_seconds"],
            },
        ]
        publish_table(
            f"region-drill-{cfg.stack}",
            rows,
            f"Region drill of {cfg.stack}: RTO out {out['rto_seconds']}s, back "
            f"{back['rto_seconds']}s, RPO {max(out['rpo_seconds'], back['rpo_seconds'])}s",
        )
        tl.metrics.update(
            {
                "rto_out_seconds": out["rto_seconds"],
                "rto_back_seconds": back["rto_seconds"],
                "rpo_seconds": max(out["rpo_seconds"], back["rpo_seconds"]),
                "write_pause_out_seconds": out["write_pause_seconds"],
                "write_pause_back_seconds": back["write_pause_seconds"],
                "wall_seconds": round(time.monotonic() - started, 1),
                "active_region": cfg.regions.primary,
            }
        )
    return tl.model_dump(mode="json")
