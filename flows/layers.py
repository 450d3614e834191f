"""The layers of the provision runbook: which steps, in which order, fed by which outputs.

Every function here starts the independent steps of one layer together through a
:class:`Runner` and waits for them; the outputs of one layer (ids, ARNs, endpoints, or
placeholders on a plan against an empty account) feed the next.
"""

from __future__ import annotations

import threading
from typing import Any

from configs.models import Config
from configs.names import Role
from tasks.core.changes import Change, StepResult
from tasks.resources.alarms import ensure_alarms
from tasks.resources.autoscaling import ensure_autoscaling
from tasks.resources.buckets import (
    ensure_asset_bucket,
    ensure_asset_bucket_policy,
    ensure_log_bucket,
)
from tasks.resources.cache import ensure_cache, ensure_cache_subnet_group
from tasks.resources.certificates import ensure_certificate
from tasks.resources.cloudfront import ensure_distribution
from tasks.resources.database.lookup import DatabaseInfo, lookup_database
from tasks.resources.database.postgres import ensure_database
from tasks.resources.database.replicas import (
    ensure_dr_replica,
    ensure_read_replicas,
    wait_for_database,
)
from tasks.resources.database.secret import ensure_secret_replica
from tasks.resources.database.subnet_group import ensure_db_subnet_group
from tasks.resources.dns import ensure_dns_records, ensure_health_check
from tasks.resources.dns_switch import ensure_dns_switch
from tasks.resources.ecr import ensure_repositories
from tasks.resources.ecs import ensure_cluster, ensure_service, ensure_task_definition
from tasks.resources.iam import ensure_execution_role, ensure_task_roles
from tasks.resources.kms import ensure_kms_key
from tasks.resources.load_balancer import (
    ensure_listeners,
    ensure_load_balancer,
    ensure_target_group,
    find_load_balancer,
)
from tasks.resources.logs import ensure_log_groups
from tasks.resources.network.endpoints import ensure_endpoints
from tasks.resources.network.flow_logs import ensure_flow_logs
from tasks.resources.network.routes import ensure_routing
from tasks.resources.network.security_groups import ensure_security_groups
from tasks.resources.network.vpc import NetworkIds, ensure_subnets, ensure_vpc
from tasks.resources.queues import ensure_queues
from tasks.resources.waf import ensure_alb_web_acl, ensure_cloudfront_web_acl


