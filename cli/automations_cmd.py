"""``tierbook automations``: the environment's Prefect automations, as code."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOpt, console


def automations(
    webhook: Annotated[
        str, typer.Option("--webhook", help="URL the notifications are POSTed to (JSON).")
    ],
    config: ConfigOpt = "configs/sandbox.yaml",
) -> None:
    """Create or update the alerts (readiness check failed, runbook failed, region move
    started/finished) on the Prefect server at PREFECT_API_URL; safe to run again."""
    from configs import resolve_config
    from deployments.automations import apply

    for name, outcome in apply(resolve_config(config), webhook).items():
        console.print(f"{outcome:9} {name}")
