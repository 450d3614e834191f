"""``tierbook config validate FILE``: the resolved config, or every problem with its field."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
import yaml

from cli.common import BAD_INPUT, Output, OutputOpt, console, err_console

app = typer.Typer(help="Check and show environment configs.", no_args_is_help=True)


def resolved(cfg: Any) -> dict[str, Any]:
    from configs import names_for, subnet_plan

    out: dict[str, Any] = cfg.model_dump(mode="json")
    derived: dict[str, Any] = {}
    for role in ("primary", "dr"):
        n = names_for(cfg, role)
        svcs = [name for name, _ in cfg.services.items()]
        derived[role] = {
            "region": n.region,
            "vpc": n.vpc,
            "subnets": {
                f"{t}/{az}": cidr
                for (t, az), cidr in subnet_plan(getattr(cfg.network, role)).items()
            },
            "cluster": n.cluster,
            "services": {s: n.service(s) for s in svcs},
            "task_families": {s: n.task_family(s) for s in svcs},
            "repositories": {s: n.repository(s) for s in svcs},
            "alb": n.alb,
            "target_group": n.target_group,
            "database": n.db_cluster
            if cfg.database.engine == "aurora-postgresql"
            else n.db_instance,
            "cache": n.cache if cfg.cache else None,
            "queues": {
                q.name: {"queue": n.queue(q.name, fifo=q.fifo), "dlq": n.dlq(q.name, fifo=q.fifo)}
                for q in cfg.queues
            },
            "asset_bucket": n.asset_bucket,
            "log_bucket": n.log_bucket,
            "web_acl": n.web_acl,
            "lock_table": n.lock_table,
            "health_check": n.health_check_reference,
            "record_set_id": n.record_set_id,
        }
    out["derived_names"] = derived
    return out


@app.command()
def validate(
    file: Annotated[str, typer.Argument(help="YAML file (or environment name) to check.")],
    output: OutputOpt = Output.text,
) -> None:
    """Validate FILE; print the resolved config with derived names, or every problem."""
    from configs import ConfigError, config_path, load_config

    try:
        cfg = load_config(config_path(file))
    except ConfigError as exc:
        if output == Output.json:
            typer.echo(
                json.dumps(
                    {
                        "valid": False,
                        "problems": [{"field": p.path, "message": p.message} for p in exc.problems],
                    },
                    indent=2,
                )
            )
        else:
            err_console.print(f"[red]{exc.source}: invalid[/]")
            for p in exc.problems:
                typer.echo(str(p), err=True)
        raise typer.Exit(BAD_INPUT) from None
    data = resolved(cfg)
    if output == Output.json:
        typer.echo(json.dumps({"valid": True, "config": data}, indent=2))
    else:
        console.print(f"[green]{file}: valid[/] ({cfg.stack}, account {cfg.account_id})")
        typer.echo(yaml.safe_dump(data, sort_keys=False))
