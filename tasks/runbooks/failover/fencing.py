"""Fencing on return: a fence a region move could not apply, kept until it can be.

A failover with the primary dark cannot scale the primary's services to 0. When that region
comes back, its services run again against the old database, standalone and writable: split
brain. So the skipped fence is written down in the DR region's lock table (which answers on
that day, and already keeps the locks and the readiness scorecard), and every later run on the
environment asks for it: one read, nothing more when there is none. When the region answers
again, :func:`fence_if_answers` scales its services and autoscaling floor to 0, emits
``tierbook.fence.applied`` and clears the record. The old database is left as it is, for
inspection; the report names it.

::

    pending-fence item   lock_id "<app>-<env>/pending-fence/<region>", kind "fence",
                         environment, region, role, services (names), database, since,
                         run (the failover's flow run), reason, why (why it was skipped)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import StepResult
from tasks.core.events import current_run, emit_about
from tasks.core.log import logger
from tasks.core.records import delete_record, get_records, put_record
from tasks.core.steps import step
from tasks.resources.database.lookup import is_aurora
from tasks.resources.ecs import service_names
from tasks.runbooks.failover.services import fence_services

EVENT = "tierbook.fence.applied"
KIND = "fence"


@dataclass(frozen=True)
class PendingFence:
    """A region whose services a region move could not scale to 0."""

    environment: str
    region: str
    role: Role
    services: tuple[str, ...]
    database: str
    since: float
    run: str = ""
    reason: str = ""
    why: str = ""

    def describe(self) -> str:
        run = f" by run {self.run}" if self.run else ""
        reason = f" ({self.reason})" if self.reason else ""
        return (
            f"{self.region} ({', '.join(self.services)}) not fenced since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(self.since))} UTC{run}{reason}"
        )


# -- pure: what an item says --------------------------------------------------------------
def fence_id(stack: str, region: str) -> str:
    return f"{stack}/pending-fence/{region}"


def pending_fence(cfg: Config, role: Role, *, why: str, reason: str, run: str) -> PendingFence:
    """The record of ``role``'s region left unfenced now."""
    names = names_for(cfg, role)
    return PendingFence(
        environment=cfg.stack,
        region=names.region,
        role=role,
        services=tuple(names.service(svc) for svc in service_names(cfg)),
        database=names.db_cluster if is_aurora(cfg) else names.db_instance,
        since=time.time(),
        run=run,
        reason=reason,
        why=why,
    )


def fence_fields(fence: PendingFence) -> dict[str, Any]:
    """What the record of ``fence`` holds (pure)."""
    return {**asdict(fence), "services": list(fence.services)}


def fence_of(fields: dict[str, Any]) -> PendingFence:
    """A pending fence from its record's fields (pure)."""
    known = {f.name for f in dataclass_fields(PendingFence)}
    role: Role = "dr" if fields.get("role") == "dr" else "primary"
    return PendingFence(
        **{
            **{k: v for k, v in fields.items() if k in known},
            "role": role,
            "services": tuple(fields.get("services", ())),
            "since": float(fields.get("since", 0)),
        }
    )


# -- the table ------------------------------------------------------------------------------
def record_pending_fence(cfg: Config, fence: PendingFence) -> None:
    put_record(cfg, fence_id(fence.environment, fence.region), KIND, fence_fields(fence))


def pending_fences(cfg: Config) -> list[PendingFence]:
    """The environment's pending fences: one read in the DR region (never held up by a
    hang); none without a table (before provision) or a record."""
    ids = [fence_id(cfg.stack, r) for r in cfg_regions(cfg)]
    return sorted((fence_of(f) for f in get_records(cfg, ids, probe=True)), key=lambda f: f.since)


def cfg_regions(cfg: Config) -> tuple[str, ...]:
    return (cfg.regions.primary, cfg.regions.dr)


def clear_pending_fence(cfg: Config, region: str) -> bool:
    """Delete the record of ``region``; True when there was one."""
    return delete_record(cfg, fence_id(cfg.stack, region))


def settle_fence(cfg: Config, role: Role, fenced: StepResult, *, reason: str = "") -> str | None:
    """After a region move fenced (or tried to fence) ``role``: a skipped fence is recorded;
    a fence applied clears any record of either region (traffic now goes to the other one,
    which must never be fenced later). Returns a note for the report; never raises."""
    names = names_for(cfg, role)
    try:
        if not fenced.skipped:
            cleared = [f.region for f in pending_fences(cfg) if clear_pending_fence(cfg, f.region)]
            return f"pending fence of {', '.join(cleared)} cleared" if cleared else None
        run = current_run()
        fence = pending_fence(
            cfg, role, why=fenced.skipped, reason=reason, run=run.flow_run_id if run else ""
        )
        record_pending_fence(cfg, fence)
    except Exception as exc:  # the move itself is done; say loudly what is not recorded
        logger().error("could not record the fence of %s: %s", names.region, exc)
        return f"fence of {names.region} NOT recorded ({exc}): fence it by hand when it answers"
    return (
        f"fence of {names.region} pending in the lock table of {cfg.regions.dr}: the first "
        "tierbook run after it answers again fences it"
    )


# -- fencing on return ----------------------------------------------------------------------
def desired_counts(cfg: Config, fence: PendingFence) -> dict[str, int]:
    """The desired count of each fenced-to-be service that exists (impaired client)."""
    names = names_for(cfg, fence.role)
    ecs = connect(cfg).client("ecs", fence.region, impaired=True)
    found = ecs.describe_services(cluster=names.cluster, services=list(fence.services))
    return {
        s["serviceName"]: int(s.get("desiredCount", 0))
        for s in found.get("services", [])
        if s.get("status") == "ACTIVE"
    }


@step("fence {fence.region} on its return")
def fence_if_answers(cfg: Config, fence: PendingFence, *, dry_run: bool = False) -> StepResult:
    """Probe the region; when it answers, fence it (services and autoscaling floor to 0),
    emit ``tierbook.fence.applied`` and clear the record. When it does not, or the fence is
    skipped, the record stays for the next run."""
    probe = connect(cfg).probe_region(fence.region)
    if not probe.answers:
        return StepResult(
            skipped=f"{fence.region} does not answer yet ({probe.why()}); fence stays pending"
        )
    if dry_run:
        return StepResult(
            status="planned",
            detail=f"would scale {', '.join(fence.services)} in {fence.region} to 0",
        )
    fenced = fence_services(cfg, fence.role)
    if fenced.skipped:
        return StepResult(skipped=f"{fenced.skipped}; fence stays pending")
    clear_pending_fence(cfg, fence.region)
    emitted = emit_about(
        cfg.stack,
        EVENT,
        f"fence.{fence.region}",
        {
            "environment": cfg.stack,
            "region": fence.region,
            "services": list(fence.services),
            "database": fence.database,
            "pending_since": fence.since,
            "failover_run": fence.run,
            "changes": [c.summary() for c in fenced.changes],
        },
    )
    return StepResult(
        changes=fenced.changes,
        applied=True,
        detail=(
            f"{fence.region} answers again: {len(fenced.changes)} service(s) scaled to 0, "
            f"autoscaling floor 0; database {fence.database} left untouched for inspection"
        ),
        outputs={"database": fence.database, "event": emitted},
    )
