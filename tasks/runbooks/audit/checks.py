"""Audit steps: describe one part of a live stack and run :mod:`tasks.audit`'s rules on it.

Read-only. The network, load balancer and task-definition checks run in both regions (the DR
warm standby is a stack too); the data checks look at the primary's database and cache and at
the DR replica. Resources are found the way an adopted stack is: by the config's names, and by the
VPC (found by Name tag, else by the config's CIDR) for what has no name of its own, such as the
security groups, NAT gateways and load balancers inside it. No tierbook-only tag is needed.
Each ``check_*`` step returns a :class:`~tasks.changes.StepResult` whose ``outputs['findings']``
lists the findings as dicts.
"""

from __future__ import annotations

import json
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import StepResult
from tasks.core.errors import AwsError
from tasks.core.retry import is_code
from tasks.core.steps import step
from tasks.runbooks.audit import rules as audit
from tasks.runbooks.audit.rules import Finding


def result(found: list[Finding], looked_at: str) -> StepResult:
    high = sum(f.severity == "high" for f in found)
    detail = f"{looked_at}: " + (
        f"{len(found)} finding(s), {high} high" if found else "no findings"
    )
    return StepResult(
        outputs={"findings": [f.model_dump() for f in found]},
        status="findings" if found else "passed",
        detail=detail,
    )


def _client(cfg: Config, service: str, region: str | None = None) -> Any:
    return connect(cfg).client(service, region or cfg.regions.primary)


def find_vpc_id(cfg: Config, role: Role = "primary") -> str | None:
    names = names_for(cfg, role)
    ec2 = _client(cfg, "ec2", names.region)
    cidr = getattr(cfg.network, role).cidr
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [names.vpc]}])["Vpcs"]
    if not vpcs:
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": [cidr]}])["Vpcs"]
    return str(vpcs[0]["VpcId"]) if vpcs else None


def _all(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator(operation).paginate(**params)
    return [item for page in pages for item in page[key]]


# -- database ----------------------------------------------------------------------------------
def primary_writers(cfg: Config, vpc_id: str | None) -> list[dict[str, Any]]:
    """The config's database, plus any other writer instance in the stack's VPC."""
    names = names_for(cfg, "primary")
    rds = _client(cfg, "rds")
    if cfg.database.engine == "aurora-postgresql":
        clusters = _all(rds, "describe_db_clusters", "DBClusters")
        return [c for c in clusters if c["DBClusterIdentifier"] == names.db_cluster]
    found = []
    for db in _all(rds, "describe_db_instances", "DBInstances"):
        if db.get("ReadReplicaSourceDBInstanceIdentifier") or db.get("DBClusterIdentifier"):
            continue
        in_vpc = (db.get("DBSubnetGroup") or {}).get("VpcId") == vpc_id and vpc_id is not None
        if db["DBInstanceIdentifier"] == names.db_instance or in_vpc:
            found.append(db)
    # the config's database first: it is the one the DR replica must follow
    return sorted(found, key=lambda db: db["DBInstanceIdentifier"] != names.db_instance)


@step("check databases")
def check_databases(cfg: Config, vpc_id: str | None) -> StepResult:
    region = cfg.regions.primary
    writers = primary_writers(cfg, vpc_id)
    if not writers:
        names = names_for(cfg, "primary")
        return StepResult(skipped=f"no database {names.db_instance} and none in the VPC")
    found: list[Finding] = []
    for db in writers:
        found += audit.database_findings(
            db, region, single_az_ok=cfg.acknowledge.single_az_database
        )
    ids = ", ".join(db.get("DBInstanceIdentifier") or db["DBClusterIdentifier"] for db in writers)
    return result(found, ids)


@step("check DR replica")
def check_dr_replica(cfg: Config, vpc_id: str | None) -> StepResult:
    if not cfg.database.dr_replica:
        return StepResult(skipped="the config asks for no DR replica (database.dr_replica)")
    writers = primary_writers(cfg, vpc_id)
    if not writers:
        return StepResult(skipped="no primary database to replicate")
    primary = writers[0]
    ident = primary.get("DBInstanceIdentifier") or primary["DBClusterIdentifier"]
    arn = primary.get("DBInstanceArn") or primary["DBClusterArn"]
    rds = _client(cfg, "rds", cfg.regions.dr)
    cluster = "DBClusterArn" in primary
    key = "DBClusters" if cluster else "DBInstances"
    op = "describe_db_clusters" if cluster else "describe_db_instances"
    # an Aurora cluster's DR copy is usually the secondary of a global database
    global_clusters = (
        _all(_client(cfg, "rds"), "describe_global_clusters", "GlobalClusters") if cluster else []
    )
    found = audit.dr_replica_findings(
        arn, ident, _all(rds, op, key), cfg.regions.dr, global_clusters
    )
    return result(found, f"replica of {ident} in {cfg.regions.dr}")


# -- network -----------------------------------------------------------------------------------
def data_ports(cfg: Config) -> dict[int, str]:
    ports = {cfg.database.port: "database", 5432: "database", 3306: "database"}
    ports[cfg.cache.port if cfg.cache else 6379] = "cache"
    return ports


@step("check {role} security groups")
def check_security_groups(cfg: Config, role: Role, vpc_id: str | None) -> StepResult:
    if vpc_id is None:
        return StepResult(skipped="VPC not found")
    region = names_for(cfg, role).region
    groups = _all(
        _client(cfg, "ec2", region),
        "describe_security_groups",
        "SecurityGroups",
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
    )
    found: list[Finding] = []
    for group in groups:
        found += audit.security_group_findings(
            group,
            data_ports(cfg),
            region,
            allowed_cidrs=cfg.network.data_ingress_cidrs,
            acknowledged=cfg.acknowledge.open_data_tier,
        )
    return result(found, f"{len(groups)} groups in {vpc_id}")


@step("check {role} NAT gateways")
def check_nat(cfg: Config, role: Role, vpc_id: str | None) -> StepResult:
    if vpc_id is None:
        return StepResult(skipped="VPC not found")
    region = names_for(cfg, role).region
    ec2 = _client(cfg, "ec2", region)
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    subnets = _all(ec2, "describe_subnets", "Subnets", Filters=in_vpc)
    tables = _all(ec2, "describe_route_tables", "RouteTables", Filters=in_vpc)
    found = audit.nat_findings(
        subnets,
        tables,
        region,
        acknowledged=cfg.acknowledge.single_nat or cfg.network.nat == "single",
    )
    return result(found, f"{len(subnets)} subnets, {len(tables)} route tables")


# -- load balancer -----------------------------------------------------------------------------
@step("check {role} load balancers")
def check_load_balancers(cfg: Config, role: Role, vpc_id: str | None) -> StepResult:
    names = names_for(cfg, role)
    region = names.region
    elb = _client(cfg, "elbv2", region)
    name = names.alb
    lbs = [
        lb
        for lb in _all(elb, "describe_load_balancers", "LoadBalancers")
        if lb.get("LoadBalancerName") == name or (vpc_id and lb.get("VpcId") == vpc_id)
    ]
    if not lbs:
        return StepResult(skipped=f"no load balancer {name} and none in the VPC")
    found: list[Finding] = []
    for lb in lbs:
        arn = lb["LoadBalancerArn"]
        for listener in _all(elb, "describe_listeners", "Listeners", LoadBalancerArn=arn):
            found += audit.listener_findings(listener, region)
        for tg in elb.describe_target_groups(LoadBalancerArn=arn)["TargetGroups"]:
            attrs = elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])
            found += audit.target_group_findings(tg, attrs["Attributes"], region)
    return result(found, ", ".join(lb["LoadBalancerName"] for lb in lbs))


