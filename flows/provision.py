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

Each layer starts its independent steps together (Prefect's thread pool) and waits for all of
them before the next. ``plan=True`` runs every step as a dry run: the changes become the plan
and no mutating call is made. ``sequential=True`` runs one step at a time (the benchmark's
baseline).
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow

from configs import resolve_config
from configs.errors import BadInput, Refused
from configs.models import Config
from configs.names import Role
from flows.layers import Runner, app_layer, data_layer, edge_layer, network_layer
from flows.report import publish_plan, runbook
from tasks.resources.database.lookup import dr_writes
from tasks.resources.dns import ensure_hosted_zone
from tasks.runbooks.preflight import check_account

Regions = Literal["primary", "dr", "both"]


def refuse_if_failed_over(cfg: Config, consequence: str = "provision would undo it") -> None:
    """After a failover the DR database is the writer and the primary's services are fenced;
    converging to the config would undo that (and destroying would take the live writer).
    Failback is the way home."""
    if cfg.database.dr_replica and dr_writes(cfg):
        raise Refused(
            f"{cfg.stack} runs in {cfg.regions.dr} since a failover (the DR database is the "
            f"writer); {consequence} — run `tierbook failback` first"
        )


def roles_for(region: str) -> list[Role]:
    if region not in ("primary", "dr", "both"):
        raise BadInput(f"--region must be primary, dr or both (got {region!r})")
    return ["primary", "dr"] if region == "both" else [region]  # type: ignore[list-item]


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
        check_account(cfg)
        refuse_if_failed_over(cfg)
        run = Runner(cfg, dry_run=plan, sequential=sequential)
        if cfg.edge is not None and cfg.edge.manage_zone:
            run.wait(run.start(ensure_hosted_zone))
        nets = network_layer(run, roles)
        data = data_layer(run, roles, nets)
        apps = app_layer(run, roles, nets, data)
        if "primary" in roles:
            edge_layer(run, apps)
        tl.changes = run.changes
        tl.metrics["changes"] = len(run.changes)
        tl.metrics["regions"] = ", ".join(roles)
        if plan:
            tl.outcome = "planned"
            publish_plan("provision", cfg.stack, run.changes)
            if not run.changes:
                tl.note("no changes: the stack matches its config")
        elif not run.changes:
            tl.note("no changes: the stack already matched its config")
    return tl.model_dump(mode="json")
