"""Destroy: tear the stack down, the reverse of provision, in an environment that is not
protected.

The runbook, as it would read on a wiki:

0. Refuse a ``protected: true`` environment (before any AWS call), the wrong account, and a
   stack that runs in DR since a failover.
1. Find what would be deleted (read-only; the plan). Nothing left → done, nothing changed.
2. Refuse while a database or load balancer has deletion protection on, naming each, unless
   ``--disable-deletion-protection`` was given → approval (``--yes``, a confirmation on the
   terminal, or a typed approval in the UI) → take the ``destroy`` lock.
3. **Edge and DNS**: the stack's records and health check → the CloudFront distribution, its
   origin access control and web ACL.
4. Per region, the DR region first (its replica goes before the primary it replicates):
   alarms, autoscaling and ECS services (scaled to 0) → load balancer, task definitions and
   cluster, queues, repositories, log groups, IAM roles, databases (the writer with a final
   snapshot) and the cache (a Global Datastore: its secondaries disassociated, then deleted
   with its primary kept, in DR's turn) → buckets, certificate, subnet groups, KMS key (scheduled),
   VPC endpoints, NAT gateways with their IPs, flow logs → the VPC with its gateway, tables,
   subnets and security groups.
5. The flow-log role (once no VPC is left), then, with the lock released, the lock tables.

Each group of independent steps starts together on Prefect's thread pool, as in provision.
Every step finds by the stack's names and is idempotent: an interrupted destroy run again
finishes, and a destroy of nothing changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from prefect import flow

from configs import resolve_config
from configs.errors import Refused
from configs.models import Config
from configs.names import Role
from flows.approval import approve_typed
from flows.guards import open_run, refuse_if_failed_over, roles_for
from flows.layers import Runner
from flows.report import Timeline, publish_plan, runbook
from tasks.core.changes import Action
from tasks.core.locks import ensure_tables_deleted, hold
from tasks.core.steps import RECORDER
from tasks.resources.alarms import ensure_alarms_deleted
from tasks.resources.buckets import ensure_buckets_deleted
from tasks.resources.cache import ensure_cache_deleted
from tasks.resources.cache_global import ensure_global_cache_deleted
from tasks.resources.certificates import ensure_certificate_deleted
from tasks.resources.cloudfront import ensure_distribution_deleted
from tasks.resources.database.engine import ensure_databases_deleted
from tasks.resources.database.secret import ensure_secret_replica_deleted
from tasks.resources.database.subnet_group import ensure_db_subnet_group_deleted
from tasks.resources.dns import ensure_dns_deleted
from tasks.resources.ecr import ensure_repositories_deleted
from tasks.resources.ecs import ensure_cluster_deleted, ensure_services_deleted
from tasks.resources.iam import ensure_roles_deleted
from tasks.resources.kms import KMS_PENDING_DAYS, ensure_kms_key_deleted
from tasks.resources.load_balancer import ensure_load_balancer_deleted
from tasks.resources.network.endpoints import ensure_endpoints_deleted
from tasks.resources.network.flow_logs import ensure_flow_log_role_deleted, ensure_flow_logs_deleted
from tasks.resources.network.routes import ensure_nat_gateways_deleted
from tasks.resources.network.vpc import ensure_vpc_deleted
from tasks.resources.queues import ensure_queues_deleted
from tasks.runbooks.destroy.protection import check_deletion_protection, ensure_protection_off


def refuse_unsafe(cfg: Config) -> None:
    """Pure checks, before any AWS call."""
    if cfg.protected:
        raise Refused(
            f"{cfg.stack} is protected (protected: true in its config); destroy never acts on "
            "a protected environment — set protected: false first if it really must go"
        )


def _refuse_if_failed_over(cfg: Config) -> None:
    refuse_if_failed_over(cfg, "destroy would delete the live database")


def refuse_protected_resources(protected: list[str]) -> None:
    if protected:
        raise Refused(
            "deletion protection is on for "
            + ", ".join(protected)
            + "; nothing was deleted. Re-run with --disable-deletion-protection to turn it off "
            "as part of the destroy (or turn it off yourself: database.deletion_protection: "
            "false + provision for the database, the deletion_protection.enabled attribute "
            "for the load balancer)"
        )


@contextmanager
def off_the_timeline() -> Iterator[None]:
    """Steps inside do not record themselves (the look-ahead before acting)."""
    token = RECORDER.set(None)
    try:
        yield
    finally:
        RECORDER.reset(token)


class Teardown(Runner):
    """A :class:`Runner` that also keeps the final snapshot and each part's duration."""

    def __init__(self, cfg: Config, *, dry_run: bool) -> None:
        super().__init__(cfg, dry_run=dry_run)
        self.final_snapshot: str | None = None
        self.seconds: dict[str, float] = {}

    def timed(self, part: str, started: float) -> None:
        self.seconds[part] = round(time.monotonic() - started, 1)


