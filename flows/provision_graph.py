"""The provision runbook as a graph: which steps, in which region, fed by which outputs.

Read it phase by phase (network → data → app → edge), but it runs by dependency
(:func:`flows.graph.execute`): the DR region does not wait for the primary's network, the app's
first steps do not wait for the database, the edge does not wait for the DR services. A node
reads another's output as a typed model (``inputs[vpc].vpc_id``), parsed once from the step's
``outputs``. On a plan against an empty account the outputs are placeholders and flow through
the same graph.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from configs.models import Config
from configs.names import Role
from flows.graph import Done, Graph, Inputs, Ref
from tasks.resources.alarms import ensure_alarms
from tasks.resources.autoscaling import ensure_autoscaling
from tasks.resources.buckets import (
    ensure_asset_bucket,
    ensure_asset_bucket_policy,
    ensure_log_bucket,
)
from tasks.resources.cache import ensure_cache, ensure_cache_subnet_group
from tasks.resources.cache_global import ensure_global_cache
from tasks.resources.certificates import ensure_certificate
from tasks.resources.cloudfront import ensure_distribution
from tasks.resources.database.copies import ensure_snapshot_copy
from tasks.resources.database.engine import (
    ensure_database,
    ensure_dr_replica,
    ensure_read_replicas,
)
from tasks.resources.database.lookup import DatabaseInfo, lookup_database
from tasks.resources.database.replicas import wait_for_database
from tasks.resources.database.secret import ensure_secret_replica
from tasks.resources.database.subnet_group import ensure_db_subnet_group
from tasks.resources.dns import ensure_dns_records, ensure_health_check, ensure_hosted_zone
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
from tasks.resources.network.routes import (
    ensure_nat_gateways,
    ensure_nat_routes,
    ensure_route_tables,
)
from tasks.resources.network.security_groups import (
    ensure_security_group_rules,
    ensure_security_groups,
)
from tasks.resources.network.vpc import ensure_subnets, ensure_vpc
from tasks.resources.queues import ensure_queues
from tasks.resources.waf import ensure_alb_web_acl, ensure_cloudfront_web_acl


# -- typed outputs: the ids one node hands to the next ---------------------------------------
class Vpc(BaseModel):
    vpc_id: str
    igw_id: str


class Subnets(BaseModel):
    subnets: dict[str, list[str]]  # tier ("public"|"app"|"data") -> subnet ids in AZ order


class SecurityGroups(BaseModel):
    security_groups: dict[str, str]  # "alb"|"app"|"data"|"endpoints" -> group id


class RouteTables(BaseModel):
    route_tables: dict[str, str]  # table name -> id
    private_route_tables: list[str] = []


class NatGateways(BaseModel):
    nat_gateways: dict[str, str] = {}  # AZ -> id


class Key(BaseModel):
    key_arn: str


class SecretReplica(BaseModel):
    dr_secret_arn: str | None = None


class ExecutionRole(BaseModel):
    execution_role_arn: str


class TaskRoles(BaseModel):
    task_role_arns: dict[str, str]


class Queues(BaseModel):
    queues: dict[str, dict[str, str]] = {}

    @property
    def urls(self) -> dict[str, str]:
        return {name: q["url"] for name, q in self.queues.items()}


class LogBucket(BaseModel):
    log_bucket: str


class AssetBucket(BaseModel):
    asset_bucket: str
    asset_bucket_domain: str


class Certificate(BaseModel):
    certificate_arn: str = ""


class TargetGroup(BaseModel):
    target_group_arn: str
    target_group_arn_suffix: str


class LoadBalancer(BaseModel):
    alb_arn: str
    alb_arn_suffix: str
    alb_dns_name: str
    alb_zone_id: str

    def alias(self) -> dict[str, str]:
        """What a Route 53 alias record needs."""
        return {"alb_dns_name": self.alb_dns_name, "alb_zone_id": self.alb_zone_id}


class TaskDefinition(BaseModel):
    task_definition_arn: str


class HealthCheck(BaseModel):
    health_check_id: str


class DnsSwitch(BaseModel):
    """The check the primary record carries: the switch's calculated one (None: not used)."""

    health_check_id: str | None = None


class CloudFrontAcl(BaseModel):
    cloudfront_web_acl_arn: str | None = None


class Distribution(BaseModel):
    distribution_arn: str
    distribution_domain: str


