"""``tierbook serve`` and ``tierbook server``: the Prefect UI path."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from cli.common import BAD_INPUT, ConfigOpt, console, err_console


def serve(
    config: ConfigOpt = "configs/sandbox.yaml",
    limit: Annotated[int, typer.Option(help="Runs at most this many runbooks at once.")] = 4,
) -> None:
    """Serve every runbook deployment (and the drill schedules) against PREFECT_API_URL."""
    if not os.environ.get("PREFECT_API_URL"):
        err_console.print(
            "PREFECT_API_URL is not set: start a server (`tierbook server`) and export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api, then run `tierbook serve` again."
        )
        raise typer.Exit(BAD_INPUT)
    from prefect import serve as prefect_serve

    from deployments import build

    deployments = build(config)
    console.print(f"serving {len(deployments)} runbook deployment(s) for {config}")
    prefect_serve(*deployments, limit=limit, print_starting_message=True)


def server(
    port: Annotated[int, typer.Option(help="Port for the Prefect API and UI.")] = 4200,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Start a local Prefect server with the UI (foreground; Ctrl-C stops it)."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    console.print(
        f"Prefect UI: http://{host}:{port}  ·  export PREFECT_API_URL=http://{host}:{port}/api"
    )
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd, env=env))
