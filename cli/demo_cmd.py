"""``tierbook demo``: the whole story against the embedded AWS, start to finish.

Starts the sandbox in the background, validates and shows the sandbox config, runs the
runbooks one after the other in this process (one temporary Prefect API for all of them),
prints each timeline, and stops the sandbox — also when a step fails.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.common import BAD_INPUT, FAILED, console, err_console, load_flow, print_report
from cli.progress_view import LineView

DEMO_POLL_SCALE = "0.1"
SANDBOX_CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "sandbox.yaml")


Chapter = tuple[str, str, dict[str, Any]]


def _chapters() -> list[Chapter]:
    """The demo's runbooks, in order: (title, flow, parameters)."""
    return [
        ("Preflight: the right account, both regions answering", "flows.preflight:preflight", {}),
        (
            "Provision, plan only: what an empty account is missing",
            "flows.provision:provision",
            {"plan": True},
        ),
        (
            "Provision: the stack in us-east-1 and its warm standby in us-west-2",
            "flows.provision:provision",
            {},
        ),
        ("Provision again: converged, nothing to change", "flows.provision:provision", {}),
        (
            "Deploy: build web 1.1.0 with CodeBuild, roll it out by digest, DR in step",
            "flows.deploy:deploy",
            {"service": "web", "tag": "1.1.0", "source": "codebuild", "approved": True},
        ),
        (
            "Redrive: fill a dead-letter queue, dry-run, move it back",
            "flows.redrive_demo:redrive_demo",
            {"queue": "orders", "count": 30},
        ),
        ("Audit: the live stack against the seed's anti-patterns", "flows.audit:audit", {}),
        (
            "Readiness drill: could we fail over right now?",
            "flows.failover_demo:readiness_demo",
            {},
        ),
        (
            "Backup drill: restore the database's backup in us-west-2, check it, clean up",
            "flows.drills:backup_drill",
            {},
        ),
        (
            "Game day: lose an AZ (database, cache, tasks) and time the recovery",
            "flows.drills:game_day",
            {"yes": True},
        ),
        (
            "Failover: promote the DR replica, scale us-west-2 up, flip DNS; RTO and RPO",
            "flows.failover_demo:failover_demo",
            {},
        ),
        (
            "Failback: replicate back, switch over, DR to warm standby",
            "flows.failover:failback",
            {"approved": True, "reason": "demo"},
        ),
        (
            "Rollback: web back to its previous revision, verified",
            "flows.deploy:rollback",
            {"service": "web", "approved": True},
        ),
        (
            "Destroy: every resource of the stack, both regions",
            "flows.destroy:destroy",
            {"yes": True, "skip_final_snapshot": True, "disable_deletion_protection": True},
        ),
    ]


KEY_FIGURES = (
    "changes",
    "rto_seconds",
    "rpo_seconds",
    "moved",
    "dry_run_would_move",
    "readiness",
    "findings",
    "recovery_seconds",
    "restore_seconds",
    "tag",
)


def key_figures(report: dict[str, Any]) -> str:
    metrics = report.get("metrics") or {}
    shown = [f"{k}={metrics[k]}" for k in KEY_FIGURES if k in metrics]
    if not shown:
        shown = [f"{k}={v}" for k, v in list(metrics.items())[:3]]
    return ", ".join(shown) or f"{len(report.get('steps') or [])} steps"


def summary(rows: list[tuple[str, str, float, str]]) -> Table:
    table = Table(title="the demo, runbook by runbook")
    for col in ("runbook", "outcome", "seconds", "key figures"):
        table.add_column(col, overflow="fold")
    for name, outcome, seconds, figures in rows:
        table.add_row(name, outcome, f"{seconds:.1f}", figures)
    return table


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
    os.environ.setdefault("TIERBOOK_POLL_SCALE", DEMO_POLL_SCALE)
    console.print(
        "timings: sandbox preset 'fast' (AWS's minutes take ~0.5 s), polls scaled by "
        f"TIERBOOK_POLL_SCALE={os.environ['TIERBOOK_POLL_SCALE']}: the seconds below are the "
        "sandbox's, not AWS's"
    )
    if "prefect" not in sys.modules:
        _, warning = prefect_env.choose_api()
        if warning:
            console.print(f"[yellow]warning:[/] {warning}")
    failed = False
    rows: list[tuple[str, str, float, str]] = []
    view = LineView(console)
    try:
        from flows.progress import watch

        prefect_env.wait_for_api()
        for title, ref, params in _chapters():
            console.rule(title)
            flow = load_flow(ref)
            started_at = time.monotonic()
            try:
                with watch(view):
                    report = flow(config=SANDBOX_CONFIG, **params)
            except Exception as exc:
                timeline = getattr(exc, "timeline", None)
                if timeline is not None:
                    print_report(timeline.model_dump(mode="json"))
                err_console.print(f"[red]{title} failed:[/] {exc}")
                rows.append((ref.split(":")[1], "failed", time.monotonic() - started_at, str(exc)))
                failed = True
                break
            print_report(report)
            rows.append(
                (
                    str(report.get("runbook") or ref.split(":")[1]),
                    str(report.get("outcome")),
                    time.monotonic() - started_at,
                    key_figures(report),
                )
            )
    finally:
        if started and not keep:
            process.stop()
            console.rule("sandbox stopped")
        if rows:
            console.print(summary(rows))
            console.print(f"total: {sum(r[2] for r in rows):.0f}s")
    if failed:
        raise typer.Exit(FAILED)
    console.print("[green]demo finished[/]")
