"""``tierbook lock``: see the environment's run locks, and release one whose run is gone.

``list`` reads both regions' lock tables; ``release`` is the operator's override of a lock
another run holds, refused without ``--reason`` and recorded (who, why) in the table.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.common import (
    BAD_INPUT,
    ConfigOpt,
    Output,
    OutputOpt,
    YesOpt,
    console,
    err_console,
    exit_code_for,
    interactive,
)

app = typer.Typer(help="Run locks: list them, release one whose run is gone.", no_args_is_help=True)


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[red]error:[/] {exc}")
    return typer.Exit(exit_code_for(exc))


def _row(view: Any, now: float) -> dict[str, Any]:
    left = view.lease_left(now)
    return {
        "name": view.name,
        "region": view.region,
        "holder": view.holder,
        "host": view.host,
        "pid": view.pid,
        "run": view.run or None,
        "purpose": view.purpose,
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(view.since or 0)),
        "lease_left_s": round(max(left, 0.0), 1),
        "lapsed": left <= 0,
    }


@app.command("list")
def list_(config: ConfigOpt = "configs/sandbox.yaml", output: OutputOpt = Output.text) -> None:
    """Every lock of the environment: name, holder, host, run, since, lease left or lapsed."""
    from configs import resolve_config
    from tasks.core.locks import list_locks

    try:
        listing = list_locks(resolve_config(config))
    except Exception as exc:  # every failure is reported with its exit code
        raise _fail(exc) from None
    now = time.time()
    rows = [_row(v, now) for v in listing.locks]
    if output == Output.json:
        typer.echo(json.dumps({"locks": rows, "unreachable": listing.unreachable}, indent=2))
        return
    for region, why in listing.unreachable.items():
        err_console.print(f"[yellow]warning:[/] could not read the locks in {region}: {why}")
    if not rows:
        console.print("no locks held")
        return
    table = Table()
    table.add_column("name", no_wrap=True)
    for column in ("region", "holder", "run", "since (UTC)"):
        table.add_column(column)
    table.add_column("lease", no_wrap=True)
    for r in rows:
        lease = "[red]lapsed[/]" if r["lapsed"] else f"{r['lease_left_s']:.0f}s left"
        holder = f"{r['holder']}@{r['host']} pid {r['pid']}"
        table.add_row(r["name"], r["region"], holder, r["run"] or "-", r["since"], lease)
    console.print(table)


@app.command()
def release(
    name: Annotated[str, typer.Argument(help="The lock's name, as `tierbook lock list` shows it.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (recorded with your name in the lock table).")
    ] = "",
    config: ConfigOpt = "configs/sandbox.yaml",
    yes: YesOpt = False,
) -> None:
    """Release a lock whatever run holds it; for a run that is gone. Recorded: who and why."""
    from configs import resolve_config
    from tasks.core.locks import list_locks, lock_key, release_lock

    if not reason.strip():
        err_console.print("[red]refused:[/] --reason TEXT is required; it is recorded")
        raise typer.Exit(BAD_INPUT)
    try:
        cfg = resolve_config(config)
        if not yes:
            lock_id = lock_key(cfg, name)
            seen = [v for v in list_locks(cfg).locks if v.lock_id == lock_id]
            if seen:
                err_console.print(seen[0].describe(time.time()))
            if not interactive():
                err_console.print("[red]refused:[/] releasing someone's lock needs --yes")
                raise typer.Exit(BAD_INPUT)
            if not typer.confirm(f"Release {name}?"):
                raise typer.Exit(BAD_INPUT)
        view = release_lock(cfg, name, reason=reason)
    except typer.Exit:
        raise
    except Exception as exc:  # every failure is reported with its exit code
        raise _fail(exc) from None
    console.print(
        f"released {view.lock_id} (was held by {view.holder} on {view.host}, pid {view.pid})"
    )


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="lock")
