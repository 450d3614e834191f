"""The ECS app tier of one region: cluster, task definitions, services.

A task-definition revision is registered only when the config asks for something different
(``tasks.taskdefs.differences``), so re-running provision never churns revisions. A service's
desired count belongs to autoscaling once the service exists: a re-run sets it only when it is
outside ``[min, max]``. Services run in the app subnets without public IPs, with the
deployment circuit breaker rolling back a deploy whose tasks do not become healthy.
"""

from __future__ import annotations

from typing import Any

from configs.errors import NotFound
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import role_client
from tasks.core.changes import (
    Change,
    StepResult,
    created,
    deleted,
    placeholder,
    result,
    tag_change,
    updated,
)
from tasks.core.errors import AwsError
from tasks.core.retry import absent, is_code, wait_gone
from tasks.core.steps import step
from tasks.core.tags import missing_tags, tag_dict, tag_list
from tasks.resources import task_definitions as appspec
from tasks.resources.task_definitions import differences

WEB_HEALTH_GRACE_S = 60


DEPLOYMENT = {
    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


def capacity(cfg: Config, role: Role, svc: str) -> tuple[int, int, int]:
    """(desired, min, max) of ``svc``: the DR region idles at its warm-standby size."""
    s = getattr(cfg.services, svc)
    if role == "dr":
        return s.dr_warm_desired, min(s.min, s.dr_warm_desired), s.max
    return s.desired, s.min, s.max


def desired_count_drift(current: int, desired: int, low: int, high: int) -> int | None:
    """The count to set, or None: inside [low, high] the count is autoscaling's business."""
    if low <= current <= high:
        return None
    return min(max(current, low), high) if current else desired


def describe_service(cfg: Config, role: Role, svc: str) -> dict[str, Any]:
    """The live (ACTIVE) service ``svc`` in ``role``'s cluster; NotFound without one."""
    names = names_for(cfg, role)
    try:
        found = role_client(cfg, "ecs", role).describe_services(
            cluster=names.cluster, services=[names.service(svc)]
        )["services"]
    except AwsError as exc:
        if is_code(exc, "ClusterNotFoundException"):
            found = []
        else:
            raise
    live = [s for s in found if s.get("status") == "ACTIVE"]
    if not live:
        raise NotFound(
            f"ECS service {names.service(svc)} not found in cluster {names.cluster} "
            f"({names.region}); provision the stack first"
        )
    return dict(live[0])


@step("ensure {role} ECS cluster")
def ensure_cluster(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    ecs, name, region = role_client(cfg, "ecs", role), names.cluster, names.region
    tags, settings = names.tags("app"), [{"name": "containerInsights", "value": "enabled"}]
    found = ecs.describe_clusters(clusters=[name], include=["SETTINGS", "TAGS"])["clusters"]
    live = [c for c in found if c.get("status") == "ACTIVE"]
    if not live:
        change = created("ecs:cluster", name, region, {"containerInsights": "enabled"})
        if dry_run:
            return StepResult(
                changes=[change],
                outputs={"cluster_arn": placeholder("ecs:cluster", name), "cluster": name},
            )
        arn = ecs.create_cluster(
            clusterName=name, settings=settings, tags=tag_list(tags, "key", "value")
        )["cluster"]["clusterArn"]
        return StepResult(
            changes=[change], outputs={"cluster_arn": arn, "cluster": name}, applied=True
        )
    cluster = live[0]
    changes: list[Change] = []
    insights = tag_dict(cluster.get("settings"), "name", "value").get("containerInsights")
    if insights not in ("enabled", "enhanced"):
        changes.append(
            updated(
                "ecs:cluster",
                name,
                region,
                {"containerInsights": insights},
                {"containerInsights": "enabled"},
            )
        )
        if not dry_run:
            ecs.update_cluster(cluster=name, settings=settings)
    have = tag_dict(cluster.get("tags"), "key", "value")
    if retag := tag_change("ecs:cluster", name, region, tags, have):
        changes.append(retag)
        if not dry_run:
            todo = missing_tags(tags, have)
            ecs.tag_resource(resourceArn=cluster["clusterArn"], tags=tag_list(todo, "key", "value"))
    return StepResult(
        changes=changes,
        outputs={"cluster_arn": cluster["clusterArn"], "cluster": name},
        applied=not dry_run,
    )


@step("ensure {role} {svc} task definition")
def ensure_task_definition(
    cfg: Config,
    role: Role,
    svc: str,
    execution_role_arn: str,
    task_role_arn: str,
    db_secret_arn: str | None,
    database: dict[str, Any] | None = None,
    queues: dict[str, str] | None = None,
    *,
    dry_run: bool = False,
) -> StepResult:
    """Register a revision only when the latest active one differs from the config's."""
    names = names_for(cfg, role)
    ecs, family = role_client(cfg, "ecs", role), names.task_family(svc)
    desired = appspec.task_definition(
        cfg,
        role,
        svc,
        execution_role_arn=execution_role_arn,
        task_role_arn=task_role_arn,
        db_secret_arn=db_secret_arn,
        database=database,
        queues=queues,
    )
    try:
        current = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    except AwsError as exc:
        if not is_code(exc, "ClientException"):
            raise
        current = None
    diff = differences(current, desired)
    if not diff:
        return StepResult(outputs={"task_definition_arn": current["taskDefinitionArn"]})  # type: ignore[index]
    before = {k: v[0] for k, v in diff.items()}
    after = {k: v[1] for k, v in diff.items()}
    action = created if current is None else None
    change = (
        action("ecs:task-definition", family, names.region, after)
        if action
        else updated(
            "ecs:task-definition",
            family,
            names.region,
            before,
            after,
            detail=f"new revision: {', '.join(diff)}",
        )
    )
    if dry_run:
        return StepResult(
            changes=[change],
            outputs={"task_definition_arn": placeholder("ecs:task-definition", family)},
        )
    registered = ecs.register_task_definition(
        **desired, tags=tag_list(names.tags(svc), "key", "value")
    )
    return StepResult(
        changes=[change],
        outputs={"task_definition_arn": registered["taskDefinition"]["taskDefinitionArn"]},
        applied=True,
    )


def service_spec(
    cfg: Config,
    role: Role,
    svc: str,
    task_definition_arn: str,
    subnet_ids: list[str],
    sg_id: str,
    target_group_arn: str | None,
) -> dict[str, Any]:
    """The settings of a service that a re-run converges (desired count apart)."""
    spec: dict[str, Any] = {
        "taskDefinition": task_definition_arn,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": sorted(subnet_ids),
                "securityGroups": [sg_id],
                "assignPublicIp": "DISABLED",
            }
        },
        "deploymentConfiguration": DEPLOYMENT,
        "platformVersion": appspec.PLATFORM_VERSION,
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
    }
    if svc == "web" and target_group_arn:
        spec["loadBalancers"] = [
            {
                "targetGroupArn": target_group_arn,
                "containerName": "web",
                "containerPort": cfg.services.web.port,
            }
        ]
        spec["healthCheckGracePeriodSeconds"] = WEB_HEALTH_GRACE_S
    return spec


