"""``tierbook deploy`` and ``tierbook rollback``: roll a service onto an image, or back."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from cli.common import (
    BAD_INPUT,
    ConfigOpt,
    Output,
    OutputOpt,
    PlanOpt,
    YesOpt,
    err_console,
    run_flow,
)
from cli.rerun import RERUN


class ServiceChoice(StrEnum):
    web = "web"
    worker = "worker"
    all = "all"


class Source(StrEnum):
    pushed = "pushed"
    codebuild = "codebuild"
    docker = "docker"


ServiceOpt = Annotated[
    ServiceChoice, typer.Option("--service", "-s", help="web, worker or all (web first).")
]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", help="Seconds to wait for a rollout before rolling back."),
]


def parse_pairs(values: list[str] | None, option: str) -> dict[str, str | None]:
    """``NAME=VALUE`` sets, a bare ``NAME`` removes."""
    out: dict[str, str | None] = {}
    for raw in values or []:
        name, sep, value = raw.partition("=")
        if not name or not name.replace("_", "").isalnum():
            err_console.print(f"[red]error:[/] {option} {raw!r}: expected NAME=VALUE or NAME")
            raise typer.Exit(BAD_INPUT)
        out[name] = value if sep else None
    return out


def deploy(
    tag: Annotated[str, typer.Option("--tag", "-t", help="Image tag to build or to take.")],
    service: ServiceOpt = ServiceChoice.web,
    source: Annotated[
        Source,
        typer.Option("--source", help="pushed (CI pushed the tag), codebuild, or docker (local)."),
    ] = Source.pushed,
    context: Annotated[
        str, typer.Option("--context", help="Build context for --source docker.")
    ] = ".",
    build_source: Annotated[
        str | None,
        typer.Option("--build-source", help="CodeBuild source override: s3://… or a repo URL."),
    ] = None,
    build_version: Annotated[
        str | None, typer.Option("--build-version", help="Branch, tag or commit to build.")
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="NAME=VALUE to set, NAME to remove (repeatable)."),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option("--secret", help="NAME=ARN to set, NAME to remove (repeatable)."),
    ] = None,
    max_findings: Annotated[
        int | None,
        typer.Option("--max-findings", help="Refuse an image with more critical+high findings."),
    ] = None,
    smoke_url: Annotated[
        str | None, typer.Option("--smoke-url", help="GET this URL after the rollout (2xx/3xx).")
    ] = None,
    timeout: TimeoutOpt = 900.0,
    dr: Annotated[
        bool, typer.Option("--dr/--no-dr", help="Keep the DR task definition in step.")
    ] = True,
    config: ConfigOpt = "configs/sandbox.yaml",
    plan: PlanOpt = False,
    yes: YesOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Roll a service onto an image (by digest), verify it, roll back on failure."""
    flow = "flows.deploy:deploy"

    run_flow(
        flow,
        output,
        config=config,
        service=service.value,
        tag=tag,
        source=source.value,
        context=context,
        build_source=build_source,
        build_version=build_version,
        environment=parse_pairs(env, "--env"),
        secrets=parse_pairs(secret, "--secret"),
        max_findings=max_findings,
        smoke_url=smoke_url,
        timeout_s=timeout,
        dr=dr,
        plan=plan,
        approved=plan or _approval(config, yes, "deploy changes its services"),
    )


def rollback(
    service: ServiceOpt = ServiceChoice.web,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Revision number or task-definition ARN (default: previous)."),
    ] = None,
    timeout: TimeoutOpt = 900.0,
    config: ConfigOpt = "configs/sandbox.yaml",
    yes: YesOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Return a service to its previous task-definition revision (or --to) and verify it."""
    flow = "flows.deploy:rollback"

    run_flow(
        flow,
        output,
        config=config,
        service=service.value,
        to=to,
        timeout_s=timeout,
        approved=_approval(config, yes, "rollback changes its services"),
    )


def _approval(config: str, yes: bool, what: str) -> bool:
    """A yes where the environment is protected: --yes, or a prompt on a terminal."""
    if yes:
        return True
    from configs import resolve_config

    try:
        protected = resolve_config(config).protected
    except Exception:  # the flow reports a bad config with its exit code
        return False
    if not protected or not sys.stdin.isatty():
        return False
    return typer.confirm(f"{config} is protected; {what}. Go on?")


def register(app: typer.Typer) -> None:
    app.command(name="deploy", epilog=RERUN["deploy"])(deploy)
    app.command(name="rollback", epilog=RERUN["rollback"])(rollback)