def existing_load_balancer(cfg: Config, role: Role) -> LoadBalancer | None:
    """A region's load balancer when this run does not build it (DNS for ``--region primary``)."""
    lb = find_load_balancer(cfg, role)
    if lb is None:
        return None
    arn = lb["LoadBalancerArn"]
    return LoadBalancer(
        alb_arn=arn,
        alb_arn_suffix=arn.split(":loadbalancer/")[-1],
        alb_dns_name=lb["DNSName"],
        alb_zone_id=lb["CanonicalHostedZoneId"],
    )


class _Region:
    """The refs of one region's nodes that later nodes read."""

    vpc: Ref[Vpc]
    subnets: Ref[Subnets]
    groups: Ref[SecurityGroups]
    rules: Ref[Done]
    route_tables: Ref[RouteTables]
    nat_routes: Ref[Done]
    endpoints: Ref[Done]
    key: Ref[Key]
    db_subnet_group: Ref[Done]
    database: Ref[DatabaseInfo] | None = None  # None: DR of a backup and restore
    secret: Ref[SecretReplica] | None = None
    cache: Ref[Done] | None = None  # the primary's replication group, when this run builds it
    execution_role: Ref[ExecutionRole]
    task_roles: Ref[TaskRoles]
    assets: Ref[AssetBucket]
    repos: Ref[Done]
    logs: Ref[Done]
    cluster: Ref[Done]
    queues: Ref[Queues]
    tg: Ref[TargetGroup]
    alb: Ref[LoadBalancer]
    listeners: Ref[Done]

    def __init__(self, role: Role) -> None:
        self.role = role

    def name(self, node: str) -> str:
        return f"{self.role}.{node}"


def build(cfg: Config, roles: list[Role], *, dry_run: bool) -> Graph:
    """The provision graph for these regions (pure: no AWS call)."""
    g = Graph()
    regions = {r: _Region(r) for r in roles}
    zone = None
    if cfg.edge is not None and cfg.edge.manage_zone:
        zone = g.add("hosted-zone", "edge", None, ensure_hosted_zone)
    for reg in regions.values():
        _network(g, reg)
    _data(g, cfg, regions, dry_run=dry_run)
    for reg in regions.values():
        _app(g, cfg, reg, zone, regions.get("primary"))
    if "primary" in regions and cfg.edge is not None:
        _edge(g, cfg, regions["primary"], regions.get("dr"), zone)
    return g


# -- 1. network ------------------------------------------------------------------------------
def _network(g: Graph, reg: _Region) -> None:
    r = reg.role
    vpc = reg.vpc = g.add(
        reg.name("vpc"), "network", r, ensure_vpc, args=lambda i: (r,), output=Vpc
    )

    def in_vpc(i: Inputs) -> tuple[Any, ...]:
        return (r, i[vpc].vpc_id)

    subnets = reg.subnets = g.add(
        reg.name("subnets"), "network", r, ensure_subnets, needs=[vpc], args=in_vpc, output=Subnets
    )
    groups = reg.groups = g.add(
        reg.name("security-groups"),
        "network",
        r,
        ensure_security_groups,
        needs=[vpc],
        args=in_vpc,
        output=SecurityGroups,
    )
    reg.rules = g.add(
        reg.name("security-group-rules"),
        "network",
        r,
        ensure_security_group_rules,
        needs=[groups],
        args=lambda i: (r, i[groups].security_groups),
    )
    g.add(reg.name("flow-logs"), "network", r, ensure_flow_logs, needs=[vpc], args=in_vpc)
    # the tables (the endpoints need them) and the NAT gateways are built side by side
    tables = reg.route_tables = g.add(
        reg.name("route-tables"),
        "network",
        r,
        ensure_route_tables,
        needs=[vpc, subnets],
        args=lambda i: (r, i[vpc].vpc_id, i[vpc].igw_id, i[subnets].subnets),
        output=RouteTables,
    )
    nats = g.add(
        reg.name("nat-gateways"),
        "network",
        r,
        ensure_nat_gateways,
        needs=[vpc, subnets],
        args=lambda i: (r, i[vpc].vpc_id, i[subnets].subnets["public"]),
        output=NatGateways,
    )
    reg.nat_routes = g.add(
        reg.name("nat-routes"),
        "network",
        r,
        ensure_nat_routes,
        needs=[tables, nats],
        args=lambda i: (r, i[tables].route_tables, i[nats].nat_gateways),
    )
    reg.endpoints = g.add(
        reg.name("endpoints"),
        "network",
        r,
        ensure_endpoints,
        needs=[vpc, subnets, groups, tables],
        args=lambda i: (
            r,
            i[vpc].vpc_id,
            i[subnets].subnets["app"],
            i[groups].security_groups["endpoints"],
            i[tables].private_route_tables,
        ),
    )


