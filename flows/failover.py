"""Failover: move the environment to its DR region now. Switchover: the planned move there,
losing nothing. Failback: bring it home again, the same way.

Failover, as it would read on a wiki:

0. **Readiness** (read-only, also ``--plan``): DR replica replicating within the RPO budget,
   DR services on the primary's image, image and secret in DR, DR load balancer, DNS. A
   failed check refuses the run unless ``force`` gives a reason (kept in the report).
1. **Approval** (typed in the UI, ``--yes`` on the CLI) and the environment's region-move
   **lock**, kept in DynamoDB in the DR region so it holds across machines and without
   Prefect.
2. At once: **fence** the primary (its services to 0, bounded; skipped when the region does
   not answer) and **scale the DR services** to the primary's counts.
3. Once fencing has ended: **promote** the DR replica (the replica lag read just before is the
   RPO estimate) and, at the same time, the session cache's Global Datastore member (when
   ``cache.global_datastore``; called in DR), then **harden** the database (Multi-AZ, backups,
   deletion protection) in the background.
4. When the DR services run and the database is writable: **send traffic** to DR through
   the switch provision prepared (a metric written in DR: no control-plane call; the record
   rewrite is the fallback while Route 53's control plane answers), **verify** healthy
   targets (and an optional HTTP check). RTO = approval → traffic verified in DR;
   ``wall_seconds`` = start → end.

The primary region is probed once, up front (readiness); when it is dark nothing waits on it
again: fencing is skipped with the reason and the account guard asks the DR region's STS.
The report lists every change the run made (``changes``) and the steps a re-run found done.

Switchover and failback are the planned moves (:func:`graceful_switch`): the target scaled
and healthy, traffic sent there, the source fenced, the replica's lag confirmed 0 after the
fence, then the promotion; the region left gets a replica of the new writer. RPO 0, verified.

Every step looks before it acts: a run stopped anywhere and started again completes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from configs import resolve_config
from configs.errors import BadInput, Refused, StepFailed
from configs.models import Config
from configs.names import Role, names_for
from flows.approval import approve_typed
from flows.fencing import fence_on_return
from flows.report import Timeline, runbook
from tasks.core.changes import Change, StepResult, created
from tasks.core.locks import hold
from tasks.core.steps import step
from tasks.resources.alarms import ensure_alarms, ensure_alarms_deleted
from tasks.resources.autoscaling import ensure_autoscaling
from tasks.resources.cache_global import promote_session_cache
from tasks.resources.database.copies import newest_copy, prune_snapshot_copies
from tasks.resources.database.engine import ensure_read_replicas
from tasks.resources.database.lookup import find_database, is_aurora
from tasks.resources.dns_switch import ensure_dns_switch
from tasks.resources.ecs import ensure_service, ensure_services_deleted, service_names
from tasks.resources.network.vpc import find_network
from tasks.runbooks.deploy.rollout import check_smoke
from tasks.runbooks.failover.aurora import uses_aws_switchover
from tasks.runbooks.failover.database import (
    confirm_caught_up,
    harden_database,
    promote_replica,
    put_away_database,
    replicate_database,
    restore_database,
    retire_database,
    switch_database,
    wait_caught_up,
)
from tasks.runbooks.failover.fencing import settle_fence
from tasks.runbooks.failover.readiness import Readiness, evaluate, replica_lag
from tasks.runbooks.failover.services import (
    Foundation,
    fence_services,
    find_foundation,
    point_at_database,
    scale_service,
    verify_targets,
    warm_standby,
)
from tasks.runbooks.failover.traffic_switch import send_traffic

LOCK = "region-move"


@step("check DR readiness")
def check_readiness(cfg: Config) -> Readiness:
    return evaluate(cfg)


def target_counts(cfg: Config, ready: Readiness) -> dict[str, int]:
    """The primary's desired counts where it answered, else the config's; never below 1."""
    return {
        svc: max(1, ready.primary_counts.get(svc) or getattr(cfg.services, svc).desired)
        for svc in service_names(cfg)
    }


def record_readiness(tl: Timeline, ready: Readiness) -> None:
    tl.metrics["readiness"] = ready.status
    for f in ready.findings:
        tl.note(f"readiness {f.check}: {f.status} — {f.detail}")


def refuse_unless_ready(cfg: Config, ready: Readiness, force: str, tl: Timeline) -> None:
    """Failed checks, and unknown ones that matter, refuse the run; ``force`` (a reason) gets
    past any of them."""
    if not ready.failed:
        return
    failed = "; ".join(
        f"{f.check}: {f.detail}" if f.status == "fail" else f"{f.check} ({f.status}): {f.detail}"
        for f in ready.failed
    )
    if not force.strip():
        raise Refused(f"DR region {cfg.regions.dr} is not ready — {failed} (force with a reason)")
    tl.metrics["forced"] = force.strip()
    tl.note(f"forced past readiness ({failed}): {force.strip()}")


def record_results(tl: Timeline, results: Iterable[StepResult | None]) -> None:
    """Every change the run applied, into the report's ``changes``."""
    for r in results:
        if r is not None and r.applied:
            tl.changes.extend(r.changes)


