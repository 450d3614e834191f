"""``tierbook``: the terminal way into every runbook.

Exit codes: 0 done, 1 runbook failed, 2 bad input or refused.
Each runbook's command lives in a module of its own under ``cli/`` and is registered here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOpt, Output, OutputOpt, run_flow
from cli.rerun import RERUN

app = typer.Typer(
    name="tierbook",
    help="Runbooks for the resilient three-tier AWS web app.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _before_any_command(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every retry, not only their count.")
    ] = False,
) -> None:
    """Prefect's home and logs under TIERBOOK_HOME, set before anything imports prefect; the
    Prefect API itself is chosen by a runbook command once its input is valid."""
    from cli import common
    from cli.prefect_env import settle_environment

    common.VERBOSE = verbose
    settle_environment()


@app.command(epilog=RERUN["preflight"])
def preflight(config: ConfigOpt = "configs/sandbox.yaml", output: OutputOpt = Output.text) -> None:
    """Check that the credentials reach the config's account and both regions answer."""
    flow = "flows.preflight:preflight"

    run_flow(flow, output, config=config)


def _register() -> None:
    from cli import (
        audit_cmd,
        automations_cmd,
        config_cmd,
        demo_cmd,
        deploy_cmd,
        destroy_cmd,
        drill_cmd,
        failover_cmd,
        fleet_cmd,
        iam_policy_cmd,
        lock_cmd,
        provision_cmd,
        redrive_cmd,
        sandbox_cmd,
        serve_cmd,
        snapshot_copy_cmd,
    )

    app.command()(demo_cmd.demo)
    app.command()(serve_cmd.serve)
    app.command()(serve_cmd.server)
    app.command()(automations_cmd.automations)
    app.add_typer(sandbox_cmd.app, name="sandbox")
    app.add_typer(config_cmd.app, name="config")
    redrive_cmd.register(app)
    provision_cmd.register(app)
    destroy_cmd.register(app)
    failover_cmd.register(app)
    fleet_cmd.register(app)
    deploy_cmd.register(app)
    audit_cmd.register(app)
    drill_cmd.register(app)
    iam_policy_cmd.register(app)
    lock_cmd.register(app)
    snapshot_copy_cmd.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
