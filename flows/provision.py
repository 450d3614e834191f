"""Provision: build the stack, or converge it back to its config, in both regions.

The runbook, as it would read on a wiki:

0. Check the credentials reach the config's account (and, where the config manages it, that
   the public hosted zone exists).
1. **Network** (both regions at once): VPC + internet gateway → subnets, security groups and
   flow logs → NAT gateways and route tables → VPC endpoints.
2. **Data**: KMS keys and subnet groups → the primary database and the cache → wait until the
   database is available → read replicas, the cross-region DR replica, the master secret
   replicated to DR.
3. **App** (both regions at once): roles, repositories, log groups, cluster, queues, buckets,
   certificate and target group → load balancer and task definitions → listeners, web ACL and
   services → autoscaling and alarms. DR runs at its warm capacity against its replica.
4. **Edge and DNS**: CloudFront web ACL → distribution → asset bucket policy; health check on
   the primary load balancer → failover records.

The phases are a reading order, not barriers: the runbook is a graph of steps
(``flows/provision_graph.py``), and each step starts as soon as the steps whose outputs it needs
have finished, both regions at once on Prefect's thread pool. ``plan=True`` runs every step as a
dry run: the changes become the plan and no mutating call is made. ``sequential=True`` runs one
step at a time in the same order (the benchmark's baseline). A failing step stops only the steps
that need it; the run then fails naming it.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow

from configs import resolve_config
from configs.models import Config
from flows.graph import execute
from flows.guards import open_run, refuse_if_failed_over, roles_for
from flows.provision_graph import build
from flows.report import publish_plan, runbook

Regions = Literal["primary", "dr", "both"]


@flow(name="provision", persist_result=False)
def provision(
    config: str = "sandbox",
    plan: bool = False,
    region: Literal["both", "primary", "dr"] = "both",
    sequential: bool = False,
) -> dict[str, Any]:
    """Build or converge the stack; with ``plan``, only say what would change.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        plan: Only list what would change (a table artifact); change nothing. Untick to build.
        region: Which region to build: both, primary, or dr (the warm standby).
        sequential: One step at a time instead of in parallel (slower; easier to follow).
    """
    cfg: Config = resolve_config(config)
    roles = roles_for(region)
    with runbook("provision", cfg.stack) as tl:
        open_run(tl, cfg, dry_run=plan, refuse=refuse_if_failed_over)
        done = execute(build(cfg, roles, dry_run=plan), cfg, dry_run=plan, sequential=sequential)
        tl.changes = done.changes
        tl.metrics["changes"] = len(done.changes)
        tl.metrics["regions"] = ", ".join(roles)
        tl.metrics["steps"] = len(done.started)
        if plan:
            tl.outcome = "planned"
            publish_plan("provision", cfg.stack, done.changes)
            if not done.changes:
                tl.note("no changes: the stack matches its config")
        elif not done.changes:
            tl.note("no changes: the stack already matched its config")
    return tl.model_dump(mode="json")