def record_rerun(tl: Timeline) -> None:
    """Which steps found their work already done (a re-run after a stop says so)."""
    done = [s.step for s in tl.ordered() if s.outcome == "unchanged"]
    if done:
        tl.metrics["already_done"] = done


@contextmanager
def region_move(
    tl: Timeline, cfg: Config, *, approved: bool, reason: str, what: str
) -> Iterator[float]:
    """Typed approval, then the environment's region-move lock (in DynamoDB in the DR region,
    shared by failover and failback, CLI and UI) for the block. Yields the moment of the
    decision (monotonic): the RTO counts from it."""
    given = approve_typed(
        tl,
        needed=cfg.failover.require_approval,
        approved=approved,
        what=what,
        stack=cfg.stack,
        reason=reason,
        cfg=cfg,
    )
    if given:
        tl.metrics["reason"] = given
    decided = time.monotonic()
    with hold(cfg, LOCK, region=cfg.regions.dr, purpose=what):
        yield decided


def bring_up(
    cfg: Config, to: Role, counts: dict[str, int], database: dict[str, Any] | None = None
) -> list[PrefectFuture[StepResult]]:
    """``to``'s services at ``counts``, started in the background. Warm standby: scaled.
    Pilot light (DR): first created from the task definitions provision registered there,
    with their autoscaling and the region's alarms — provision's own steps, on what DR
    holds (no call outside it) — while the database is promoted. Backup and restore: the
    same, once the task definitions point at the restored ``database``."""
    if cfg.runs_services(to):
        return [scale_service.submit(cfg, to, svc, n) for svc, n in counts.items()]
    base = find_foundation(cfg, to)
    if database is not None:
        pointed = {svc: point_at_database.submit(cfg, to, svc, database) for svc in counts}
        revisions = {
            svc: str(f.result().outputs["task_definition_arn"]) for svc, f in pointed.items()
        }
        base = replace(base, revisions={**base.revisions, **revisions})
    started: list[PrefectFuture[StepResult]] = [
        ensure_alarms.submit(cfg, to, base.alb_suffix, base.target_group_suffix)
    ]
    for svc, n in counts.items():
        made = ensure_service.submit(*_service_of(cfg, to, base, svc))
        web = svc == "web"
        ranged = ensure_autoscaling.submit(
            cfg,
            to,
            svc,
            base.alb_suffix if web else None,
            base.target_group_suffix if web else None,
            return_state=False,
            wait_for=[made],
        )
        started += [
            made,
            ranged,
            scale_service.submit(cfg, to, svc, n, return_state=False, wait_for=[ranged]),
        ]
    return started


def _service_of(
    cfg: Config, to: Role, base: Foundation, svc: str
) -> tuple[Config, Role, str, str, list[str], str, str | None]:
    """``ensure_service``'s arguments for ``svc`` made from what ``to`` holds."""
    tg = base.target_group_arn if svc == "web" else None
    return (cfg, to, svc, base.revisions[svc], base.app_subnets, base.app_security_group, tg)


def plan_bring_up(cfg: Config, to: Role, counts: dict[str, int]) -> list[Change]:
    """What :func:`bring_up` would create (pilot light, backup and restore): the services,
    autoscaling, alarms; and the database a backup and restore restores."""
    if cfg.runs_services(to):
        return []
    base = find_foundation(cfg, to)
    alarms = ensure_alarms(cfg, to, base.alb_suffix, base.target_group_suffix, dry_run=True)
    services = [ensure_service(*_service_of(cfg, to, base, svc), dry_run=True) for svc in counts]
    restored: list[Change] = []
    if cfg.restores:
        names = names_for(cfg, to)
        copy = newest_copy(cfg)
        source = copy["DBSnapshotIdentifier"] if copy else "(no copy yet)"
        restored = [created("rds:instance", names.db_instance, names.region, {"snapshot": source})]
    return restored + alarms.changes + [c for made in services for c in made.changes]


