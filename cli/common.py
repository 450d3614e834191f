"""What every runbook command shares: options, running a flow, printing its report, exit codes.

Exit codes: 0 done, 1 runbook failed, 2 bad input or refused.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

OK, FAILED, BAD_INPUT = 0, 1, 2

console = Console()
err_console = Console(stderr=True)


class Output(StrEnum):
    text = "text"
    json = "json"


DEFAULT_CONFIG = os.environ.get("TIERBOOK_CONFIG", "configs/sandbox.yaml")

ConfigOpt = Annotated[
    str,
    typer.Option(
        "--config",
        "-c",
        help="Environment config: a YAML path or an environment name.",
        envvar="TIERBOOK_CONFIG",
    ),
]
PlanOpt = Annotated[bool, typer.Option("--plan", help="Print the plan and change nothing.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Approve without asking (for scripts).")]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="text for people, json for machines.")
]


def exit_code_for(exc: BaseException) -> int:
    from prefect.exceptions import ParameterTypeError

    from configs.errors import BadInput, TierbookError

    if isinstance(exc, (BadInput, ParameterTypeError)):  # a value the flow's types refuse
        return BAD_INPUT
    if isinstance(exc, TierbookError):
        return exc.exit_code
    return FAILED


def interactive() -> bool:
    return sys.stdin.isatty()


def confirm_by_name(stack: str, question: str) -> None:
    """On a terminal: the environment's name typed back, or exit 2 with nothing done."""
    typed = typer.prompt(f"{question} Type the environment's name ({stack}) to go on")
    if typed.strip() != stack:
        err_console.print(f"[red]typed {typed!r}, not {stack!r}: nothing done[/]")
        raise typer.Exit(BAD_INPUT)


def run_flow(flow_fn: Callable[..., Any], output: Output, /, **params: Any) -> None:
    """Run a runbook flow in this process, print its report, exit with the right code."""
    from cli.prefect_env import quiet_console

    quiet_console()
    try:
        result = flow_fn(**params)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        raise typer.Exit(FAILED) from None
    except Exception as exc:
        timeline = getattr(exc, "timeline", None)
        report = timeline.model_dump(mode="json") if timeline is not None else None
        show(report, output, error=exc)
        raise typer.Exit(exit_code_for(exc)) from None
    show(result, output)
    if isinstance(result, dict) and result.get("outcome") == "failed":
        raise typer.Exit(FAILED)


def show(
    report: dict[str, Any] | None, output: Output, *, error: BaseException | None = None
) -> None:
    if output == Output.json:
        payload = dict(report or {})
        if error is not None:
            payload.setdefault("error", f"{type(error).__name__}: {error}")
            payload["exit_code"] = exit_code_for(error)
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    if report:
        print_report(report)
    if error is not None:
        err_console.print(f"[red]error:[/] {error}")


def print_report(report: dict[str, Any]) -> None:
    changes = report.get("changes") or []
    if changes:
        print_changes(changes)
    steps = sorted(report.get("steps") or [], key=lambda s: (s["start"], s["end"]))
    table = Table(
        title=f"{report.get('runbook')} · {report.get('environment')} · {report.get('outcome')}"
    )
    for col in ("step", "start", "seconds", "outcome", "detail"):
        table.add_column(col, overflow="fold")
    from datetime import datetime

    for s in steps:
        start, end = datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])
        colour = {"failed": "red", "skipped": "yellow", "changed": "green", "planned": "cyan"}.get(
            s["outcome"], ""
        )
        table.add_row(
            s["step"],
            start.strftime("%H:%M:%S"),
            f"{(end - start).total_seconds():.1f}",
            f"[{colour}]{s['outcome']}[/]" if colour else s["outcome"],
            s.get("detail", ""),
        )
    console.print(table)
    for key, value in (report.get("metrics") or {}).items():
        console.print(f"[bold]{key}[/]: {value}")
    for note in report.get("notes") or []:
        console.print(f"note: {note}")
    if report.get("report_path"):
        console.print(f"[dim]report: {report['report_path']}[/]")


def print_changes(changes: list[dict[str, Any]]) -> None:
    from tasks.core.changes import Change

    table = Table(title=f"plan: {len(changes)} change(s)")
    for col in ("resource", "region", "action", "change"):
        table.add_column(col, overflow="fold")
    for raw in changes:
        c = Change.model_validate(raw)
        table.add_row(f"{c.resource} {c.name}", c.region, c.action.value, c.summary())
    console.print(table)