# -- 2. data ---------------------------------------------------------------------------------
def _key_and_subnet_group(g: Graph, reg: _Region) -> None:
    r, subnets = reg.role, reg.subnets
    reg.key = g.add(reg.name("kms-key"), "data", r, ensure_kms_key, args=lambda i: (r,), output=Key)
    reg.db_subnet_group = g.add(
        reg.name("db-subnet-group"),
        "data",
        r,
        ensure_db_subnet_group,
        needs=[subnets],
        args=lambda i: (r, i[subnets].subnets["data"]),
    )


def _data(g: Graph, cfg: Config, regions: dict[Role, _Region], *, dry_run: bool) -> None:
    for reg in regions.values():
        _key_and_subnet_group(g, reg)
    primary = regions.get("primary")
    if primary is not None:
        writer = _writer(g, primary, dry_run=dry_run)
    else:
        writer = g.add(
            "primary.database",
            "data",
            "primary",
            lookup_database,
            args=lambda i: ("primary",),
            output=DatabaseInfo,
            mutating=False,
        )
    if "dr" in regions:
        _standby(g, cfg, regions["dr"], writer)
        if cfg.global_cache:
            _global_cache(g, regions["dr"], primary)


def _global_cache(g: Graph, dr: _Region, primary: _Region | None) -> None:
    """The session cache's Global Datastore (made from the primary's group) and its DR
    member, in DR's data subnets behind DR's data group, under DR's key."""
    after = primary.cache if primary is not None else None
    _cache(g, dr, ensure_global_cache, "global-cache", after)


def _cache(
    g: Graph,
    reg: _Region,
    cache_step: Any,
    node: str,
    after: Ref[Done] | None = None,
) -> Ref[Done]:
    """A region's cache subnet group over its data subnets, then its cache in it, behind its
    data security group and under its key."""
    r, key, groups, subnets = reg.role, reg.key, reg.groups, reg.subnets
    subnet_group = g.add(
        reg.name("cache-subnet-group"),
        "data",
        r,
        ensure_cache_subnet_group,
        needs=[subnets],
        args=lambda i: (r, i[subnets].subnets["data"]),
    )
    return g.add(
        reg.name(node),
        "data",
        r,
        cache_step,
        needs=[key, groups, subnet_group, after],
        args=lambda i: (i[key].key_arn, i[groups].security_groups["data"]),
    )


def _writer(g: Graph, primary: _Region, *, dry_run: bool) -> Ref[DatabaseInfo]:
    """The primary's database, cache and read replicas; the writer once it is available."""
    key, groups = primary.key, primary.groups
    written = g.add(
        "primary.database",
        "data",
        "primary",
        ensure_database,
        needs=[key, groups, primary.db_subnet_group],
        args=lambda i: (i[key].key_arn, i[groups].security_groups["data"]),
        output=DatabaseInfo,
    )
    primary.cache = _cache(g, primary, ensure_cache, "cache")
    # Later steps need the writer's endpoint and secret: wait until it is available, unless it
    # is only planned (nothing to wait on).
    database = primary.database = g.add(
        "primary.database-available",
        "data",
        "primary",
        wait_for_database,
        needs=[written],
        args=lambda i: ("primary",),
        output=DatabaseInfo,
        mutating=False,
        skip=lambda i: i[written] if dry_run or not i[written].exists else None,
    )
    g.add(
        "primary.read-replicas",
        "data",
        "primary",
        ensure_read_replicas,
        needs=[database, key, groups],
        args=lambda i: (i[key].key_arn, i[groups].security_groups["data"]),
    )
    return database


def _standby(g: Graph, cfg: Config, dr: _Region, writer: Ref[DatabaseInfo]) -> None:
    """The cross-region replica of the writer and the master secret replicated to DR; in a
    backup and restore, a fresh copy of the writer's snapshot there instead of the replica."""
    key, groups = dr.key, dr.groups
    if cfg.restores:
        g.add(
            "dr.snapshot-copy",
            "data",
            "dr",
            ensure_snapshot_copy,
            needs=[writer, key],
            args=lambda i: (cfg.dr.snapshot_copy.rpo_budget_minutes * 60,),
        )
    else:
        dr.database = g.add(
            "dr.database-replica",
            "data",
            "dr",
            ensure_dr_replica,
            needs=[writer, key, groups, dr.db_subnet_group],
            args=lambda i: (i[writer].arn, i[key].key_arn, i[groups].security_groups["data"]),
            output=DatabaseInfo,
        )
    dr.secret = g.add(
        "dr.secret-replica",
        "data",
        "dr",
        ensure_secret_replica,
        needs=[writer, key],
        args=lambda i: (i[writer].secret_arn, i[key].key_arn),
        output=SecretReplica,
    )


