"""Fleet: one runbook over many environments, wave after wave, with one approval and one report.

As it would read on a wiki:

1. **Load the fleet file** (:mod:`configs.fleet`): every environment's config, the waves.
   ``only`` cuts it down to one environment (a rerun).
2. **Approval**, once for the whole fleet, for the runbooks that move a region: the fleet's
   name typed (``--yes`` on the CLI). Every environment's run is then approved by it.
3. **Wave by wave**: the environments of a wave run at once, each as its own flow run (a
   child of the fleet's run) with its own lock, account guard and report. A wave starts once
   the one before it has ended; an environment that did not succeed stops the later waves
   unless ``continue_on_error``.
4. **Report**: a row per environment (wave, outcome, RTO, RPO, readiness, findings, error) as
   a table artifact and in the fleet's timeline; the fleet's RTO is the time from the approval
   to the end of the last successful environment's run (an upper bound of "last environment
   verified in its new region": a run ends shortly after its traffic is verified).

With a **work pool** (``work_pool``, or the fleet file's), each environment's run is instead
dispatched to its deployment on the pool (:mod:`flows.dispatch`), still a child of the fleet's
run, and any worker takes it; the fleet's approval reaches it as a grant in the environment's
lock table (:mod:`tasks.core.grants`), never as a parameter.

The fleet adds no AWS call of its own beyond those grants: everything is done by the
environments' runbooks.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from prefect import flow
from prefect.runtime import flow_run

from configs.errors import BadInput
from configs.fleet import Fleet, Member, load_fleet, with_overrides
from configs.loader import read_yaml
from flows.approval import CLI_ONLY_PARAMETERS, approve_typed
from flows.dispatch import check_pool, run_on_pool
from flows.report import Timeline, publish_table, report_dir
from flows.report import runbook as timeline_of
from tasks.core.grants import grant_approval, withdraw_approval

FleetRunbook = Literal["readiness", "audit", "failover", "failback", "switchover"]

# The runbook each fleet command runs per environment, imported when used: a runbook added
# later (or absent from this version) costs nothing here.
RUNBOOKS: dict[str, str] = {
    "readiness": "flows.readiness:readiness_drill",
    "audit": "flows.audit:audit",
    "failover": "flows.failover:failover",
    "failback": "flows.failover:failback",
    "switchover": "flows.failover:switchover",
}

# Runbooks that move a region: one typed approval for the fleet, then each run is approved.
REGION_MOVES = frozenset({"failover", "failback", "switchover"})

# Runbooks that change nothing: ``plan`` runs them as they are.
READ_ONLY = frozenset({"readiness", "audit"})

NOT_RUN = "not run"
OK = frozenset({"succeeded", "planned"})


def runbook_flow(name: str) -> Callable[..., Any]:
    """The environment's runbook, by name; :class:`BadInput` when this version has none."""
    module, _, attr = RUNBOOKS[name].partition(":")
    found = getattr(importlib.import_module(module), attr, None)
    if found is None:
        raise BadInput(f"this version of tierbook has no {name} runbook ({RUNBOOKS[name]})")
    return found  # type: ignore[no-any-return]


def child_config(fleet: Fleet, member: Member) -> str:
    """What the environment's run is given as its config: the file itself, or, when the fleet
    gives the environment its own account or role, a copy with them written in."""
    if not member.overrides:
        return str(member.source)
    folder = report_dir().parent / "fleets" / fleet.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{member.name}.yaml"
    path.write_text(yaml.safe_dump(with_overrides(read_yaml(member.source), member.overrides)))
    return str(path)


def child_parameters(
    fn: Callable[..., Any],
    *,
    config: str,
    plan: bool,
    approved: bool,
    reason: str,
    read_only: bool = False,
) -> dict[str, Any] | None:
    """The parameters the runbook takes out of the fleet's; ``None``: it has no plan to show."""
    accepted = inspect.signature(getattr(fn, "fn", fn)).parameters
    if plan and "plan" not in accepted and not read_only:
        return None
    offered = {"config": config, "plan": plan, "approved": approved, "reason": reason}
    return {k: v for k, v in offered.items() if k in accepted and (v or k == "config")}


def row(wave: int, member: Member, report: dict[str, Any] | None, error: str) -> dict[str, Any]:
    """The fleet report's line for one environment."""
    report = report or {}
    metrics = report.get("metrics") or {}
    findings = "-"
    if "checks" in metrics:
        findings = f"{metrics.get('passed', 0)}/{metrics['checks']} checks pass"
    elif "findings" in metrics:
        findings = f"{metrics['findings']} ({metrics.get('high', 0)} high)"
    return {
        "wave": wave,
        "environment": member.name,
        "stack": member.cfg.stack,
        "outcome": report.get("outcome") or (NOT_RUN if not error else "failed"),
        "rto_seconds": metrics.get("rto_seconds", "-"),
        "rpo_seconds": metrics.get("rpo_seconds", "-"),
        "readiness": metrics.get("readiness", "-"),
        "findings": findings,
        "error": error or report.get("error", ""),
        "report": report.get("report_path", ""),
    }


