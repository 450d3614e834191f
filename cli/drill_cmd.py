"""``tierbook drill``: the drills, one sub-command each (``backup``, ``gameday``, ``readiness``)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import (
    BAD_INPUT,
    ConfigOpt,
    Output,
    OutputOpt,
    PlanOpt,
    YesOpt,
    err_console,
    run_flow,
)
from cli.failover_cmd import HttpCheckOpt, ReasonOpt, confirm_move
from cli.rerun import RERUN

app = typer.Typer(
    help="Drills: backup restore test, AZ game day, DR readiness.",
    no_args_is_help=True,
)


@app.command(epilog=RERUN["backup"])
def backup(
    config: ConfigOpt = "configs/sandbox.yaml",
    source: Annotated[
        str,
        typer.Option(
            "--source", help="new: take a snapshot now; automated: the newest automated one."
        ),
    ] = "new",
    restore_timeout: Annotated[
        float, typer.Option("--restore-timeout", help="Seconds to wait for the restore.")
    ] = 3600.0,
    plan: PlanOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Restore the primary database's backup in the DR region, check it, measure, clean up."""
    if source not in ("new", "automated"):
        err_console.print(f"[red]error:[/] --source must be new or automated (got {source!r})")
        raise typer.Exit(BAD_INPUT)
    run_flow(
        "flows.drills:backup_drill",
        output,
        config=config,
        source=source,
        restore_timeout_s=restore_timeout,
        plan=plan,
    )


@app.command(epilog=RERUN["gameday"])
def gameday(
    config: ConfigOpt = "configs/sandbox.yaml",
    az: Annotated[
        str | None,
        typer.Option("--az", help="The AZ to lose (default: the one running the most tasks)."),
    ] = None,
    yes: YesOpt = False,
    recovery_timeout: Annotated[
        float | None,
        typer.Option("--recovery-timeout", help="Seconds to wait for recovery (default: config)."),
    ] = None,
    plan: PlanOpt = False,
    isolate_network: Annotated[
        bool,
        typer.Option(
            "--isolate-network",
            help="Also cut the AZ's subnets off with a deny-all network ACL during the faults; "
            "the original ACLs are restored at the end, after a failure or an abort.",
        ),
    ] = False,
    output: OutputOpt = Output.text,
) -> None:
    """AZ game day: database and cache failover, one AZ's tasks stopped; time the recovery."""
    run_flow(
        "flows.drills:game_day",
        output,
        config=config,
        az=az,
        yes=yes,
        recovery_timeout_s=recovery_timeout,
        plan=plan,
        isolate_network=isolate_network,
    )


@app.command(epilog=RERUN["readiness"])
def readiness(
    config: ConfigOpt = "configs/sandbox.yaml",
    output: OutputOpt = Output.text,
) -> None:
    """DR readiness: the failover's checks, a scorecard, an event when a check turns to fail."""
    run_flow("flows.readiness:readiness_drill", output, config=config)


@app.command(epilog=RERUN["region"])
def region(
    config: ConfigOpt = "configs/sandbox.yaml",
    yes: YesOpt = False,
    reason: ReasonOpt = "",
    http_check: HttpCheckOpt = "",
    plan: PlanOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Region rotation: switch over to DR and back, losing nothing; both RTOs and the RPO."""
    approved = plan or confirm_move(config, "Run a region drill (to DR and back) on", yes)
    run_flow(
        "flows.region_drill:region_drill",
        output,
        config=config,
        plan=plan,
        approved=approved,
        reason=reason,
        http_check_url=http_check,
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="drill")
