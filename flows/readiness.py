"""Readiness drill: the failover's readiness checks on a schedule, changing nothing in the
stack. Publishes a scorecard; a check that turns from pass to fail emits
``tierbook.readiness.check-failed`` (a Prefect automation can page on it). Ends failed when
any check fails, so the run's state shows it too.

One exception to "changing nothing": a game day killed while it had an AZ's network cut off
left its record (:mod:`flows.isolation`); the drill restores the subnets' network ACLs and
deletes the drill's ACL first, unless a game day is running."""

from __future__ import annotations

from typing import Any

from prefect import flow

from configs import resolve_config
from configs.errors import StepFailed
from flows.failover import check_readiness, record_readiness
from flows.fencing import fence_on_return
from flows.isolation import restore_left_isolation
from flows.report import publish_table, runbook
from tasks.runbooks.drills.scorecard import emit_failed, swap, turned_failed


@flow(name="drill-readiness", persist_result=False)
def readiness_drill(config: str = "sandbox") -> dict[str, Any]:
    """Evaluate DR readiness and keep score; fail when any check fails.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
    """
    cfg = resolve_config(config)
    with runbook("drill-readiness", cfg.stack) as tl:
        fence_on_return(tl, cfg)
        restore_left_isolation(tl, cfg)
        ready = check_readiness(cfg)
        statuses: dict[str, str] = {f.check: f.status for f in ready.findings}
        before = swap(cfg, statuses)
        turned = turned_failed(before, statuses)
        details = {f.check: f.detail for f in ready.findings}
        emitted = [c for c in turned if emit_failed(cfg, c, details[c])]
        tl.metrics.update(
            {
                "readiness": ready.status,
                "passed": sum(s == "pass" for s in statuses.values()),
                "checks": len(statuses),
                "turned_failed": ", ".join(turned) or "none",
                "events": len(emitted),
            }
        )
        if ready.replica_lag_s is not None:
            tl.metrics["replica_lag_seconds"] = ready.replica_lag_s
        rows = [
            {
                "check": f.check,
                "status": f.status,
                "before": before.get(f.check, "-"),
                "detail": f.detail,
            }
            for f in ready.findings
        ]
        publish_table(
            f"readiness-scorecard-{cfg.stack}", rows, f"DR readiness of {cfg.stack}: {ready.status}"
        )
        record_readiness(tl, ready)
        if ready.failing:
            raise StepFailed(
                "DR not ready: " + "; ".join(f"{f.check}: {f.detail}" for f in ready.failing)
            )
    return tl.model_dump(mode="json")
