"""Approvals: a yes given up front (``--yes`` or an interactive confirmation on the CLI), or,
for a run started from a deployment, a Prefect pause that waits for a form in the UI.

A run outside a deployment never pauses: nobody could resume it, and at 3 a.m. on the CLI
with the Prefect server down it would hang. It refuses instead.
"""

from __future__ import annotations

from prefect.input import RunInput

from configs.errors import Refused
from configs.models import Config
from flows.report import Timeline

PAUSE_TIMEOUT_S = 3600


class Approval(RunInput):
    """A plain yes (redrive on a protected environment)."""

    approve: bool = False


class TypedApproval(RunInput):
    """Type the environment's name and say why: a region move is not a click-through."""

    environment: str = ""
    reason: str = ""


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


def approve_typed(
    tl: Timeline, *, needed: bool, approved: bool, what: str, stack: str, reason: str = ""
) -> str:
    """Typed approval for ``what``; returns the reason given (recorded in the report)."""
    with tl.step("approval") as info:
        if not needed:
            info["detail"] = "approval not required by the config"
            return reason
        if approved:
            info["detail"] = "approved up front (--yes)" + (f": {reason}" if reason else "")
            return reason
        if not in_deployment():
            raise Refused(f"{stack}: {what} needs approval (--yes on the command line)")
        from prefect.flow_runs import pause_flow_run

        answer = pause_flow_run(
            wait_for_input=TypedApproval.with_initial_data(
                description=f"{what}. Type the environment's name ({stack}) and a reason.",
                reason=reason,
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


def approve_protected(tl: Timeline, cfg: Config, approved: bool, what: str) -> None:
    """:func:`approve`, needed only on a protected environment (``protected: true``)."""
    approve(tl, needed=cfg.protected, approved=approved, what=what, stack=cfg.stack)