def back_to_posture(cfg: Config) -> list[PrefectFuture[StepResult]]:
    """DR as its posture keeps it once the stack is home, started in the background: warm
    standby at its warm size; pilot light without services, autoscaling or alarms (destroy's
    own steps, autoscaling first so it does not scale a service back up); backup and restore
    also without its database (put away as the newest snapshot copy) and with task
    definitions that name none."""
    if cfg.runs_services("dr"):
        return [warm_standby.submit(cfg, "dr")]
    alarms = ensure_alarms_deleted.submit(cfg, "dr")
    services = ensure_services_deleted.submit(cfg, "dr", return_state=False, wait_for=[alarms])
    if not cfg.restores:
        return [alarms, services]
    put_away = put_away_database.submit(cfg, "dr", return_state=False, wait_for=[services])
    forgotten = [
        point_at_database.submit(cfg, "dr", svc, None, return_state=False, wait_for=[services])
        for svc in service_names(cfg)
    ]
    pruned = prune_snapshot_copies.submit(cfg, return_state=False, wait_for=[put_away])
    return [alarms, services, put_away, *forgotten, pruned]


def switch_to(
    tl: Timeline,
    cfg: Config,
    to: Role,
    counts: dict[str, int],
    *,
    decided: float,
    http_url: str = "",
) -> dict[str, Any]:
    """The shared middle of failover and failback: fence the other region, promote ``to``'s
    database, scale ``to``'s services, send traffic, verify. Returns the figures; the
    changes go into the timeline."""
    frm: Role = "primary" if to == "dr" else "dr"
    fence = fence_services.submit(cfg, frm)
    restores = to == "dr" and cfg.restores
    # Backup and restore: the database is made from the newest copy at once (the data after
    # it is lost whatever the fence finds); the app layer follows on its endpoint.
    restoring = restore_database.submit(cfg, to) if restores else None
    scales = [] if restores else bring_up(cfg, to, counts)
    fenced = fence.result()
    if note := settle_fence(cfg, frm, fenced, reason=str(tl.metrics.get("reason", ""))):
        tl.note(note)
    # The session cache's Global Datastore fails over in parallel with the database.
    cache = promote_session_cache.submit(cfg, to) if cfg.global_cache else None
    if restoring is not None:
        lag = None
        promoted_result = restoring.result()
        restored = find_database(cfg, to)
        scales = bring_up(cfg, to, counts, {"endpoint": restored.endpoint, "port": restored.port})
    else:
        lag = replica_lag(cfg) if to == "dr" else None
        promoted_result = promote_replica.submit(cfg, to).result()
    harden = harden_database.submit(cfg, to)
    cache_promoted = cache.result() if cache is not None else None
    scaled = [s.result() for s in scales]
    verify_targets(cfg, to, counts["web"])
    switched = send_traffic(cfg, to)
    if http_url:
        check_smoke(http_url)
    rto = time.monotonic() - decided
    hardened = harden.result()
    record_results(tl, [fenced, *scaled, promoted_result, cache_promoted, switched, hardened])
    figures: dict[str, Any] = {"rto_seconds": round(rto, 1)}
    if fenced.skipped:
        figures["fencing"] = f"skipped: {fenced.skipped}"
    if restoring is not None:
        figures.update(restored_rpo(promoted_result, decided))
    elif to == "dr":
        figures["rpo_seconds"] = lag if lag is not None else "unknown (no ReplicaLag data)"
    return figures


def rto_split(tl: Timeline, to: Role) -> dict[str, float]:
    """Where the RTO went, from the run's steps in ``to``: the database (promotion or
    restore), the session cache (its Global Datastore's failover, alongside; when there is
    one), the app layer (task definitions, services, autoscaling, scaling: first start to last
    end), the traffic (the DNS switch and the target check)."""
    region = f" {to} "

    def span(picked: list[Any]) -> float:
        if not picked:
            return 0.0
        return round((max(s.end for s in picked) - min(s.start for s in picked)).total_seconds(), 1)

    steps = tl.ordered()
    cache = [s for s in steps if "session cache" in s.step]
    database = [
        s
        for s in steps
        if s.step.startswith(("promote ", "restore ", "switch ")) and s not in cache
    ]
    app = [
        s
        for s in steps
        if region in f" {s.step} "
        and s.step.startswith(("ensure ", "scale ", "point ", "find "))
        and "database" not in s.step
    ]
    traffic = [s for s in steps if s.step.startswith(("send traffic", "verify "))]
    split = {"database": span(database), "app": span(app), "traffic": span(traffic)}
    return {**split, "cache": span(cache)} if cache else split