def _db_secret(i: Inputs, reg: _Region) -> str | None:
    """The region's database secret; in DR the replica's ARN when RDS names none (or no
    database is kept there)."""
    secret = i[reg.database].secret_arn if reg.database is not None else None
    if not secret and reg.secret is not None:
        secret = i[reg.secret].dr_secret_arn
    return secret


# -- 3. app ----------------------------------------------------------------------------------
def _app(
    g: Graph, cfg: Config, reg: _Region, zone: Ref[Done] | None, primary: _Region | None
) -> None:
    """One region's app stack. DR runs at its warm capacity against its replica (pilot
    light: everything but the services, their autoscaling and the alarms)."""
    r = reg.role

    def only_role(_: Inputs) -> tuple[Any, ...]:
        return (r,)

    reg.repos = g.add(reg.name("repositories"), "app", r, ensure_repositories, args=only_role)
    reg.logs = g.add(reg.name("log-groups"), "app", r, ensure_log_groups, args=only_role)
    reg.cluster = g.add(reg.name("cluster"), "app", r, ensure_cluster, args=only_role)
    reg.queues = g.add(reg.name("queues"), "app", r, ensure_queues, args=only_role, output=Queues)
    log_bucket = g.add(
        reg.name("log-bucket"), "app", r, ensure_log_bucket, args=only_role, output=LogBucket
    )
    cert = g.add(
        reg.name("certificate"),
        "app",
        r,
        ensure_certificate,
        needs=[zone],  # validation records go into the zone
        args=only_role,
        output=Certificate,
    )
    vpc = reg.vpc
    tg = reg.tg = g.add(
        reg.name("target-group"),
        "app",
        r,
        ensure_target_group,
        needs=[vpc],
        args=lambda i: (r, i[vpc].vpc_id),
        output=TargetGroup,
    )
    if r == "primary":
        reg.assets = g.add(
            reg.name("asset-bucket"),
            "app",
            r,
            ensure_asset_bucket,
            args=only_role,
            output=AssetBucket,
        )
    # IAM is global and the regions' roles share names: DR's roles after the primary's.
    iam_first: list[Ref[Any]] = (
        [primary.execution_role, primary.task_roles] if r == "dr" and primary is not None else []
    )
    reg.execution_role = g.add(
        reg.name("execution-role"),
        "app",
        r,
        ensure_execution_role,
        needs=[reg.database, reg.secret, *iam_first],
        args=lambda i: (r, _db_secret(i, reg)),
        output=ExecutionRole,
    )
    reg.task_roles = g.add(
        reg.name("task-roles"),
        "app",
        r,
        ensure_task_roles,
        needs=iam_first,
        args=only_role,
        output=TaskRoles,
    )
    subnets, groups = reg.subnets, reg.groups
    alb = reg.alb = g.add(
        reg.name("load-balancer"),
        "app",
        r,
        ensure_load_balancer,
        needs=[subnets, groups, log_bucket],
        args=lambda i: (
            r,
            i[subnets].subnets["public"],
            i[groups].security_groups["alb"],
            i[log_bucket].log_bucket,
        ),
        output=LoadBalancer,
    )
    reg.listeners = g.add(
        reg.name("listeners"),
        "app",
        r,
        ensure_listeners,
        needs=[alb, tg, cert],
        args=lambda i: (r, i[alb].alb_arn, i[tg].target_group_arn, i[cert].certificate_arn),
    )
    g.add(
        reg.name("web-acl"),
        "app",
        r,
        ensure_alb_web_acl,
        needs=[alb],
        args=lambda i: (r, i[alb].alb_arn),
    )
    # Pilot light: DR keeps its task definitions and runs nothing; a move there creates the
    # services, their autoscaling and the alarms (see flows.failover.bring_up).
    running = cfg.runs_services(r)
    for svc, _ in cfg.services.items():
        _service(g, reg, svc, running=running)
    if not running:
        return
    g.add(
        reg.name("alarms"),
        "app",
        r,
        ensure_alarms,
        needs=[alb, tg],  # alarms name the services' metrics; they need not exist yet
        args=lambda i: (r, i[alb].alb_arn_suffix, i[tg].target_group_arn_suffix),
    )


