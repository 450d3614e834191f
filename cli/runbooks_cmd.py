"""Commands for runbooks that are still being built; each moves to its own module when done."""

from __future__ import annotations

import typer

from cli.common import not_built

PENDING = {
    "iam-policy": "Print the least-privilege IAM policy one runbook needs.",
}


def register(app: typer.Typer) -> None:
    for name, help_text in PENDING.items():

        def command(_name: str = name) -> None:
            not_built(_name)

        app.command(
            name=name,
            help=f"{help_text} (not built yet)",
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        )(command)
