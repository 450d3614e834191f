"""``tierbook provision``: build or converge the stack; ``--plan`` only says what would change;
``--graph`` prints the steps and what each needs, without calling AWS."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import (
    ConfigOpt,
    Output,
    OutputOpt,
    PlanOpt,
    console,
    err_console,
    exit_code_for,
    run_flow,
)

if TYPE_CHECKING:
    from rich.tree import Tree

    from flows.graph import Graph
from cli.rerun import RERUN


class Region(StrEnum):
    primary = "primary"
    dr = "dr"
    both = "both"


def provision(
    config: ConfigOpt = "configs/sandbox.yaml",
    plan: PlanOpt = False,
    region: Annotated[
        Region, typer.Option("--region", help="primary, dr (the warm standby) or both.")
    ] = Region.both,
    sequential: Annotated[
        bool, typer.Option("--sequential", help="One step at a time (a baseline for timing).")
    ] = False,
    graph: Annotated[
        bool,
        typer.Option("--graph", help="Print the steps and what each needs; change nothing."),
    ] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Build or converge the stack in the primary region and the DR warm standby."""
    flow = "flows.provision:provision"

    if graph:
        show_graph(config, region.value, output)
        return
    run_flow(flow, output, config=config, plan=plan, region=region.value, sequential=sequential)


def show_graph(config: str, region: str, output: Output) -> None:
    """The provision graph for this config and these regions (no AWS call)."""
    from configs import resolve_config
    from configs.errors import TierbookError
    from flows.guards import roles_for
    from flows.provision_graph import build

    try:
        cfg = resolve_config(config)
        g = build(cfg, roles_for(region), dry_run=False)
    except TierbookError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(exit_code_for(exc)) from None
    if output == Output.json:
        typer.echo(json.dumps({"stack": cfg.stack, "nodes": g.describe()}, indent=2))
    else:
        console.print(graph_tree(g, f"provision {cfg.stack}: {len(g.nodes)} steps"))


def graph_tree(g: Graph, title: str) -> Tree:
    """Phases, then each phase's steps in the order they can start, with what each needs."""
    from rich.tree import Tree

    tree = Tree(f"[bold]{title}[/]")
    for phase, nodes in g.by_phase().items():
        if not nodes:
            continue
        branch = tree.add(f"[bold cyan]{phase}[/]")
        for n in nodes:
            needs = f" [dim]← {', '.join(n.needs)}[/]" if n.needs else ""
            branch.add(f"{n.key} [green]{n.step_name}[/]{needs}")
    return tree


def register(app: typer.Typer) -> None:
    app.command(name="provision", epilog=RERUN["provision"])(provision)