class _Done:
    """A finished call that looks like a Prefect future (the one-at-a-time mode)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class Runner:
    """Starts steps (in parallel, or one at a time), collects every change they report."""

    def __init__(self, cfg: Config, *, dry_run: bool, sequential: bool = False) -> None:
        self.cfg = cfg
        self.dry_run = dry_run
        self.sequential = sequential
        self.changes: list[Change] = []
        self._lock = threading.Lock()
        self._seen: dict[int, StepResult] = {}

    def start(self, step: Any, *args: Any, mutating: bool = True, **kwargs: Any) -> Any:
        if mutating:
            kwargs["dry_run"] = self.dry_run
        if self.sequential:
            return _Done(step(self.cfg, *args, **kwargs))
        return step.submit(self.cfg, *args, **kwargs)

    def wait(self, *futures: Any) -> list[Any]:
        """Results in order; the first failure is raised once every step has ended."""
        results, error = [], None
        for f in futures:
            try:
                results.append(f.result())
            except Exception as exc:
                error = error or exc
                results.append(None)
        if error is not None:
            raise error
        with self._lock:
            for r in results:
                if isinstance(r, StepResult) and id(r) not in self._seen:
                    self._seen[id(r)] = r  # kept alive, so the id stays unique
                    self.changes.extend(r.changes)
        return results

    def all(self, *futures: Any) -> list[Any]:
        return self.wait(*futures)


# -- 1. network ------------------------------------------------------------------------------
def network_layer(run: Runner, roles: list[Role]) -> dict[Role, NetworkIds]:
    vpcs = dict(zip(roles, run.all(*(run.start(ensure_vpc, r) for r in roles)), strict=True))
    started = {
        r: (
            run.start(ensure_subnets, r, vpcs[r].outputs["vpc_id"]),
            run.start(ensure_security_groups, r, vpcs[r].outputs["vpc_id"]),
            run.start(ensure_flow_logs, r, vpcs[r].outputs["vpc_id"]),
        )
        for r in roles
    }
    nets: dict[Role, NetworkIds] = {}
    for r in roles:
        subnets, groups, _ = run.all(*started[r])
        nets[r] = NetworkIds(
            region=run.cfg.regions.primary if r == "primary" else run.cfg.regions.dr,
            vpc_id=vpcs[r].outputs["vpc_id"],
            subnets=subnets.outputs["subnets"],
            security_groups=groups.outputs["security_groups"],
        )
    routing = run.all(
        *(
            run.start(ensure_routing, r, nets[r].vpc_id, vpcs[r].outputs["igw_id"], nets[r].subnets)
            for r in roles
        )
    )
    run.all(
        *(
            run.start(
                ensure_endpoints,
                r,
                nets[r].vpc_id,
                nets[r].subnets["app"],
                nets[r].security_groups["endpoints"],
                rt.outputs["private_route_tables"],
            )
            for r, rt in zip(roles, routing, strict=True)
        )
    )
    return nets


# -- 2. data ---------------------------------------------------------------------------------
def data_layer(
    run: Runner, roles: list[Role], nets: dict[Role, NetworkIds]
) -> dict[Role, DatabaseInfo]:
    keys = dict(zip(roles, run.all(*(run.start(ensure_kms_key, r) for r in roles)), strict=True))
    key = {r: keys[r].outputs["key_arn"] for r in roles}
    groups = [run.start(ensure_db_subnet_group, r, nets[r].subnets["data"]) for r in roles]
    out: dict[Role, DatabaseInfo] = {}
    if "primary" in roles:
        data_sg = nets["primary"].security_groups["data"]
        cache_group = run.start(ensure_cache_subnet_group, nets["primary"].subnets["data"])
        run.all(*groups, cache_group)
        db, _ = run.all(
            run.start(ensure_database, key["primary"], data_sg),
            run.start(ensure_cache, key["primary"], data_sg),
        )
        primary = DatabaseInfo.model_validate(db.outputs)
        if primary.exists and not run.dry_run:
            (waited,) = run.all(run.start(wait_for_database, "primary", mutating=False))
            primary = DatabaseInfo.model_validate(waited.outputs)
        out["primary"] = primary
        readers = run.start(ensure_read_replicas, key["primary"], data_sg)
    else:
        run.all(*groups)
        primary = lookup_database(run.cfg, "primary")
        readers = None
    if "dr" in roles:
        dr_db, secret = run.all(
            run.start(
                ensure_dr_replica, primary.arn, key["dr"], nets["dr"].security_groups["data"]
            ),
            run.start(ensure_secret_replica, primary.secret_arn, key["dr"]),
        )
        dr = DatabaseInfo.model_validate(dr_db.outputs)
        if not dr.secret_arn and secret.outputs.get("dr_secret_arn"):
            dr.secret_arn = secret.outputs["dr_secret_arn"]
        out["dr"] = dr
    if readers is not None:
        run.all(readers)
    return out


# -- 3. app ----------------------------------------------------------------------------------
def app_layer(
    run: Runner,
    roles: list[Role],
    nets: dict[Role, NetworkIds],
    data: dict[Role, DatabaseInfo],
) -> dict[Role, dict[str, Any]]:
    """Both regions' app stacks, layer by layer, side by side."""
    svcs = [name for name, _ in run.cfg.services.items()]
    first = {
        r: {
            "repos": run.start(ensure_repositories, r),
            "logs": run.start(ensure_log_groups, r),
            "cluster": run.start(ensure_cluster, r),
            "queues": run.start(ensure_queues, r),
            "log_bucket": run.start(ensure_log_bucket, r),
            "cert": run.start(ensure_certificate, r),
            "tg": run.start(ensure_target_group, r, nets[r].vpc_id),
            **({"assets": run.start(ensure_asset_bucket, r)} if r == "primary" else {}),
        }
        for r in roles
    }
    # IAM is global and the regions' roles share names: one region at a time, while the
    # regional steps above run.
    for r in roles:
        iam = run.all(
            run.start(ensure_execution_role, r, data[r].secret_arn),
            run.start(ensure_task_roles, r),
        )
        first[r] |= {"exec": _Done(iam[0]), "tasks": _Done(iam[1])}
    got = {r: dict(zip(f, run.all(*f.values()), strict=True)) for r, f in first.items()}
    second: dict[Role, dict[str, Any]] = {}
    for r in roles:
        g, net = got[r], nets[r]
        queues = {n: q["url"] for n, q in g["queues"].outputs.get("queues", {}).items()}
        second[r] = {
            "alb": run.start(
                ensure_load_balancer,
                r,
                net.subnets["public"],
                net.security_groups["alb"],
                g["log_bucket"].outputs["log_bucket"],
            ),
            **{
                f"td:{svc}": run.start(
                    ensure_task_definition,
                    r,
                    svc,
                    g["exec"].outputs["execution_role_arn"],
                    g["tasks"].outputs["task_role_arns"][svc],
                    data[r].secret_arn,
                    {"endpoint": data[r].endpoint, "port": data[r].port},
                    queues,
                )
                for svc in svcs
            },
        }
    got2 = {r: dict(zip(f, run.all(*f.values()), strict=True)) for r, f in second.items()}
    third: dict[Role, dict[str, Any]] = {}
    for r in roles:
        alb, tg = got2[r]["alb"].outputs, got[r]["tg"].outputs
        third[r] = {
            "listeners": run.start(
                ensure_listeners,
                r,
                alb["alb_arn"],
                tg["target_group_arn"],
                got[r]["cert"].outputs.get("certificate_arn", ""),
            ),
            "waf": run.start(ensure_alb_web_acl, r, alb["alb_arn"]),
            **{
                f"svc:{svc}": run.start(
                    ensure_service,
                    r,
                    svc,
                    got2[r][f"td:{svc}"].outputs["task_definition_arn"],
                    nets[r].subnets["app"],
                    nets[r].security_groups["app"],
                    tg["target_group_arn"] if svc == "web" else None,
                )
                for svc in svcs
            },
        }
    for r in roles:
        run.all(*third[r].values())
    fourth = []
    for r in roles:
        alb, tg = got2[r]["alb"].outputs, got[r]["tg"].outputs
        fourth += [
            run.start(
                ensure_autoscaling,
                r,
                svc,
                alb["alb_arn_suffix"] if svc == "web" else None,
                tg["target_group_arn_suffix"] if svc == "web" else None,
            )
            for svc in svcs
        ]
        fourth.append(
            run.start(ensure_alarms, r, alb["alb_arn_suffix"], tg["target_group_arn_suffix"])
        )
    run.all(*fourth)
    return {
        r: {
            **got2[r]["alb"].outputs,
            **got[r]["cert"].outputs,
            **(got[r]["assets"].outputs if "assets" in got[r] else {}),
        }
        for r in roles
    }


