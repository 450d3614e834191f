"""Which flows are deployed, with which schedules. Add a runbook here when it lands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment

from configs import Config, config_path, resolve_config
from configs.models import Schedule
from flows.audit import audit
from flows.deploy import deploy, rollback
from flows.drills import backup_drill, game_day
from flows.failover import failback, failover
from flows.preflight import preflight
from flows.readiness import readiness_drill
from flows.redrive import redrive

# deployment flow name -> flow
RUNBOOKS: dict[str, Any] = {
    "preflight": preflight,
    "redrive": redrive,
    "failover": failover,
    "failback": failback,
    "drill-readiness": readiness_drill,
    "deploy": deploy,
    "rollback": rollback,
    "backup-drill": backup_drill,
    "game-day": game_day,
    "audit": audit,
}

# flow name -> the config's schedule for it
SCHEDULES: dict[str, Callable[[Config], Schedule]] = {
    "drill-readiness": lambda cfg: cfg.drills.readiness,
    "backup-drill": lambda cfg: cfg.drills.backup_restore,
    "game-day": lambda cfg: cfg.drills.game_day,
    "audit": lambda cfg: cfg.drills.audit,
}


def build(config: str) -> list[RunnerDeployment]:
    """Every runbook's deployment for the environment ``config`` names, named after it."""
    cfg = resolve_config(config)
    path = config_path(config).resolve()
    # Runs may start in another working directory: pass an env name or an absolute path.
    ref = path.stem if path.parent == config_path(path.stem).resolve().parent else str(path)
    deployments = []
    for flow_name, flow in RUNBOOKS.items():
        schedule = SCHEDULES[flow_name](cfg) if flow_name in SCHEDULES else None
        deployments.append(
            flow.to_deployment(
                name=cfg.stack,
                parameters={"config": ref},
                tags=["tierbook", cfg.stack, f"app:{cfg.app}", f"env:{cfg.env}"],
                description=(flow.description or "").strip() or None,
                schedules=(
                    [CronSchedule(cron=schedule.cron, timezone=schedule.timezone)]
                    if schedule and schedule.cron
                    else None
                ),
            )
        )
    return deployments
