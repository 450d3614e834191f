"""What every runbook command shares: options, running a flow, printing its report, exit codes.

Exit codes: 0 done, 1 runbook failed, 2 bad input or refused.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from configs.errors import BadInput, TierbookError

if TYPE_CHECKING:
    from cli.progress_view import LineView
    from configs.models import Config

OK, FAILED, BAD_INPUT, INTERRUPTED = 0, 1, 2, 130

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


VERBOSE = False  # ``tierbook -v``: every retry, not only their count


def checked_config(config: str) -> Config:
    """The config, or exit 2 naming the problem: before Prefect starts, before any AWS call."""
    from configs import ConfigError, resolve_config

    try:
        return resolve_config(config)
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(BAD_INPUT) from None


def load_flow(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """``"flows.provision:provision"`` imported (this is where Prefect is first imported)."""
    if callable(ref):
        return ref
    module, _, name = ref.partition(":")
    flow: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return flow


_prepared: dict[str, Config] = {}
_unreachable: list[str] = []  # what the probe found, when AWS did not answer it
PROBE_STEP = "check AWS answers"
API_STEP = "start a local Prefect API"
_api_step: list[float] = []  # when this process started its local API (shown as a step)


def step_view(output: Output) -> LineView | None:
    """Where progress lines go: stdout for text; stderr with ``-o json`` (stdout is JSON
    only) when a person watches it; nowhere when JSON goes to a program."""
    from cli.progress_view import LineView

    if output == Output.json and not err_console.is_terminal:
        return None
    return LineView(err_console if output == Output.json else console, verbose=VERBOSE)


def prepare(config: str, output: Output) -> Config:
    """Everything before the runbook's import, once per process: the config (exit 2), the
    Prefect API (a local one started in the background when none answers), and one quick
    question to AWS — does it answer at all, is it the config's account (exit 1 or 2, with
    the likely fix). Both show as steps while the runbook and Prefect load."""
    if config in _prepared:
        return _prepared[config]
    cfg = checked_config(config)
    view = step_view(output)
    choose_api(view)
    from tasks.core.reach import Unreachable, probe
    from tasks.core.retry import FAIL_FAST

    FAIL_FAST.clear()  # what an earlier probe of this process found holds for its own run only
    began = time.monotonic()
    if view is not None:
        view.started(PROBE_STEP)
    try:
        account = probe(cfg)
    except Unreachable as exc:
        # Not refused yet: the runbook still checks its input (exit 2, no AWS call needed);
        # its AWS calls then fail at once instead of retrying, and this says why.
        FAIL_FAST.set()
        _unreachable.append(str(exc))
        if view is not None:
            view.ended(PROBE_STEP, "failed", time.monotonic() - began, detail=str(exc))
    except Exception as exc:
        if view is not None:
            view.ended(PROBE_STEP, "failed", time.monotonic() - began, detail=type(exc).__name__)
        show(None, output, error=exc)
        raise typer.Exit(exit_code_for(exc)) from None
    else:
        if view is not None:
            who = f"account {account}" if account else "it answers"
            where = f" at {cfg.aws.endpoint_url}" if cfg.aws.endpoint_url else ""
            view.ended(PROBE_STEP, "passed", time.monotonic() - began, detail=who + where)
    _prepared[config] = cfg
    return cfg


def choose_api(view: LineView | None) -> bool:
    """The Prefect API, chosen before Prefect is imported: a local one started in the
    background when none answers (a step on ``view``, ended by :func:`api_ready`). True when
    it is that local one (no server: no work pool, no worker)."""
    from cli import prefect_env

    if "prefect" in sys.modules:
        return False
    started, warning = prefect_env.choose_api()
    if warning:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}")
    if started:
        _api_step.append(time.monotonic())
        if view is not None:
            view.started(API_STEP)
    return started


def api_ready(view: LineView | None) -> None:
    """Wait for the local API this process started, if any; its step ends when it answers."""
    from cli import prefect_env

    try:
        prefect_env.wait_for_api()
    except RuntimeError as exc:
        if view is not None and _api_step:
            view.ended(API_STEP, "failed", time.monotonic() - _api_step.pop(), detail=str(exc))
        raise
    if view is not None and _api_step:
        view.ended(API_STEP, "passed", time.monotonic() - _api_step.pop(), detail="ready")


def run_flow(flow_ref: str | Callable[..., Any], output: Output, /, **params: Any) -> None:
    """Run a runbook flow in this process, print its report, exit with the right code.

    In order, so that a refusal is quick and the first step soon: the config (exit 2), the
    Prefect API chosen and, when none answers, a local one started in the background; AWS
    asked once, fast, whether it answers at all (exit 1 with the likely fix); the runbook
    imported; then the flow, its progress printed as it goes."""
    with before_the_runbook():
        prepare(params["config"], output)
    run_prepared(flow_ref, output, params)


@contextmanager
def before_the_runbook() -> Iterator[None]:
    """Ctrl-C before the runbook has started (config, probe, Prefect loading): nothing was
    done, exit 130 — at once, or at the end of the block where a library swallowed the
    KeyboardInterrupt (see :func:`cli.interrupts.caught_before_start`)."""
    from cli.interrupts import caught_before_start

    with caught_before_start() as hit:
        yield
    if hit.is_set():
        err_console.print("[red]interrupted[/] before the runbook started: nothing done")
        raise typer.Exit(INTERRUPTED)


def run_prepared(
    flow_ref: str | Callable[..., Any], output: Output, params: dict[str, Any]
) -> None:
    """:func:`run_flow` once its input is checked and the Prefect API chosen."""
    from cli import prefect_env

    with before_the_runbook():  # a Ctrl-C a library swallowed while loading: exit here
        flow_fn = load_flow(flow_ref)
        prefect_env.quiet_console()
    try:
        with before_the_runbook():
            api_ready(step_view(output))
    except RuntimeError as exc:
        show(None, output, error=exc)
        raise typer.Exit(FAILED) from None
    from cli.interrupts import leave_now_if_interrupted

    with leave_now_if_interrupted():
        result = _run_watched(flow_fn, output, params)
        show(result, output)
    if isinstance(result, dict) and result.get("outcome") == "failed":
        _name_the_log(output)
        raise typer.Exit(FAILED)


def _run_watched(flow_fn: Callable[..., Any], output: Output, params: dict[str, Any]) -> Any:
    from cli.interrupts import first_stops_second_aborts
    from flows.progress import watch

    view = step_view(output)
    try:
        with watch(view) if view is not None else nullcontext(), first_stops_second_aborts():
            return flow_fn(**params)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        raise typer.Exit(INTERRUPTED) from None
    except Exception as exc:
        timeline = getattr(exc, "timeline", None)
        report = timeline.model_dump(mode="json") if timeline is not None else None
        cfg = _prepared.get(params.get("config", ""))
        hints: list[str] = []
        if report is not None and cfg is not None:
            from cli.fixes import fixes

            hints = report["fixes"] = fixes(report, cfg.regions.primary, cfg.regions.dr)
        if _unreachable:
            # Whatever the runbook made of it (a failure, or checks it could not run and so
            # refused on), the cause is that AWS did not answer: say so, with the fix.
            hints.append(f"AWS did not answer: {_unreachable[-1]}")
            if report is not None:
                report["fixes"] = hints
        show(report, output, error=exc, hints=hints)
        if not isinstance(exc, TierbookError):
            _name_the_log(output)
        raise typer.Exit(exit_code_for(exc)) from None


def _name_the_log(output: Output) -> None:
    from cli.prefect_env import log_path

    if log_path().exists() and output != Output.json:
        err_console.print(f"[dim]Prefect's log: {log_path()}[/]")


def show(
    report: dict[str, Any] | None,
    output: Output,
    *,
    error: BaseException | None = None,
    hints: list[str] | None = None,
) -> None:
    if output == Output.json:
        payload = dict(report or {})
        if error is not None:
            payload.setdefault("error", f"{type(error).__name__}: {error}")
            payload["exit_code"] = exit_code_for(error)
            if hints:
                payload["fixes"] = hints
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    if report:
        print_report(report)
    if error is not None:
        err_console.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        for fix in hints or []:
            err_console.print(f"  [bold]fix:[/] {escape(fix)}", soft_wrap=True)


def print_report(report: dict[str, Any]) -> None:
    changes = report.get("changes") or []
    if changes:
        print_changes(changes, planned=report.get("outcome") == "planned")
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
    if report.get("environments"):
        print_rows("environments", report["environments"])
    for key, value in (report.get("metrics") or {}).items():
        console.print(f"[bold]{key}[/]: {value}")
    for note in report.get("notes") or []:
        console.print(f"note: {note}")
    if report.get("report_path"):
        console.print(f"[dim]report: {report['report_path']}[/]")


def print_changes(changes: list[dict[str, Any]], *, planned: bool = True) -> None:
    """The plan (what would change) or, after a run, what changed."""
    from tasks.core.changes import Change

    title = "plan" if planned else "changed"
    table = Table(title=f"{title}: {len(changes)} change(s)")
    for col in ("resource", "region", "action", "change"):
        table.add_column(col, overflow="fold")
    for raw in changes:
        c = Change.model_validate(raw)
        table.add_row(f"{c.resource} {c.name}", c.region, c.action.value, c.summary())
    console.print(table)


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    """A list of like dicts (a fleet's environments) as one table, a column per key."""
    table = Table(title=title)
    for col in rows[0]:
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    console.print(table)
