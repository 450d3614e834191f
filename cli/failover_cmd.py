"""``tierbook failover``, ``switchover`` and ``failback``: region moves, with no Prefect server.

Both run the flow in this process (on a temporary local Prefect API when no server answers).
Approval on a terminal is ``--yes`` or typing the environment's name at the prompt.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOpt, Output, OutputOpt, YesOpt, confirm_by_name, interactive, run_flow
from cli.rerun import RERUN

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why: goes into the report.")]
MovePlanOpt = Annotated[
    bool, typer.Option("--plan", help="Readiness checks and the steps; change nothing.")
]
ForceOpt = Annotated[
    str, typer.Option("--force", help="Go on despite failed readiness checks; give the reason.")
]
HttpCheckOpt = Annotated[
    str, typer.Option("--http-check", help="URL that must answer 2xx/3xx afterwards.")
]


def confirm_move(config: str, what: str, yes: bool) -> bool:
    """``--yes``, or the environment's name typed at a terminal; else the flow refuses."""
    if yes:
        return True
    from configs import resolve_config

    try:
        cfg = resolve_config(config)
    except Exception:  # the flow reports a bad config with its exit code
        return False
    if not cfg.failover.require_approval:
        return True
    if not interactive():
        return False
    confirm_by_name(cfg.stack, f"{what} {cfg.stack}?")
    return True


def failover(
    config: ConfigOpt = "configs/sandbox.yaml",
    plan: MovePlanOpt = False,
    yes: YesOpt = False,
    reason: ReasonOpt = "",
    force: ForceOpt = "",
    http_check: HttpCheckOpt = "",
    prepare: Annotated[
        bool,
        typer.Option(
            "--prepare",
            help="Only prepare the data-plane DNS switch ahead of time (a stack tierbook did "
            "not build); moves nothing. With --plan, print it.",
        ),
    ] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Cross-region DR: fence the primary, promote the DR replica, scale DR up, flip DNS."""
    flow = "flows.failover:failover"

    approved = plan or prepare or confirm_move(config, "Fail over", yes)
    run_flow(
        flow,
        output,
        config=config,
        plan=plan,
        approved=approved,
        reason=reason,
        force=force,
        http_check_url=http_check,
        prepare=prepare,
    )


def switchover(
    config: ConfigOpt = "configs/sandbox.yaml",
    plan: MovePlanOpt = False,
    yes: YesOpt = False,
    reason: ReasonOpt = "",
    force: ForceOpt = "",
    http_check: HttpCheckOpt = "",
    output: OutputOpt = Output.text,
) -> None:
    """Planned move to DR, losing nothing: scale DR, send traffic, fence, lag 0, promote."""
    approved = plan or confirm_move(config, "Switch over", yes)
    run_flow(
        "flows.failover:switchover",
        output,
        config=config,
        plan=plan,
        approved=approved,
        reason=reason,
        force=force,
        http_check_url=http_check,
    )


def failback(
    config: ConfigOpt = "configs/sandbox.yaml",
    yes: YesOpt = False,
    reason: ReasonOpt = "",
    http_check: HttpCheckOpt = "",
    output: OutputOpt = Output.text,
) -> None:
    """Return to the original region, losing nothing: replicate back, scale home, fence DR,
    wait for replica lag 0, promote, DR to warm standby."""
    flow = "flows.failover:failback"

    approved = confirm_move(config, "Fail back", yes)
    run_flow(
        flow, output, config=config, approved=approved, reason=reason, http_check_url=http_check
    )


def register(app: typer.Typer) -> None:
    app.command(name="failover", epilog=RERUN["failover"])(failover)
    app.command(name="switchover", epilog=RERUN["switchover"])(switchover)
    app.command(name="failback", epilog=RERUN["failback"])(failback)