def restored_rpo(restored: StepResult, decided: float) -> dict[str, Any]:
    """Backup and restore: the data lost is everything after the restored copy was taken."""
    taken = restored.outputs.get("taken")
    if not taken:
        return {"rpo_seconds": "unknown (the copy names no time)"}
    at_decision = time.time() - (time.monotonic() - decided)
    age = at_decision - datetime.fromisoformat(str(taken)).timestamp()
    return {"rpo_seconds": round(max(age, 0.0), 1), "restored_from": restored.outputs["snapshot"]}


def graceful_switch(
    tl: Timeline,
    cfg: Config,
    to: Role,
    counts: dict[str, int],
    *,
    decided: float,
    http_url: str = "",
) -> dict[str, Any]:
    """The planned move to ``to``, losing nothing: scale ``to``'s services and see them
    healthy, send traffic there (DNS never answers a region without running tasks), fence the
    other region's writers, confirm ``to``'s replica has applied everything (lag 0 for the
    quiet window; AWS's switchover does it for an Aurora global database), then make it the
    writer. Returns the figures; the changes go into the timeline."""
    frm: Role = "primary" if to == "dr" else "dr"
    scaled = [s.result() for s in bring_up(cfg, to, counts)]
    verify_targets(cfg, to, counts["web"])
    switched = send_traffic(cfg, to)
    fenced = fence_services(cfg, frm)
    if fenced.skipped:
        raise StepFailed(
            f"could not fence {names_for(cfg, frm).region} ({fenced.skipped}): a planned move "
            "stops the writers before it promotes. Run it again once the region answers, or "
            "move with `tierbook failover` (which may lose the replica's lag)"
        )
    fenced_at = time.time()
    if note := settle_fence(cfg, frm, fenced):
        tl.note(note)
    aws_switchover = is_aurora(cfg) and uses_aws_switchover(cfg, to)
    confirmed = None if aws_switchover else confirm_caught_up(cfg, to, fenced_at)
    cache = promote_session_cache.submit(cfg, to) if cfg.global_cache else None
    promoted = switch_database(cfg, to)
    cache_promoted = cache.result() if cache is not None else None
    write_pause = time.time() - fenced_at
    harden = harden_database.submit(cfg, to)
    verify_targets(cfg, to, counts["web"])
    if http_url:
        check_smoke(http_url)
    rto = time.monotonic() - decided
    hardened = harden.result()
    record_results(tl, [*scaled, switched, fenced, promoted, cache_promoted, hardened])
    how = (
        "SwitchoverGlobalCluster synchronised before it swapped"
        if confirmed is None
        else str(confirmed.detail)
    )
    tl.note(f"rpo 0 verified: {how}")
    return {
        "rto_seconds": round(rto, 1),
        "rpo_seconds": 0,
        "rpo_verified": how,
        "write_pause_seconds": round(write_pause, 1),
    }


