"""``tierbook demo``: the whole story against the embedded AWS, start to finish.

Starts the sandbox in the background, validates and shows the sandbox config, runs the
runbooks one after the other in this process (one temporary Prefect API for all of them),
prints each timeline, and stops the sandbox — also when a step fails.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import BAD_INPUT, FAILED, console, err_console, print_report

SANDBOX_CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "sandbox.yaml")


def _chapters() -> list[tuple[str, Callable[..., dict[str, Any]], dict[str, Any]]]:
    """The demo's runbooks, in order: (title, flow, parameters)."""
    from flows.deploy import deploy
    from flows.failover_demo import failover_demo
    from flows.preflight import preflight
    from flows.provision import provision
    from flows.redrive_demo import redrive_demo

    return [
        ("Preflight: the right account, both regions answering", preflight, {}),
        ("Provision, plan only: what an empty account is missing", provision, {"plan": True}),
        ("Provision: the stack in us-east-1 and its warm standby in us-west-2", provision, {}),
        ("Provision again: converged, nothing to change", provision, {}),
        (
            "Deploy: build web 1.1.0 with CodeBuild, roll it out by digest, DR in step",
            deploy,
            {"service": "web", "tag": "1.1.0", "source": "codebuild", "approved": True},
        ),
        (
            "Redrive: fill a dead-letter queue, dry-run, move it back",
            redrive_demo,
            {"queue": "orders", "count": 30},
        ),
        (
            "Failover: promote the DR replica, scale us-west-2 up, flip DNS; RTO and RPO",
            failover_demo,
            {},
        ),
    ]


def demo(
    port: Annotated[int, typer.Option(help="Port for the sandbox.")] = 5055,
    keep: Annotated[bool, typer.Option(help="Leave the sandbox running afterwards.")] = False,
) -> None:
    """Run every runbook against the embedded AWS sandbox and print their timelines."""
    from cli import prefect_env
    from configs import ConfigError, load_config
    from sandbox import process

    try:
        cfg = load_config(SANDBOX_CONFIG)
    except ConfigError as exc:
        err_console.print(str(exc))
        raise typer.Exit(BAD_INPUT) from None
    running, started = process.start(port=port, timings="fast")
    os.environ["TIERBOOK_AWS_ENDPOINT_URL"] = running.endpoint
    console.rule(f"sandbox {'started' if started else 'already running'} at {running.endpoint}")
    console.print(
        f"config {SANDBOX_CONFIG}: valid — {cfg.stack}, account {cfg.account_id}, "
        f"{cfg.regions.primary} → DR {cfg.regions.dr}"
    )
    if "prefect" not in sys.modules:
        prefect_env.choose_api()
    prefect_env.wait_for_api()
    failed = False
    try:
        for title, flow, params in _chapters():
            console.rule(title)
            try:
                report = flow(config=SANDBOX_CONFIG, **params)
            except Exception as exc:
                timeline = getattr(exc, "timeline", None)
                if timeline is not None:
                    print_report(timeline.model_dump(mode="json"))
                err_console.print(f"[red]{title} failed:[/] {exc}")
                failed = True
                break
            print_report(report)
    finally:
        if started and not keep:
            process.stop()
            console.rule("sandbox stopped")
    if failed:
        raise typer.Exit(FAILED)
    console.print("[green]demo finished[/]")
