"""``tierbook destroy``: tear the stack down; ``--plan`` only lists what would be deleted."""

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
    confirm_by_name,
    err_console,
    interactive,
    run_flow,
)
from cli.provision_cmd import Region
from cli.rerun import RERUN


def _ask(config: str, region: Region) -> bool:
    """Ask on a terminal: True to go on. A protected environment is not asked about: the
    runbook refuses it whatever the answer."""
    from configs import resolve_config

    cfg = resolve_config(config)
    if cfg.protected:
        return False
    where = {"both": "both regions", "primary": cfg.regions.primary, "dr": cfg.regions.dr}
    confirm_by_name(
        cfg.stack,
        f"Delete every resource of {cfg.stack} (account {cfg.account_id}) in "
        f"{where[region.value]}? (`--plan` lists them.)",
    )
    return True


def destroy(
    config: ConfigOpt = "configs/sandbox.yaml",
    region: Annotated[
        Region, typer.Option("--region", help="primary, dr (the warm standby) or both.")
    ] = Region.both,
    plan: PlanOpt = False,
    yes: YesOpt = False,
    skip_final_snapshot: Annotated[
        bool,
        typer.Option("--skip-final-snapshot", help="Delete the database without a snapshot."),
    ] = False,
    disable_deletion_protection: Annotated[
        bool,
        typer.Option(
            "--disable-deletion-protection",
            help="Turn deletion protection off on the database and load balancer first.",
        ),
    ] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Delete every resource of the stack (never a protected environment)."""
    from configs.errors import BadInput

    flow = "flows.destroy:destroy"

    if not (yes or plan) and interactive():
        try:
            yes = _ask(config, region)
        except BadInput as exc:
            err_console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(BAD_INPUT) from None
    run_flow(
        flow,
        output,
        config=config,
        plan=plan,
        region=region.value,
        yes=yes,
        skip_final_snapshot=skip_final_snapshot,
        disable_deletion_protection=disable_deletion_protection,
    )


def register(app: typer.Typer) -> None:
    app.command(name="destroy", epilog=RERUN["destroy"])(destroy)
