"""Prefect deployments of every runbook: declarative, no logic.

``build(config)`` returns one deployment per runbook for one environment; the drills carry
the cron schedules of the config's ``drills:`` block. ``build_fleets(fleet)`` adds a fleet's
readiness scorecard on the fleet file's ``scorecard`` schedule. ``tierbook serve`` serves them all from
one process (Prefect's runner: a process work pool for one machine); see the README for
running them on an ECS or Kubernetes work pool instead.
"""

from deployments.catalog import RUNBOOKS, SCHEDULES, build, build_fleets

__all__ = ["RUNBOOKS", "SCHEDULES", "build", "build_fleets"]
