"""``tierbook redrive``: move a DLQ's messages back to their source queue, with a progress bar."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from enum import StrEnum
from typing import Annotated, Any

import typer

from cli.common import ConfigOpt, Output, OutputOpt, YesOpt, err_console, prepare, run_flow
from cli.rerun import RERUN


class Mode(StrEnum):
    engine = "engine"
    native = "native"


def redrive(
    queue: Annotated[
        str,
        typer.Argument(help="The DLQ: a config queue name (orders), a queue URL or an ARN."),
    ] = "",
    config: ConfigOpt = "configs/sandbox.yaml",
    to: Annotated[
        str | None,
        typer.Option("--to", help="Destination queue (name, URL or ARN) instead of the source."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would move; change nothing.")
    ] = False,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            help="Move only matching messages (repeatable, all must match): attr.NAME=VALUE, "
            "body.PATH=VALUE (globs * ?), != ; age>5m, receives>=3.",
        ),
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option("--max", help="Move at most this many messages.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", help="At most this many messages/s.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Parallel workers (engine; default 4).")
    ] = None,
    archive: Annotated[
        str | None,
        typer.Option("--archive", help="s3://BUCKET/PREFIX: keep every moved message as JSON."),
    ] = None,
    mode: Annotated[
        Mode, typer.Option("--mode", help="engine (filters, archive, dry run) or native (SQS).")
    ] = Mode.engine,
    canary: Annotated[
        int, typer.Option("--canary", help="Move this many first; stop if they come back.")
    ] = 0,
    canary_wait: Annotated[
        float, typer.Option("--canary-wait", help="Seconds to watch the canary.")
    ] = 60.0,
    visibility_timeout: Annotated[
        int,
        typer.Option(
            "--visibility-timeout",
            help="Seconds a received message stays hidden; after a crash it is back this soon.",
        ),
    ] = 300,
    yes: YesOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Move messages from a dead-letter queue back to their source queue, safely."""
    prepare(config, output)
    from flows.redrive import listening

    flow = "flows.redrive:redrive"
    approved = _approval(config, dry_run=dry_run, yes=yes)
    bar = _ProgressBar() if output == Output.text and err_console.is_terminal else None
    with listening(bar) if bar else nullcontext(), bar or nullcontext():
        run_flow(
            flow,
            output,
            config=config,
            queue=queue,
            to=to,
            dry_run=dry_run,
            filters=list(filters or []),
            max_messages=max_messages,
            rate=rate,
            workers=workers,
            archive=archive,
            mode=mode.value,
            canary=canary,
            canary_wait_s=canary_wait,
            visibility_timeout_s=visibility_timeout,
            approved=approved,
        )


def _approval(config: str, *, dry_run: bool, yes: bool) -> bool:
    """Ask for a yes only where it is needed (a protected environment, not a dry run) and
    someone can answer; otherwise the flow refuses without --yes."""
    if yes or dry_run:
        return yes
    from configs import resolve_config

    try:
        protected = resolve_config(config).protected
    except Exception:  # the flow reports a bad config with its exit code
        return False
    if not protected or not sys.stdin.isatty():
        return False
    return typer.confirm(f"{config} is protected; redrive changes its queues. Go on?")


class _ProgressBar:
    """A rich progress bar fed by the flow's listener."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("redrive"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err_console,
        )
        self.task = self.progress.add_task("redrive", total=None, detail="")

    def __call__(self, counts: dict[str, Any], total: int | None) -> None:
        detail = (
            f"moved {counts.get('moved', 0)} · filtered {counts.get('filtered_out', 0)} · "
            f"failed {counts.get('failed', 0)}"
        )
        if counts.get("would_move"):
            detail = f"would move {counts['would_move']} · filtered {counts.get('filtered_out', 0)}"
        self.progress.update(
            self.task, completed=counts.get("received", 0), total=total, detail=detail
        )

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def redrive_demo(
    config: ConfigOpt = "configs/sandbox.yaml",
    queue: Annotated[str, typer.Option("--queue", help="Config queue to use.")] = "orders",
    count: Annotated[int, typer.Option("--count", help="Messages to dead-letter.")] = 30,
    output: OutputOpt = Output.text,
) -> None:
    """Sandbox demo: failing consumers fill a DLQ, a dry run looks, a redrive empties it."""
    flow = "flows.redrive_demo:redrive_demo"

    run_flow(flow, output, config=config, queue=queue, count=count)


def register(app: typer.Typer) -> None:
    app.command(name="redrive", epilog=RERUN["redrive"])(redrive)
    app.command(name="redrive-demo")(redrive_demo)