@flow(name="failover", persist_result=False)
def failover(
    config: str = "sandbox",
    plan: bool = False,
    approved: bool = False,
    reason: str = "",
    force: str = "",
    http_check_url: str = "",
    prepare: bool = False,
) -> dict[str, Any]:
    """Move the environment to its DR region: promote, scale up, flip DNS, verify.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        plan: Run the readiness checks and show the steps; change nothing.
        approved: Approval given up front on the command line (``--yes``). Not offered by
            the deployments, and ignored in a run started from one: it always pauses for a
            typed approval (the environment's name and a reason).
        reason: Why the region moves; shown in the approval form and kept in the report.
        force: Go on although readiness checks failed: give the reason (empty: refuse).
        http_check_url: A URL that must answer 2xx/3xx once DNS points at the DR region
            (empty: no HTTP check).
        prepare: Only prepare the data-plane DNS switch, ahead of the day it is needed (for
            a stack tierbook did not build; provision prepares its own). With ``plan``, print
            it.
    """
    cfg = resolve_config(config)
    started = time.monotonic()
    with runbook("failover", cfg.stack) as tl:
        fence_on_return(tl, cfg, dry_run=plan)
        if prepare:
            prepared = ensure_dns_switch(cfg, dry_run=plan)
            tl.changes.extend(prepared.changes)
            tl.outcome = "planned" if plan else "succeeded"
            return tl.model_dump(mode="json")
        ready = check_readiness(cfg)
        record_readiness(tl, ready)
        if ready.replica_lag_s is not None:
            tl.metrics["replica_lag_seconds"] = ready.replica_lag_s
        if ready.snapshot_age_s is not None:
            tl.metrics["snapshot_age_seconds"] = ready.snapshot_age_s
        refuse_unless_ready(cfg, ready, force, tl)
        counts = target_counts(cfg, ready)
        if plan:
            tl.outcome = "planned"
            tl.changes.extend(plan_bring_up(cfg, "dr", counts))
            tl.note(
                f"would fence {cfg.regions.primary}, promote the DR database"
                + (" and session cache, " if cfg.global_cache else ", ")
                + ("" if cfg.runs_services("dr") else "create and ")
                + "scale DR to "
                + ", ".join(f"{s}={n}" for s, n in counts.items())
                + f", send traffic to {cfg.regions.dr} ({cfg.dns.strategy})"
            )
            return tl.model_dump(mode="json")
        with region_move(
            tl,
            cfg,
            approved=approved,
            reason=reason,
            what=f"fail {cfg.stack} over to {cfg.regions.dr}",
        ) as decided:
            figures = switch_to(tl, cfg, "dr", counts, decided=decided, http_url=http_check_url)
        tl.metrics.update(figures)
        tl.metrics["rto_split_seconds"] = rto_split(tl, "dr")
        tl.metrics["wall_seconds"] = round(time.monotonic() - started, 1)
        tl.metrics["active_region"] = cfg.regions.dr
        record_rerun(tl)
    return tl.model_dump(mode="json")


def refuse_unless_planned_move_possible(cfg: Config, ready: Readiness, to: Role) -> None:
    """A planned move needs both regions answering and the database where it is expected."""
    if to == "dr" and cfg.restores:
        raise Refused(
            f"a planned move needs a replica in {cfg.regions.dr}; dr.posture backup_restore keeps "
            "snapshot copies there: `tierbook failover` restores the newest (losing what was "
            "written after it)"
        )
    if not ready.primary_answers:
        raise Refused(
            f"{cfg.regions.primary} does not answer: a planned move stops its writers first. "
            "In an emergency run `tierbook failover`"
            if to == "dr"
            else f"{cfg.regions.primary} does not answer; fail back once it is healthy"
        )
    if to == "dr" and ready.promoted_already:
        raise Refused(f"{cfg.stack} already runs in {cfg.regions.dr}; `tierbook failback` returns")
    if to == "primary" and not ready.promoted_already:
        raise Refused(
            f"{cfg.stack} is not failed over: the DR database still replicates the primary"
        )


def reverse_replica(tl: Timeline, cfg: Config, role: Role, source: Role, stamp: str) -> None:
    """``role``'s old database out of the way (kept, renamed) and a fresh replica of
    ``source``'s in its place, so the stack is protected again. An Aurora global database's
    switchover already made the old writer a secondary."""
    if is_aurora(cfg):
        tl.note(f"the {role} Aurora cluster stays a secondary of the global database")
        return
    retired = retire_database(cfg, role, stamp)
    replicated = replicate_database(cfg, role, source)
    record_results(tl, [retired, replicated])
    if retired.outputs.get("retired"):
        tl.note(f"kept {retired.outputs['retired']} for inspection; delete it when done")


def come_home(
    tl: Timeline,
    cfg: Config,
    *,
    decided: float,
    stamp: str,
    close_enough: float,
    http_url: str = "",
) -> dict[str, Any]:
    """Failback's moves, inside its approval and lock: a replica of the DR database in the
    original region, close to caught up; the planned switch home (primary scaled, traffic
    home, DR fenced, lag 0 confirmed, then the promotion); DR back to a warm standby with a
    fresh replica. Returns the figures."""
    reverse_replica(tl, cfg, "primary", "dr", stamp)  # left as is when a switchover made it
    if not is_aurora(cfg):
        wait_caught_up(cfg, "primary", close_enough)
    counts = {svc: getattr(cfg.services, svc).desired for svc in service_names(cfg)}
    figures = graceful_switch(tl, cfg, "primary", counts, decided=decided, http_url=http_url)
    if not is_aurora(cfg):
        # The readers followed the old writer when it was set aside: copies of it, stale.
        data_sg = find_network(cfg, "primary").security_groups["data"]
        record_results(tl, [ensure_read_replicas(cfg, "", data_sg)])
    settled = back_to_posture(cfg)
    if not cfg.restores:
        reverse_replica(tl, cfg, "dr", "primary", stamp)
    record_results(tl, [f.result() for f in settled])
    return figures


