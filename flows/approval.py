"""Approvals: a yes given up front (``--yes`` or an interactive confirmation on the CLI), or,
for a run started from a deployment, a Prefect pause that waits for a form in the UI.

A run outside a deployment never pauses: nobody could resume it, and at 3 a.m. on the CLI
with the Prefect server down it would hang. It refuses instead.

A typed approval (region moves, destroy) run from a deployment is given only in its paused
run's form. The up-front yes is the CLI's: a flow parameter the deployments do not offer
(:data:`CLI_ONLY_PARAMETERS`) and that a deployment run ignores, so neither the UI's form nor
an API call's ``parameters`` can skip the pause.

One exception, and no parameter is involved: a child run a fleet dispatched to a work pool
takes the fleet's approval from a grant the approved fleet left for it in the environment's
own lock table (:mod:`tasks.core.grants`), checked against the run's parent as Prefect
records it, taken once.
"""

from __future__ import annotations

from prefect.input import RunInput
from pydantic import Field

from configs.errors import Refused
from configs.models import Config
from flows.report import Timeline
from tasks.core.grants import take_approval

PAUSE_TIMEOUT_S = 3600

# Flow parameters that approve up front: set by the CLI (``--yes``), never by a deployment.
CLI_ONLY_PARAMETERS = frozenset({"approved", "yes"})


class Approval(RunInput):
    """A plain yes (a change to a protected environment)."""

    approve: bool = Field(
        default=False,
        title="Approve",
        description="Tick, then resume: the run goes on and acts. Resumed unticked, it stops "
        "and changes nothing.",
    )


class TypedApproval(RunInput):
    """Type the environment's name and say why: a region move is not a click-through."""

    environment: str = Field(
        min_length=1,
        title="Environment",
        description="The environment's name, typed out (e.g. shop-sandbox), to confirm.",
    )
    reason: str = Field(
        min_length=1,
        title="Reason",
        description="Why, in a sentence: it goes into the run's report.",
    )


def in_deployment() -> bool:
    from prefect.runtime import deployment

    return bool(deployment.id)


def approve(tl: Timeline, *, needed: bool, approved: bool, what: str, stack: str) -> None:
    """A plain yes for ``what``; raises :class:`Refused` without one."""
    with tl.step("approval") as info:
        if not needed:
            info["detail"] = "not needed here"
            return
        if approved:
            info["detail"] = "approved up front (--yes)"
            return
        if not in_deployment():
            raise Refused(f"{stack} is protected: {what} needs approval (--yes)")
        from prefect.flow_runs import pause_flow_run

        answer = pause_flow_run(wait_for_input=Approval, timeout=PAUSE_TIMEOUT_S)
        if not answer.approve:
            raise Refused(f"{stack} is protected: {what} was not approved in the paused run")
        info["detail"] = "approved in the UI"


def fleet_grant(cfg: Config) -> str | None:
    """The approval of this deployment run's parent fleet run, if it left one for this run:
    the fleet's reason (possibly empty). None: pause as any deployment run does."""
    from prefect.runtime import flow_run

    parent = flow_run.parent_flow_run_id
    if not parent:
        return None
    grant = take_approval(cfg, str(flow_run.flow_name), parent_run_id=str(parent))
    if grant is None:
        return None
    return f"fleet {grant.get('fleet', '')} (run {parent})" + (
        f": {grant['reason']}" if grant.get("reason") else ""
    )


def approve_typed(
    tl: Timeline,
    *,
    needed: bool,
    approved: bool,
    what: str,
    stack: str,
    reason: str = "",
    cfg: Config | None = None,
) -> str:
    """Typed approval for ``what``; returns the reason given (recorded in the report).

    ``cfg``: the environment, whose lock table may hold a fleet's grant for this run."""
    with tl.step("approval") as info:
        if not needed:
            info["detail"] = "approval not required by the config"
            return reason
        if not in_deployment():
            if not approved:
                raise Refused(f"{stack}: {what} needs approval (--yes on the command line)")
            info["detail"] = "approved up front (--yes)" + (f": {reason}" if reason else "")
            return reason
        # From a deployment only the form approves, whatever the run's parameters say, or
        # the approved fleet run this run is a child of (a grant, see tasks.core.grants).
        by_fleet = fleet_grant(cfg) if cfg is not None else None
        if by_fleet is not None:
            info["detail"] = f"approved by {by_fleet}"
            return reason or by_fleet
        from prefect.flow_runs import pause_flow_run

        answer = pause_flow_run(
            wait_for_input=TypedApproval.with_initial_data(
                description=approval_prompt(what, stack, reason),
            ),
            timeout=PAUSE_TIMEOUT_S,
        )
        if answer.environment.strip() != stack:
            raise Refused(
                f"approval typed {answer.environment!r}, not the environment's name {stack!r}"
            )
        if not answer.reason.strip():
            raise Refused("approval given without a reason")
        info["detail"] = f"approved in the UI: {answer.reason.strip()}"
        return answer.reason.strip()


def approval_prompt(what: str, stack: str, reason: str = "") -> str:
    """The paused run's form text: what is about to happen, what to type, what comes next."""
    lines = [
        f"**Approval needed: {what}.**",
        "",
        f"Type the environment's name (`{stack}`) and a reason, then resume: the run goes on "
        "at once and acts. Any other name refuses (the run fails, nothing is changed). Not "
        f"resumed within {PAUSE_TIMEOUT_S // 60} minutes, the run fails and changes nothing.",
    ]
    if reason:
        lines += ["", f"Reason given when the run was started: {reason}"]
    return "\n".join(lines)


def approve_protected(tl: Timeline, cfg: Config, approved: bool, what: str) -> None:
    """:func:`approve`, needed only on a protected environment (``protected: true``)."""
    approve(tl, needed=cfg.protected, approved=approved, what=what, stack=cfg.stack)
