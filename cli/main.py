"""``tierbook``: the terminal way into every runbook.

Exit codes: 0 done, 1 runbook failed, 2 bad input or refused.
Each runbook's command lives in a module of its own under ``cli/`` and is registered here.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tierbook",
    help="Runbooks for the resilient three-tier AWS web app.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from cli import sandbox_cmd

    app.add_typer(sandbox_cmd.app, name="sandbox")


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
