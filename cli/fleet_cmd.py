"""``tierbook fleet readiness|audit|failover|failback|switchover -f FLEET``: one runbook over
every environment of a fleet file, wave after wave, with one approval and one report.

Runs in this process like the other commands (each environment's run a child of the fleet's,
in parallel within a wave), or, with ``--work-pool`` against a Prefect server, on the pool's
workers; approval is ``--yes`` or the fleet's name typed at a terminal.
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
PoolOpt = Annotated[
    str,
    typer.Option(
        "--work-pool",
        help="Dispatch each environment's run to its deployment on this Prefect work pool "
        "(prefect deploy --all); default: the fleet file's work_pool. Without a Prefect "
        "server, the environments run in this process.",
    ),
]
FLOW = "flows.fleet:fleet"
REGION_MOVES = ("failover", "failback", "switchover")


def _checked(fleet: str, only: str, work_pool: str) -> tuple[str, str]:
    """The fleet's name and its work pool, or exit 2 naming the problem: before Prefect
    starts, before any AWS call (each environment's run then checks its own account)."""
    import re

    from configs.errors import ConfigError
    from configs.fleet import POOL, load_fleet

    if work_pool and not re.match(POOL, work_pool):
        err_console.print(f"[red]error:[/] --work-pool: {escape(work_pool)!r} is not a pool name")
        raise typer.Exit(BAD_INPUT)
    try:
        loaded = load_fleet(fleet)
        if only:
            loaded.only(only)
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(BAD_INPUT) from None
    return loaded.name, work_pool or loaded.work_pool or ""


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
    work_pool: str = "",
) -> None:
    name, pool = _checked(fleet, only, work_pool)
    approved = yes or plan or runbook not in REGION_MOVES
    if not approved and interactive():
        confirm_by_name(name, f"{runbook.capitalize()} every environment of fleet {name}?")
        approved = True
    if choose_api(step_view(output)) and pool:
        err_console.print(
            f"[yellow]warning:[/] no Prefect server answers: work pool {escape(pool)} "
            "unreachable, the environments run in this process."
        )
        pool = ""
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
            work_pool=pool,
        ),
    )


def _read_only(runbook: str, doc: str) -> None:
    def command(
        fleet: FleetOpt = "sandbox",
        continue_on_error: ContinueOpt = False,
        only: OnlyOpt = "",
        work_pool: PoolOpt = "",
        output: OutputOpt = Output.text,
    ) -> None:
        _run(
            runbook,
            fleet,
            output,
            continue_on_error=continue_on_error,
            only=only,
            work_pool=work_pool,
        )

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
        work_pool: PoolOpt = "",
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
            work_pool=work_pool,
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