@dataclass(frozen=True)
class Dispatch:
    """Where the environments' runs go: ``pool`` empty, threads of this process; else the
    pool's deployments, each approved by a grant from ``fleet`` (its run) when ``grant``."""

    pool: str = ""
    fleet: str = ""
    fleet_run_id: str = ""
    grant: bool = False
    reason: str = ""


def run_environment(
    fn: Callable[..., Any],
    member: Member,
    params: dict[str, Any] | None,
    runbook_name: str,
    dispatch: Dispatch = Dispatch(),
) -> tuple[dict[str, Any] | None, str, float]:
    """One environment's runbook as a child flow run: its report, its error, when it ended."""
    if params is None:
        return {"outcome": "planned", "report_path": ""}, f"{runbook_name} has no plan", 0.0
    if dispatch.pool:
        return run_dispatched(fn, member, params, dispatch)
    child = fn.with_options(flow_run_name=f"{runbook_name}-{member.cfg.stack}")  # type: ignore[attr-defined]
    try:
        report = child(**params)
        return report, "", time.monotonic()
    except Exception as exc:
        timeline = getattr(exc, "timeline", None)
        report = timeline.model_dump(mode="json") if timeline is not None else None
        return report, f"{type(exc).__name__}: {exc}", time.monotonic()


def run_dispatched(
    fn: Callable[..., Any], member: Member, params: dict[str, Any], dispatch: Dispatch
) -> tuple[dict[str, Any] | None, str, float]:
    """The environment's run on the pool: its deployment already names its config, and its
    approval, if the fleet has one, is a grant the run takes (never a parameter)."""
    name = str(fn.name)  # type: ignore[attr-defined]
    sent = {k: v for k, v in params.items() if k not in ("config", *CLI_ONLY_PARAMETERS)}
    try:
        if dispatch.grant:
            grant_approval(
                member.cfg,
                name,
                fleet_run_id=dispatch.fleet_run_id,
                fleet=dispatch.fleet,
                reason=dispatch.reason,
            )
        return run_on_pool(name, member.cfg, sent)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}", time.monotonic()
    finally:
        # Not withdrawn (AWS did not answer): it lapses within the hour, and only a child of
        # this fleet run, which has ended, could take it.
        if dispatch.grant:
            with contextlib.suppress(Exception):
                withdraw_approval(member.cfg, name, fleet_run_id=dispatch.fleet_run_id)


def run_wave(
    fn: Callable[..., Any],
    members: list[Member],
    params: dict[str, dict[str, Any] | None],
    runbook_name: str,
    dispatch: Dispatch = Dispatch(),
) -> list[tuple[Member, dict[str, Any] | None, str, float]]:
    """The wave's environments at once, each in a thread that carries the fleet run's context
    (so each run is the fleet run's child) and keeps its own (its report, its steps)."""
    with ThreadPoolExecutor(len(members), thread_name_prefix="fleet") as pool:
        futures = [
            pool.submit(
                contextvars.copy_context().run,
                run_environment,
                fn,
                m,
                params[m.name],
                runbook_name,
                dispatch,
            )
            for m in members
        ]
        return [(m, *f.result()) for m, f in zip(members, futures, strict=True)]


def approve_fleet(
    tl: Timeline, fleet: Fleet, name: str, *, approved: bool, reason: str
) -> float | None:
    """One typed approval (the fleet's name) for a region move; the moment of the decision."""
    if name not in REGION_MOVES:
        return None
    stacks = ", ".join(m.cfg.stack for m in fleet.members.values())
    given = approve_typed(
        tl,
        needed=any(m.cfg.failover.require_approval for m in fleet.members.values()),
        approved=approved,
        what=f"{name} of fleet {fleet.name} ({stacks})",
        stack=fleet.name,
        reason=reason,
    )
    if given:
        tl.metrics["reason"] = given
    return time.monotonic()