@flow(name="switchover", persist_result=False)
def switchover(
    config: str = "sandbox",
    plan: bool = False,
    approved: bool = False,
    reason: str = "",
    force: str = "",
    http_check_url: str = "",
) -> dict[str, Any]:
    """A planned move to the DR region with zero data loss; the primary becomes the standby.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        plan: Run the readiness checks and show the steps; change nothing.
        approved: Approval given up front on the command line (``--yes``). Not offered by
            the deployments, and ignored in a run started from one: it always pauses for a
            typed approval (the environment's name and a reason).
        reason: Why the region moves; shown in the approval form and kept in the report.
        force: Go on although readiness checks failed: give the reason (empty: refuse).
        http_check_url: A URL that must answer 2xx/3xx once DNS points at the DR region
            (empty: no HTTP check).
    """
    cfg = resolve_config(config)
    started = time.monotonic()
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    with runbook("switchover", cfg.stack) as tl:
        fence_on_return(tl, cfg, dry_run=plan)
        ready = check_readiness(cfg)
        record_readiness(tl, ready)
        refuse_unless_planned_move_possible(cfg, ready, "dr")
        refuse_unless_ready(cfg, ready, force, tl)
        counts = target_counts(cfg, ready)
        if plan:
            tl.outcome = "planned"
            tl.changes.extend(plan_bring_up(cfg, "dr", counts))
            tl.note(
                ("would scale " if cfg.runs_services("dr") else "would create and scale ")
                + f"{cfg.regions.dr} to "
                + ", ".join(f"{s}={n}" for s, n in counts.items())
                + f", send traffic there, fence {cfg.regions.primary}, wait for replica lag 0 "
                f"for {cfg.failover.switchover_quiet_seconds:g}s, promote the DR database and "
                f"replicate it back into {cfg.regions.primary}"
            )
            return tl.model_dump(mode="json")
        with region_move(
            tl,
            cfg,
            approved=approved,
            reason=reason,
            what=f"switch {cfg.stack} over to {cfg.regions.dr}",
        ) as decided:
            figures = graceful_switch(
                tl, cfg, "dr", counts, decided=decided, http_url=http_check_url
            )
            reverse_replica(tl, cfg, "primary", "dr", stamp)
        tl.metrics.update(figures)
        tl.metrics["wall_seconds"] = round(time.monotonic() - started, 1)
        tl.metrics["active_region"] = cfg.regions.dr
        record_rerun(tl)
    return tl.model_dump(mode="json")


@flow(name="failback", persist_result=False)
def failback(
    config: str = "sandbox",
    approved: bool = False,
    reason: str = "",
    max_lag_s: float = 0.0,
    http_check_url: str = "",
) -> dict[str, Any]:
    """Bring a failed-over environment home: replicate back, switch over, DR to warm standby.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        approved: Approval given up front on the command line (``--yes``). Not offered by
            the deployments, and ignored in a run started from one: it always pauses for a
            typed approval (the environment's name and a reason).
        reason: Why now; shown in the approval form and kept in the report.
        max_lag_s: Start the switch (fence DR) only once the reverse replica lags at most
            this (seconds; 0: the config's max_replica_lag_seconds). The promotion itself
            waits for a lag of 0 after the fence whatever this says.
        http_check_url: A URL that must answer 2xx/3xx once DNS points home again
            (empty: no HTTP check).
    """
    cfg = resolve_config(config)
    if max_lag_s < 0:
        raise BadInput(f"max_lag_s must be ≥ 0 (got {max_lag_s:g})")
    close_enough = max_lag_s or cfg.failover.max_replica_lag_seconds
    started = time.monotonic()
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    with runbook("failback", cfg.stack) as tl:
        fence_on_return(tl, cfg)
        ready = check_readiness(cfg)
        refuse_unless_planned_move_possible(cfg, ready, "primary")
        with region_move(
            tl,
            cfg,
            approved=approved,
            reason=reason,
            what=f"fail {cfg.stack} back to {cfg.regions.primary}",
        ) as decided:
            figures = come_home(
                tl,
                cfg,
                decided=decided,
                stamp=stamp,
                close_enough=close_enough,
                http_url=http_check_url,
            )
        tl.metrics.update(figures)
        tl.metrics["wall_seconds"] = round(time.monotonic() - started, 1)
        tl.metrics["active_region"] = cfg.regions.primary
        record_rerun(tl)
    return tl.model_dump(mode="json")