# -- app tier ----------------------------------------------------------------------------------
@step("check {role} task definitions")
def check_task_definitions(cfg: Config, role: Role) -> StepResult:
    region = names_for(cfg, role).region
    ecs = _client(cfg, "ecs", region)
    cluster = names_for(cfg, role).cluster
    try:
        arns = _all(ecs, "list_services", "serviceArns", cluster=cluster)
    except AwsError as exc:
        if is_code(exc, "ClusterNotFoundException"):
            return StepResult(skipped=f"no ECS cluster {cluster}")
        raise
    tds: set[str] = set()
    for i in range(0, len(arns), 10):
        for svc in ecs.describe_services(cluster=cluster, services=arns[i : i + 10])["services"]:
            tds.add(svc["taskDefinition"])
    found: list[Finding] = []
    for arn in sorted(tds):
        td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        found += audit.task_definition_findings(
            td, region, accepted=cfg.acknowledge.plain_env_secrets
        )
    return result(found, f"{len(tds)} task definition(s) of {len(arns)} service(s)")


# -- cache -------------------------------------------------------------------------------------
@step("check cache")
def check_cache(cfg: Config) -> StepResult:
    name = names_for(cfg, "primary").cache
    try:
        group = _client(cfg, "elasticache").describe_replication_groups(ReplicationGroupId=name)[
            "ReplicationGroups"
        ][0]
    except AwsError as exc:
        if is_code(exc, "ReplicationGroupNotFoundFault", "ReplicationGroupNotFound"):
            return StepResult(skipped=f"no replication group {name}")
        raise
    found = audit.cache_findings(
        group,
        cfg.regions.primary,
        no_failover_ok=cfg.acknowledge.no_cache_failover,
        warm_standby=cfg.warm_standby,
        wants_global=cfg.global_cache,
    )
    return result(found, name)


# -- queues ------------------------------------------------------------------------------------
def _queue_attributes(sqs: Any, name: str) -> dict[str, str] | None:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except AwsError as exc:
        if is_code(exc, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return None
        raise
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


@step("check queues")
def check_queues(cfg: Config) -> StepResult:
    if not cfg.queues:
        return StepResult(skipped="the config names no queues")
    region = cfg.regions.primary
    names = names_for(cfg, "primary")
    sqs = _client(cfg, "sqs")
    found: list[Finding] = []
    missing: list[str] = []
    for q in cfg.queues:
        name = names.queue(q.name, fifo=q.fifo)
        attrs = _queue_attributes(sqs, name)
        if attrs is None:
            missing.append(name)
            continue
        dlq = None
        if policy := attrs.get("RedrivePolicy"):
            target = str(json.loads(policy).get("deadLetterTargetArn", ""))
            dlq = _queue_attributes(sqs, target.rsplit(":", 1)[-1]) if target else None
        found += audit.queue_findings(name, attrs, dlq, region)
    looked = f"{len(cfg.queues) - len(missing)} queue(s)"
    if missing:
        looked += f" ({', '.join(missing)} not found)"
    return result(found, looked)