# -- 4. edge and DNS -------------------------------------------------------------------------
def edge_layer(run: Runner, apps: dict[Role, dict[str, Any]]) -> None:
    cfg = run.cfg
    if cfg.edge is None:
        return
    primary = apps["primary"]
    dr = apps.get("dr") or _existing_alb(cfg, "dr")
    acl, hc = run.all(
        run.start(ensure_cloudfront_web_acl),
        run.start(ensure_health_check, "primary", primary["alb_dns_name"]),
    )
    # The failover's data-plane switch (alarm in DR + health checks); the primary record
    # carries its check. Needs the primary's endpoint check; the records need its output.
    (switch,) = run.all(run.start(ensure_dns_switch, hc.outputs["health_check_id"]))
    hc = switch if not switch.skipped else hc
    distribution = None
    if cfg.edge.cloudfront:
        (distribution,) = run.all(
            run.start(
                ensure_distribution,
                primary["asset_bucket_domain"],
                acl.outputs.get("cloudfront_web_acl_arn"),
                cfg.edge.cloudfront_certificate_arn,
            )
        )
    later = [
        run.start(
            ensure_dns_records,
            {k: primary[k] for k in ("alb_dns_name", "alb_zone_id")},
            {k: dr[k] for k in ("alb_dns_name", "alb_zone_id")} if dr else None,
            hc.outputs["health_check_id"],
            distribution.outputs.get("distribution_domain") if distribution else None,
        )
    ]
    if distribution is not None:
        later.append(
            run.start(
                ensure_asset_bucket_policy, "primary", distribution.outputs["distribution_arn"]
            )
        )
    run.all(*later)


def _existing_alb(cfg: Config, role: Role) -> dict[str, str] | None:
    lb = find_load_balancer(cfg, role)
    if lb is None:
        return None
    return {"alb_dns_name": lb["DNSName"], "alb_zone_id": lb["CanonicalHostedZoneId"]}