@flow(name="fleet", persist_result=False)
def fleet(
    fleet: str = "sandbox",
    runbook: FleetRunbook = "readiness",
    plan: bool = False,
    approved: bool = False,
    reason: str = "",
    continue_on_error: bool = False,
    only: str = "",
    work_pool: str = "",
) -> dict[str, Any]:
    """Run one runbook over every environment of a fleet, wave after wave.

    Args:
        fleet: The fleet file: a name under configs/fleets/ or a path to its YAML file.
        runbook: readiness, audit, failover, failback or switchover.
        plan: Every environment's runbook shows its plan and changes nothing.
        approved: Approval given up front on the command line (``--yes``) for the whole
            fleet; without it a region move refuses.
        reason: Why; shown in the approval and kept in every environment's report.
        continue_on_error: Go on with the later waves when an environment fails.
        only: Run only this environment of the fleet (a rerun), by its name in the file.
        work_pool: Dispatch each environment's run to its deployment on this work pool
            (default: the fleet file's ``work_pool``; none: in this process).
    """
    loaded = load_fleet(fleet)
    if only:
        loaded = loaded.only(only)
    fn = runbook_flow(runbook)
    pool = work_pool or loaded.work_pool or ""
    if pool:
        check_dispatchable(loaded, str(fn.name), pool)  # type: ignore[attr-defined]
    started = time.monotonic()
    with timeline_of(f"fleet-{runbook}", loaded.name) as tl:
        decided = (
            None if plan else approve_fleet(tl, loaded, runbook, approved=approved, reason=reason)
        )
        params = {
            m.name: child_parameters(
                fn,
                config=child_config(loaded, m),
                plan=plan,
                approved=decided is not None,
                reason=reason,
                read_only=runbook in READ_ONLY,
            )
            for m in loaded.members.values()
        }
        dispatch = Dispatch(
            pool=pool,
            fleet=loaded.name,
            fleet_run_id=str(flow_run.id),
            grant=bool(pool) and decided is not None,
            reason=str(tl.metrics.get("reason") or reason),
        )
        if pool:
            tl.metrics["work_pool"] = pool
        rows: list[dict[str, Any]] = []
        ends: list[float] = []
        stopped = ""
        for i, wave in enumerate(loaded.waves, start=1):
            members = [loaded.members[name] for name in wave]
            if stopped:
                rows += [row(i, m, None, "") for m in members]
                continue
            with tl.step(f"wave {i}: {', '.join(wave)}") as info:
                done = run_wave(fn, members, params, runbook, dispatch)
                rows += [row(i, m, report, error) for m, report, error, _ in done]
                ends += [end for _, report, error, end in done if not error and end]
                failed = [r["environment"] for r in rows[-len(done) :] if r["outcome"] not in OK]
                info["detail"] = ", ".join(
                    f"{r['environment']}: {r['outcome']}" for r in rows[-len(done) :]
                )
                if failed and not continue_on_error:
                    stopped = f"wave {i} did not succeed ({', '.join(failed)}): later waves not run"
        finish(tl, loaded, runbook, rows, stopped=stopped, plan=plan)
        tl.metrics["wall_seconds"] = round(time.monotonic() - started, 1)
        if decided is not None and ends:
            tl.metrics["rto_seconds"] = round(max(ends) - decided, 1)
    report = tl.model_dump(mode="json")
    report["environments"] = rows
    report["flow_run_id"] = flow_run.id  # the environments' runs are its children in the UI
    return report


def check_dispatchable(loaded: Fleet, flow_name: str, pool: str) -> None:
    """A fleet can go to a pool when no environment overrides its account (the pool's
    deployment runs the config as deployed) and the pool has every environment's deployment."""
    overridden = [m.name for m in loaded.members.values() if m.overrides]
    if overridden:
        raise BadInput(
            f"work_pool {pool}: environments {', '.join(overridden)} override their account "
            "or role, which a pool's deployment does not carry; run them without a work pool"
        )
    check_pool(pool, flow_name, [m.cfg.stack for m in loaded.members.values()])


def finish(
    tl: Timeline,
    loaded: Fleet,
    name: str,
    rows: list[dict[str, Any]],
    *,
    stopped: str,
    plan: bool,
) -> None:
    """The fleet's table, its counts, and its outcome: failed when any environment was not
    done (the rows say which and why)."""
    publish_table(
        f"fleet-{name}-{loaded.name}",
        rows,
        f"fleet {name} of {loaded.name}: a row per environment",
    )
    for r in rows:
        tl.note(
            f"wave {r['wave']} {r['environment']} ({r['stack']}): {r['outcome']}"
            + (f" — {r['error']}" if r["error"] else "")
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    tl.metrics["environments"] = len(rows)
    tl.metrics.update(counts)
    bad = [r["environment"] for r in rows if r["outcome"] not in OK]
    if bad:
        tl.outcome = "failed"
        tl.error = stopped or f"not done: {', '.join(bad)}"
    elif plan:
        tl.outcome = "planned"