def _service(g: Graph, reg: _Region, svc: str, *, running: bool = True) -> None:
    """One service: its task definition, the service, its autoscaling (not ``running``: the
    task definition only)."""
    r, web, database = reg.role, svc == "web", reg.database
    exec_role, task_roles, queues = reg.execution_role, reg.task_roles, reg.queues
    subnets, groups, tg, alb = reg.subnets, reg.groups, reg.tg, reg.alb
    td = g.add(
        reg.name(f"task-definition:{svc}"),
        "app",
        r,
        ensure_task_definition,
        # the definition names the log group and the image repository: both exist first
        needs=[exec_role, task_roles, database, reg.secret, queues, reg.logs, reg.repos],
        args=lambda i: (
            r,
            svc,
            i[exec_role].execution_role_arn,
            i[task_roles].task_role_arns[svc],
            _db_secret(i, reg),
            # backup and restore: no database in DR until a move restores one
            {"endpoint": i[database].endpoint, "port": i[database].port} if database else None,
            i[queues].urls,
        ),
        output=TaskDefinition,
    )
    if not running:
        return
    service = g.add(
        reg.name(f"service:{svc}"),
        "app",
        r,
        ensure_service,
        # the web service's target group serves once the listeners forward to it; tasks pull
        # images through the NAT gateways and the VPC endpoints
        needs=[
            *(td, reg.cluster, subnets, groups, reg.rules, tg, reg.nat_routes, reg.endpoints),
            reg.listeners if web else None,
        ],
        args=lambda i: (
            r,
            svc,
            i[td].task_definition_arn,
            i[subnets].subnets["app"],
            i[groups].security_groups["app"],
            i[tg].target_group_arn if web else None,
        ),
    )
    g.add(
        reg.name(f"autoscaling:{svc}"),
        "app",
        r,
        ensure_autoscaling,
        needs=[service, alb, tg],
        args=lambda i: (
            r,
            svc,
            i[alb].alb_arn_suffix if web else None,
            i[tg].target_group_arn_suffix if web else None,
        ),
    )


# -- 4. edge and DNS -------------------------------------------------------------------------
def _edge(
    g: Graph, cfg: Config, primary: _Region, dr: _Region | None, zone: Ref[Done] | None
) -> None:
    assert cfg.edge is not None
    alb = primary.alb
    acl = g.add("cloudfront-web-acl", "edge", None, ensure_cloudfront_web_acl, output=CloudFrontAcl)
    hc = g.add(
        "primary.health-check",
        "edge",
        "primary",
        ensure_health_check,
        needs=[alb],
        args=lambda i: ("primary", i[alb].alb_dns_name),
        output=HealthCheck,
    )
    # The failover's data-plane switch (an alarm in DR + health checks following it); the
    # primary record carries its check, so the records wait for it.
    switch = g.add(
        "dns-switch",
        "edge",
        None,
        ensure_dns_switch,
        needs=[hc],
        args=lambda i: (i[hc].health_check_id,),
        output=DnsSwitch,
    )
    distribution: Ref[Distribution] | None = None
    if cfg.edge.cloudfront:
        assets = primary.assets
        certificate = cfg.edge.cloudfront_certificate_arn
        distribution = g.add(
            "cloudfront-distribution",
            "edge",
            None,
            ensure_distribution,
            needs=[assets, acl],
            args=lambda i: (
                i[assets].asset_bucket_domain,
                i[acl].cloudfront_web_acl_arn,
                certificate,
            ),
            output=Distribution,
        )
        cdn = distribution
        g.add(
            "primary.asset-bucket-policy",
            "edge",
            "primary",
            ensure_asset_bucket_policy,
            needs=[cdn],
            args=lambda i: ("primary", i[cdn].distribution_arn),
        )
    if dr is not None:
        dr_alb: Ref[LoadBalancer | None] = dr.alb  # type: ignore[assignment]
    else:
        dr_alb = g.add(
            "dr.existing-load-balancer",
            "edge",
            "dr",
            existing_load_balancer,
            args=lambda i: ("dr",),
            output=LoadBalancer,
            mutating=False,
        )

    def records(i: Inputs) -> tuple[Any, ...]:
        standby = i[dr_alb]
        return (
            i[alb].alias(),
            standby.alias() if standby is not None else None,
            i[switch].health_check_id or i[hc].health_check_id,
            i[distribution].distribution_domain if distribution is not None else None,
        )

    g.add(
        "dns-records",
        "edge",
        None,
        ensure_dns_records,
        needs=[alb, dr_alb, hc, switch, distribution, zone],
        args=records,
    )