def region_teardown(
    run: Teardown, role: Role, skip_final_snapshot: bool, *, alone: bool = False
) -> None:
    """One region's half of the stack, app → data → network (``alone``: the other region's
    half stays)."""
    first = [run.start(ensure_alarms_deleted, role), run.start(ensure_services_deleted, role)]
    if role == "dr":
        first.append(run.start(ensure_secret_replica_deleted))
    if role == "primary" and alone and run.cfg.global_cache:
        # the primary's cache cannot go while it leads a Global Datastore: the datastore goes
        # first, DR's member is left a regional group
        first.append(run.start(ensure_global_cache_deleted, False))
    run.all(*first)
    second = [
        run.start(ensure_databases_deleted, role, skip_final_snapshot),
        run.start(ensure_load_balancer_deleted, role),
        run.start(ensure_cluster_deleted, role),
        run.start(ensure_queues_deleted, role),
        run.start(ensure_repositories_deleted, role),
        run.start(ensure_roles_deleted, role),
    ]
    if role == "primary" and run.cfg.cache is not None:
        second.append(run.start(ensure_cache_deleted))
    if role == "dr" and run.cfg.global_cache:
        # DR's teardown comes first: the datastore goes (its primary kept) with DR's member
        second.append(run.start(ensure_global_cache_deleted))
    databases = run.all(*second)[0]
    run.final_snapshot = run.final_snapshot or databases.outputs.get("final_snapshot")
    run.all(
        run.start(ensure_buckets_deleted, role),
        run.start(ensure_certificate_deleted, role),
        run.start(ensure_db_subnet_group_deleted, role),
        run.start(ensure_kms_key_deleted, role),
        run.start(ensure_endpoints_deleted, role),
        run.start(ensure_nat_gateways_deleted, role),
        run.start(ensure_flow_logs_deleted, role),
    )
    run.all(run.start(ensure_vpc_deleted, role))


def teardown(run: Teardown, roles: list[Role], skip_final_snapshot: bool) -> None:
    """Everything, in reverse dependency order; the lock tables only when ``run`` is a look
    ahead (a real run deletes them once it has released its lock, :func:`lock_tables`)."""
    started = time.monotonic()
    run.all(run.start(ensure_dns_deleted, roles))
    if "primary" in roles:
        run.all(run.start(ensure_distribution_deleted))
    run.timed("edge", started)
    for role in [r for r in ("dr", "primary") if r in roles]:
        started = time.monotonic()
        alone = len(roles) == 1
        region_teardown(run, role, skip_final_snapshot, alone=alone)  # type: ignore[arg-type]
        run.timed(role, started)
    run.all(run.start(ensure_flow_log_role_deleted, roles))
    if run.dry_run:
        lock_tables(run, roles)


def lock_tables(run: Teardown, roles: list[Role]) -> None:
    run.all(*(run.start(ensure_tables_deleted, r) for r in roles))


def summarize(tl: Timeline, run: Teardown, roles: list[Role]) -> None:
    """What was deleted (or would be), per region; the final snapshot; durations."""
    per_region: dict[str, int] = {}
    for c in run.changes:
        if c.action == Action.DELETE:
            per_region[c.region or "global"] = per_region.get(c.region or "global", 0) + 1
    tl.changes = run.changes
    verb = "to delete" if run.dry_run else "deleted"
    tl.metrics["regions"] = ", ".join(roles)
    tl.metrics[verb] = sum(per_region.values())
    for region, count in sorted(per_region.items()):
        tl.metrics[f"{verb} in {region}"] = count
    tl.metrics["final_snapshot"] = run.final_snapshot or "none"
    for part, seconds in run.seconds.items():
        tl.metrics[f"{part} seconds"] = seconds


