"""``tierbook serve`` and ``tierbook server``: the Prefect UI path."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from cli.common import BAD_INPUT, console, err_console

ConfigsOpt = Annotated[
    list[str],
    typer.Option(
        "--config",
        "-c",
        help="An environment to serve: a config name (sandbox) or a YAML path. Repeat for "
        "more; the UI's forms offer exactly these.",
        envvar="TIERBOOK_CONFIG",
    ),
]


def serve(
    config: ConfigsOpt = ["configs/sandbox.yaml"],  # noqa: B006  (typer reads the default)
    limit: Annotated[int, typer.Option(help="Runs at most this many runbooks at once.")] = 4,
    fleet: Annotated[
        list[str],
        typer.Option(
            "--fleet",
            "-f",
            help="A fleet whose readiness scorecard to serve on its schedule: a fleet name "
            "(configs/fleets/) or a YAML path. Repeat for more.",
        ),
    ] = [],  # noqa: B006  (typer reads the default)
) -> None:
    """Serve every runbook deployment (and the drill schedules) against PREFECT_API_URL."""
    if not os.environ.get("PREFECT_API_URL"):
        err_console.print(
            "PREFECT_API_URL is not set: start a server (`tierbook server`) and export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api, then run `tierbook serve` again."
        )
        raise typer.Exit(BAD_INPUT)
    from prefect import serve as prefect_serve

    from deployments import build, build_fleets

    deployments = build(*config) + build_fleets(*fleet)
    console.print(
        f"serving {len(deployments)} runbook deployment(s) for {', '.join([*config, *fleet])}"
    )
    prefect_serve(*deployments, limit=limit, print_starting_message=True)


def server_env(host: str, port: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: its UI talks to the API this server serves, whatever
    PREFECT_API_URL the shell exported (another server's, say)."""
    env = dict(os.environ if base is None else base)
    browse = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    env.pop("PREFECT_API_URL", None)
    env.update(
        {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_HOST": host,
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_UI_API_URL": f"http://{browse}:{port}/api",
        }
    )
    return env


def server(
    port: Annotated[int, typer.Option(help="Port for the Prefect API and UI.")] = 4200,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Start a local Prefect server with the UI (foreground; Ctrl-C stops it)."""
    env = server_env(host, port)
    console.print(
        f"Prefect UI: http://{host}:{port}  ·  export PREFECT_API_URL={env['PREFECT_UI_API_URL']}"
    )
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd, env=env))