def service_drift(spec: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, want in spec.items():
        actual = have.get(key)
        if key == "networkConfiguration" and actual:
            vpc = dict(actual.get("awsvpcConfiguration", {}))
            vpc["subnets"] = sorted(vpc.get("subnets", []))
            vpc["securityGroups"] = sorted(vpc.get("securityGroups", []))
            vpc.setdefault("assignPublicIp", "DISABLED")
            actual = {"awsvpcConfiguration": vpc}
        elif key == "deploymentConfiguration" and actual:
            actual = {k: actual.get(k) for k in want}
            actual["deploymentCircuitBreaker"] = {
                k: (actual["deploymentCircuitBreaker"] or {}).get(k) for k in ("enable", "rollback")
            }
        elif key == "loadBalancers" and actual:
            actual = [
                {k: lb.get(k) for k in ("targetGroupArn", "containerName", "containerPort")}
                for lb in actual
            ]
        if actual != want:
            out[key] = want
    return out


@step("ensure {role} {svc} service")
def ensure_service(
    cfg: Config,
    role: Role,
    svc: str,
    task_definition_arn: str,
    subnet_ids: list[str],
    sg_id: str,
    target_group_arn: str | None = None,
    *,
    dry_run: bool = False,
) -> StepResult:
    names = names_for(cfg, role)
    ecs, cluster, name, region = (
        role_client(cfg, "ecs", role),
        names.cluster,
        names.service(svc),
        names.region,
    )
    spec = service_spec(cfg, role, svc, task_definition_arn, subnet_ids, sg_id, target_group_arn)
    desired, low, high = capacity(cfg, role, svc)
    tags = names.tags(svc)
    # Looked up even when the plan registers a new task-definition revision first (the ARN
    # is then a placeholder): the service exists and is updated onto it, not created again.
    found: list[dict[str, Any]] = []
    try:
        found = ecs.describe_services(cluster=cluster, services=[name], include=["TAGS"])[
            "services"
        ]
    except AwsError as exc:
        if not is_code(exc, "ClusterNotFoundException"):
            raise
    live = [s for s in found if s.get("status") == "ACTIVE"]
    outputs = {"service": name, "cluster": cluster, "resource_id": f"service/{cluster}/{name}"}
    if not live:
        change = created("ecs:service", name, region, {**spec, "desiredCount": desired})
        if not dry_run:
            ecs.create_service(
                cluster=cluster,
                serviceName=name,
                desiredCount=desired,
                launchType="FARGATE",
                schedulingStrategy="REPLICA",
                tags=tag_list(tags, "key", "value"),
                **spec,
            )
        return StepResult(changes=[change], outputs=outputs, applied=not dry_run)
    have = live[0]
    changes: list[Change] = []
    drift = service_drift(spec, have)
    count = desired_count_drift(int(have.get("desiredCount", 0)), desired, low, high)
    if count is not None:
        drift["desiredCount"] = count
    if drift:
        before = {k: have.get(k) for k in drift}
        changes.append(updated("ecs:service", name, region, before, drift))
        if not dry_run:
            ecs.update_service(cluster=cluster, service=name, **drift)
    have_tags = tag_dict(have.get("tags"), "key", "value")
    if retag := tag_change("ecs:service", name, region, tags, have_tags):
        changes.append(retag)
        if not dry_run:
            todo = missing_tags(tags, have_tags)
            ecs.tag_resource(resourceArn=have["serviceArn"], tags=tag_list(todo, "key", "value"))
    return StepResult(changes=changes, outputs=outputs, applied=not dry_run)


def service_names(cfg: Config) -> list[str]:
    """The stack's ECS services by config name (``web``, and ``worker`` when configured)."""
    return [svc for svc, _ in cfg.services.items()]


@step("delete {role} ECS services")
def ensure_services_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Scale each service to zero, delete it, wait until it is inactive."""
    names = names_for(cfg, role)
    ecs, cluster = role_client(cfg, "ecs", role), names.cluster
    wanted = [names.service(svc) for svc in service_names(cfg)]

    def live() -> list[dict[str, Any]]:
        found = absent(
            lambda: ecs.describe_services(cluster=cluster, services=wanted)["services"],
            "ClusterNotFoundException",
        )
        return [s for s in found or [] if s.get("status") in ("ACTIVE", "DRAINING")]

    found = live()
    changes: list[Change] = []
    for s in found:
        if s["status"] != "ACTIVE":
            continue
        changes.append(
            deleted("ecs:service", s["serviceName"], names.region, "scaled to 0, then deleted")
        )
        if dry_run:
            continue
        if s.get("desiredCount"):
            ecs.update_service(cluster=cluster, service=s["serviceName"], desiredCount=0)
        ecs.delete_service(cluster=cluster, service=s["serviceName"])
    if found and not dry_run:
        wait_gone(live, f"{names.region} services deleted")
    return result(changes, dry_run)


@step("delete {role} task definitions and cluster")
def ensure_cluster_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Deregister every active revision of the stack's families, then delete the cluster."""
    names = names_for(cfg, role)
    ecs, region = role_client(cfg, "ecs", role), names.region
    changes: list[Change] = []
    for svc in service_names(cfg):
        family = names.task_family(svc)
        pages = ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE"
        )
        arns = [a for p in pages for a in p["taskDefinitionArns"]]
        for arn in (a for a in arns if a.split("/")[-1].rsplit(":", 1)[0] == family):
            changes.append(deleted("ecs:task-definition", arn.split("/")[-1], region))
            if not dry_run:
                ecs.deregister_task_definition(taskDefinition=arn)
    found = ecs.describe_clusters(clusters=[names.cluster])["clusters"]
    if any(c.get("status") == "ACTIVE" for c in found):
        changes.append(deleted("ecs:cluster", names.cluster, region))
        if not dry_run:
            ecs.delete_cluster(cluster=names.cluster)
    return result(changes, dry_run)
