"""``tierbook snapshot-copy``: the routine copy of a backup-and-restore posture, now."""

from __future__ import annotations

import typer

from cli.common import ConfigOpt, Output, OutputOpt, PlanOpt, run_flow
from cli.rerun import RERUN


def snapshot_copy(
    config: ConfigOpt = "configs/sandbox.yaml",
    plan: PlanOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Copy a fresh snapshot of the primary's database to DR (dr.posture backup_restore)."""
    run_flow("flows.snapshot_copy:snapshot_copy", output, config=config, plan=plan)


def register(app: typer.Typer) -> None:
    app.command(name="snapshot-copy", epilog=RERUN["snapshot-copy"])(snapshot_copy)
