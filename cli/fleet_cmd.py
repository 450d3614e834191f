"""``tierbook fleet readiness|audit|failover|failback|switchover -f FLEET``: one runbook over
every environment of a fleet file, wave after wave, with one approval and one report.

Runs in this process like the other commands (each environment's run a child of the fleet's,
in parallel within a wave); approval is ``--yes`` or the fleet's name typed at a terminal.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from cli.common import (
    BAD_INPUT,
    Output,
    OutputOpt,
    YesOpt,
    choose_api,
    confirm_by_name,
    err_console,
    interactive,
    run_prepared,
    step_view,
)
from cli.rerun import RERUN

app = typer.Typer(
    help="One runbook over every environment of a fleet file, in waves.", no_args_is_help=True
)

FleetOpt = Annotated[
    str,
    typer.Option("--fleet", "-f", help="Fleet file: a YAML path or a name under configs/fleets/."),
]
PlanOpt = Annotated[
    bool, typer.Option("--plan", help="Every environment shows its plan; nothing changes.")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why: goes into every report.")]
ContinueOpt = Annotated[
    bool,
    typer.Option(
        "--continue-on-error", help="Go on with the later waves when an environment fails."
    ),
]
OnlyOpt = Annotated[
    str, typer.Option("--only", help="Run only this environment (its name in the fleet file).")
]
FLOW = "flows.fleet:fleet"
REGION_MOVES = ("failover", "failback", "switchover")


def _checked(fleet: str, only: str) -> str:
    """The fleet's name, or exit 2 naming the problem: before Prefect starts, before any AWS
    call (each environment's run then checks its own account)."""
    from configs.errors import ConfigError
    from configs.fleet import load_fleet

    try:
        loaded = load_fleet(fleet)
        if only:
            loaded.only(only)
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(BAD_INPUT) from None
    return loaded.name


def _run(
    runbook: str,
    fleet: str,
    output: Output,
    *,
    plan: bool = False,
    yes: bool = False,
    reason: str = "",
    continue_on_error: bool = False,
    only: str = "",
) -> None:
    name = _checked(fleet, only)
    approved = yes or plan or runbook not in REGION_MOVES
    if not approved and interactive():
        confirm_by_name(name, f"{runbook.capitalize()} every environment of fleet {name}?")
        approved = True
    choose_api(step_view(output))
    run_prepared(
        FLOW,
        output,
        dict(
            fleet=fleet,
            runbook=runbook,
            plan=plan,
            approved=approved and runbook in REGION_MOVES and not plan,
            reason=reason,
            continue_on_error=continue_on_error,
            only=only,
        ),
    )


def _read_only(runbook: str, doc: str) -> None:
    def command(
        fleet: FleetOpt = "sandbox",
        continue_on_error: ContinueOpt = False,
        only: OnlyOpt = "",
        output: OutputOpt = Output.text,
    ) -> None:
        _run(runbook, fleet, output, continue_on_error=continue_on_error, only=only)

    command.__doc__ = doc
    app.command(name=runbook, epilog=RERUN[runbook])(command)


def _region_move(runbook: str, doc: str) -> None:
    def command(
        fleet: FleetOpt = "sandbox",
        plan: PlanOpt = False,
        yes: YesOpt = False,
        reason: ReasonOpt = "",
        continue_on_error: ContinueOpt = False,
        only: OnlyOpt = "",
        output: OutputOpt = Output.text,
    ) -> None:
        _run(
            runbook,
            fleet,
            output,
            plan=plan,
            yes=yes,
            reason=reason,
            continue_on_error=continue_on_error,
            only=only,
        )

    command.__doc__ = doc
    app.command(name=runbook, epilog=RERUN[runbook if runbook in RERUN else "failover"])(command)


_read_only(
    "readiness", "DR readiness of every environment: a row each, exit 1 if any is not ready."
)
_read_only("audit", "Audit every environment against the anti-patterns; exit 1 on a high finding.")
_region_move("failover", "Fail every environment over to its DR region, wave after wave.")
_region_move("failback", "Bring every environment home, wave after wave.")
_region_move("switchover", "A planned region move of every environment, wave after wave.")


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="fleet")
