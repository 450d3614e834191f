"""``tierbook audit``: check a live stack against the seeds' anti-patterns (exit 1 on high)."""

from __future__ import annotations

import typer

from cli.common import ConfigOpt, Output, OutputOpt, run_flow
from cli.rerun import RERUN


def audit(config: ConfigOpt = "configs/sandbox.yaml", output: OutputOpt = Output.text) -> None:
    """Check the live stack against the seeds' anti-patterns; exit 1 on a high-severity finding."""
    flow = "flows.audit:audit"

    run_flow(flow, output, config=config)


def register(app: typer.Typer) -> None:
    app.command(name="audit", epilog=RERUN["audit"])(audit)
