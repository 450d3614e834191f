"""``tierbook sandbox start|stop|status``: the embedded AWS in the background."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import BAD_INPUT, FAILED, Output, OutputOpt, console, err_console

app = typer.Typer(
    help="Run the embedded AWS sandbox (moto server on 127.0.0.1).", no_args_is_help=True
)


@app.command()
def start(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5055,
    host: Annotated[str, typer.Option(help="Address to bind (keep it on loopback).")] = "127.0.0.1",
    timings: Annotated[str, typer.Option(help="default | fast | realistic")] = "default",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="A timing, KEY=SECONDS (repeatable).")
    ] = None,
    output: OutputOpt = Output.text,
) -> None:
    """Start the sandbox in the background and print its endpoint."""
    from sandbox import process

    if timings not in ("default", "fast", "realistic"):
        err_console.print(f"unknown timings preset {timings!r}: use default, fast or realistic")
        raise typer.Exit(BAD_INPUT)
    try:
        running, started = process.start(host, port, timings, set_ or [])
    except RuntimeError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(FAILED) from None
    if output == Output.json:
        typer.echo(
            json.dumps({"endpoint": running.endpoint, "pid": running.pid, "started": started})
        )
    else:
        console.print(
            f"sandbox {'started' if started else 'already running'}: {running.endpoint} (pid {running.pid})"
        )


@app.command()
def stop() -> None:
    """Stop the background sandbox; no process is left behind."""
    from sandbox import process

    stopped = process.stop()
    console.print(
        f"sandbox stopped (was pid {stopped.pid})" if stopped else "sandbox was not running"
    )


@app.command()
def status(output: OutputOpt = Output.text) -> None:
    """Say whether the sandbox runs, and where (exit 0 running, 1 not)."""
    from sandbox import process

    running = process.status()
    if output == Output.json:
        typer.echo(
            json.dumps(
                {"running": bool(running), "endpoint": running.endpoint if running else None}
            )
        )
    else:
        console.print(
            f"sandbox running: {running.endpoint} (pid {running.pid})"
            if running
            else "sandbox not running"
        )
    if running is None:
        raise typer.Exit(FAILED)
