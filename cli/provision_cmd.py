"""``tierbook provision``: build or converge the stack; ``--plan`` only says what would change."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cli.common import ConfigOpt, Output, OutputOpt, PlanOpt, run_flow
from cli.rerun import RERUN


class Region(StrEnum):
    primary = "primary"
    dr = "dr"
    both = "both"


def provision(
    config: ConfigOpt = "configs/sandbox.yaml",
    plan: PlanOpt = False,
    region: Annotated[
        Region, typer.Option("--region", help="primary, dr (the warm standby) or both.")
    ] = Region.both,
    sequential: Annotated[
        bool, typer.Option("--sequential", help="One step at a time (a baseline for timing).")
    ] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Build or converge the stack in the primary region and the DR warm standby."""
    flow = "flows.provision:provision"

    run_flow(flow, output, config=config, plan=plan, region=region.value, sequential=sequential)


def register(app: typer.Typer) -> None:
    app.command(name="provision", epilog=RERUN["provision"])(provision)
