"""``tierbook iam-policy RUNBOOK``: the least-privilege IAM policy one runbook needs (JSON).

Pure: reads the config, calls no AWS API and starts no Prefect API. The actions are the
tested table of ``configs/permissions.py``; the scoping is ``configs/iam_policy.py``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import BAD_INPUT, ConfigOpt, err_console


def iam_policy(
    runbook: Annotated[str, typer.Argument(help="Runbook: provision, deploy, failover, ...")],
    config: ConfigOpt = "configs/sandbox.yaml",
    why: Annotated[
        bool,
        typer.Option("--why", help="Also say (on stderr) why each implicit action is needed."),
    ] = False,
) -> None:
    """Print the least-privilege IAM policy (JSON) RUNBOOK needs on the config's account."""
    from configs import ConfigError, resolve_config
    from configs.iam_policy import UnknownRunbook, implicit_reasons, policy_for

    try:
        cfg = resolve_config(config)
        policy = policy_for(cfg, runbook)
    except UnknownRunbook as exc:
        err_console.print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(BAD_INPUT) from None
    except ConfigError as exc:
        err_console.print(f"[red]{exc.source}: invalid[/]")
        for p in exc.problems:
            typer.echo(str(p), err=True)
        raise typer.Exit(BAD_INPUT) from None
    typer.echo(json.dumps(policy, indent=2))
    if why:
        for action, reason in sorted(implicit_reasons(runbook).items()):
            err_console.print(f"{action}: {reason}", soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.command(name="iam-policy")(iam_policy)
