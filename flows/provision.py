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
from configs.models import Config
from flows.guards import refuse_if_failed_over, roles_for
from flows.layers import Runner, app_layer, data_layer, edge_layer, network_layer
from flows.report import publish_plan, runbook
from tasks.resources.dns import ensure_hosted_zone
from tasks.runbooks.preflight import check_account

Regions = Literal["primary", "dr", "both"]


@flow(name="provision", persist_result=False)
def provision(
    config: str = "sandbox",
    plan: bool = False,
    region: str = "both",
    sequential: bool = False,
) -> dict[str, Any]:
    """Build or converge the stack; with ``plan``, only say what would change."""
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
