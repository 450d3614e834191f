"""``tierbook sandbox start|stop|status``: the embedded AWS."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Run the embedded AWS sandbox (moto server on 127.0.0.1).", no_args_is_help=True
)


@app.command()
def status() -> None:
    """Say whether the sandbox runs, and where."""
    typer.echo("sandbox: not built yet")
    raise typer.Exit(2)