@flow(name="destroy", persist_result=False)
def destroy(
    config: str = "sandbox",
    plan: bool = False,
    region: Literal["both", "primary", "dr"] = "both",
    yes: bool = False,
    skip_final_snapshot: bool = False,
    disable_deletion_protection: bool = False,
) -> dict[str, Any]:
    """Delete every resource of the stack in ``region``; with ``plan``, only list them.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        plan: Only list what would be deleted; delete nothing. Untick to delete: the run
            then pauses for a typed approval (the environment's name and a reason).
        region: Where to delete: both regions, primary only, or dr (the warm standby) only.
        yes: Approval given up front on the command line (``--yes``). Not offered by the
            deployments, and ignored in a run started from one: it always pauses for the form.
        skip_final_snapshot: Delete the database without taking a final snapshot first.
        disable_deletion_protection: Turn deletion protection off where it is on; without
            it, protected resources make the run refuse.
    """
    cfg: Config = resolve_config(config)
    roles = roles_for(region)
    with runbook("destroy", cfg.stack) as tl:
        refuse_unsafe(cfg)
        open_run(tl, cfg, dry_run=plan, refuse=_refuse_if_failed_over)
        protected = check_deletion_protection(cfg, roles).outputs["protected"]
        if plan:
            planned(tl, cfg, roles, protected, skip_final_snapshot, disable_deletion_protection)
        else:
            act(tl, cfg, roles, protected, skip_final_snapshot, disable_deletion_protection, yes)
    return tl.model_dump(mode="json")


def planned(
    tl: Timeline, cfg: Config, roles: list[Role], protected: list[str],
    skip_final_snapshot: bool, disable_protection: bool,
) -> None:  # fmt: skip
    look = Teardown(cfg, dry_run=True)
    if disable_protection and protected:
        look.wait(look.start(ensure_protection_off, roles))
    teardown(look, roles, skip_final_snapshot)
    summarize(tl, look, roles)
    tl.outcome = "planned"
    publish_plan("destroy", cfg.stack, look.changes)
    if protected and not disable_protection:
        tl.note("refused without --disable-deletion-protection: " + ", ".join(protected))
    if not look.changes:
        tl.note("nothing to delete: the stack is gone")


def act(
    tl: Timeline, cfg: Config, roles: list[Role], protected: list[str],
    skip_final_snapshot: bool, disable_protection: bool, yes: bool,
) -> None:  # fmt: skip
    look = Teardown(cfg, dry_run=True)
    with tl.step("find what to delete") as info, off_the_timeline():
        teardown(look, roles, skip_final_snapshot)
        info["detail"] = f"{len(look.changes)} resource(s) in {', '.join(roles)}"
    if not look.changes:
        tl.note("nothing to delete: the stack is already gone")
        summarize(tl, Teardown(cfg, dry_run=False), roles)
        return
    if not disable_protection:
        refuse_protected_resources(protected)
    what = f"destroy {cfg.stack} ({', '.join(roles)}): {len(look.changes)} resource(s)"
    approve_typed(tl, needed=True, approved=yes, what=what, stack=cfg.stack)
    run = Teardown(cfg, dry_run=False)
    lock_region = cfg.regions.primary if "primary" in roles else cfg.regions.dr
    try:
        with hold(cfg, "destroy", region=lock_region, purpose=f"destroy {', '.join(roles)}"):
            if protected:
                run.wait(run.start(ensure_protection_off, roles))
            teardown(run, roles, skip_final_snapshot)
        lock_tables(run, roles)
    finally:
        summarize(tl, run, roles)
    if snapshot := run.final_snapshot:
        tl.note(
            f"final snapshot {snapshot} is encrypted with the stack's KMS key, whose deletion is "
            f"scheduled in {KMS_PENDING_DAYS} days: restore or copy it under another key before "
            "then, or cancel the key's deletion"
        )
