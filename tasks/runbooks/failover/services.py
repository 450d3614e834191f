"""The steps that move an environment between regions: fence, promote, scale, flip, verify.

Each step looks before it acts, so a run interrupted anywhere and started again picks up
from where things stand: a promoted database is not promoted twice, a service already at its
count is not updated, a record already pointing at the target region is not changed.

Calls into the region being left use impaired-region clients (short timeouts, a short retry
deadline) and a deadline for the whole step: when that region does not answer, fencing is
recorded as skipped with the reason and the runbook goes on.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from configs.errors import NotFound
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import Change, StepResult, is_placeholder, updated
from tasks.core.errors import AwsError
from tasks.core.retry import is_code, wait_for
from tasks.core.steps import step
from tasks.core.tags import tag_list
from tasks.resources.autoscaling import DIMENSION
from tasks.resources.ecs import capacity, describe_service, service_names
from tasks.resources.load_balancer import find_load_balancer
from tasks.resources.network.vpc import find_network
from tasks.resources.task_definitions import differences, with_database


def set_capacity(
    cfg: Config, role: Role, svc: str, desired: int, low: int, high: int, *, impaired: bool = False
) -> list[Change]:
    """Autoscaling's range first (so it neither undoes nor clamps the count), then the
    service's desired count. Returns the count's change, if any; NotFound without a service."""
    names = names_for(cfg, role)
    name = names.service(svc)
    ecs = connect(cfg).client("ecs", names.region, impaired=impaired)
    aas = connect(cfg).client("application-autoscaling", names.region, impaired=impaired)
    found = ecs.describe_services(cluster=names.cluster, services=[name])["services"]
    live = [s for s in found if s.get("status") == "ACTIVE"]
    if not live:
        raise NotFound(f"service {name} does not exist in {names.region}")
    resource = f"service/{names.cluster}/{name}"
    have = aas.describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource], ScalableDimension=DIMENSION
    )["ScalableTargets"]
    if not have or (have[0]["MinCapacity"], have[0]["MaxCapacity"]) != (low, high):
        aas.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            MinCapacity=low,
            MaxCapacity=high,
        )
    current = live[0]["desiredCount"]
    if current == desired:
        return []
    ecs.update_service(cluster=names.cluster, service=name, desiredCount=desired)
    return [
        updated(
            "ecs:service", name, names.region, {"desiredCount": current}, {"desiredCount": desired}
        )
    ]


def _scale_to_zero(cfg: Config, role: Role) -> list[Change]:
    changes = []
    for svc in service_names(cfg):
        try:
            changes += set_capacity(cfg, role, svc, 0, 0, 0, impaired=True)
        except NotFound:
            continue
    return changes


@step("fence {role} services")
def fence_services(cfg: Config, role: Role, *, timeout_s: float | None = None) -> StepResult:
    """Best effort, bounded: scale ``role``'s services to 0 so nothing writes there."""
    limit = timeout_s or cfg.failover.fence_timeout_seconds
    region = names_for(cfg, role).region
    probe = connect(cfg).last_probe(region)
    if probe is not None and not probe.answers:
        # Probed dark this run: asking again would only spend the fence deadline.
        return StepResult(skipped=f"{region} does not answer ({probe.why()}); not fenced")
    pool = ThreadPoolExecutor(1, thread_name_prefix="fence")
    future = pool.submit(_scale_to_zero, cfg, role)
    pool.shutdown(wait=False)
    try:
        changes = future.result(timeout=limit)
    except FutureTimeout:
        return StepResult(skipped=f"{region} did not answer within {limit:g}s; not fenced")
    except AwsError as exc:
        return StepResult(skipped=f"{region} refused or did not answer: {exc}")
    except Exception as exc:  # a dead region surfaces as connection errors of many kinds
        return StepResult(skipped=f"{region} unreachable: {type(exc).__name__}: {exc}")
    return StepResult(
        changes=changes,
        applied=True,
        detail=f"{len(changes)} service(s) scaled to 0" if changes else "already at 0",
    )


def rollout_done(service: dict[str, Any]) -> bool:
    primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
    return bool(
        primary.get("rolloutState", "COMPLETED") == "COMPLETED"
        and service.get("runningCount") == service.get("desiredCount")
    )


def rollout_failed(service: dict[str, Any]) -> str | None:
    primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
    if primary.get("rolloutState") == "FAILED":
        return str(primary.get("rolloutStateReason") or "rollout FAILED")
    return None


@step("scale {role} {svc} to {count}")
def scale_service(cfg: Config, role: Role, svc: str, count: int) -> StepResult:
    """Set the count (autoscaling's floor follows it), then wait for the rollout and tasks."""
    spec = getattr(cfg.services, svc)
    changes = set_capacity(cfg, role, svc, count, min(spec.min, count), max(spec.max, count))
    final = wait_for(
        lambda: describe_service(cfg, role, svc),
        until=rollout_done,
        failed=rollout_failed,
        what=f"{names_for(cfg, role).service(svc)} at {count} running tasks",
        timeout_s=cfg.failover.rollout_timeout_seconds,
        describe=lambda s: f"{s.get('runningCount')}/{s.get('desiredCount')} running",
    )
    return StepResult(
        changes=changes,
        applied=True,
        detail=f"{final['runningCount']}/{count} running, rollout COMPLETED",
        outputs={"running": final["runningCount"]},
    )


def healthy_targets(cfg: Config, role: Role) -> int:
    names = names_for(cfg, role)
    elb = connect(cfg).client("elbv2", names.region)
    try:
        tg = elb.describe_target_groups(Names=[names.target_group])["TargetGroups"][0]
    except AwsError as exc:
        if is_code(exc, "TargetGroupNotFound"):
            raise NotFound(f"target group {names.target_group} missing in {names.region}") from None
        raise
    health = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
    return sum(
        1
        for t in health["TargetHealthDescriptions"]
        if t.get("TargetHealth", {}).get("State") == "healthy"
    )


@step("verify {role} targets healthy")
def verify_targets(cfg: Config, role: Role, want: int) -> StepResult:
    got = wait_for(
        lambda: healthy_targets(cfg, role),
        until=lambda n: n >= want,
        what=f"{want} healthy targets behind the {role} load balancer",
        timeout_s=cfg.failover.rollout_timeout_seconds,
        describe=str,
    )
    return StepResult(status="passed", detail=f"{got} healthy targets (want ≥ {want})")


@step("set {role} services to warm standby")
def warm_standby(cfg: Config, role: Role) -> StepResult:
    """Back to the warm-standby size and autoscaling range provision gives the DR region."""
    changes = []
    for svc in service_names(cfg):
        changes += set_capacity(cfg, role, svc, *capacity(cfg, role, svc))
    return StepResult(changes=changes, applied=True)


# -- pilot light: the services a move to DR creates ---------------------------------------------
def newest_revision(cfg: Config, role: Role, svc: str) -> dict[str, Any] | None:
    """The newest ACTIVE task definition of ``svc`` in ``role``'s region (provision and every
    deploy register one there, also where no service runs it); None when there is none."""
    names = names_for(cfg, role)
    ecs = connect(cfg).client("ecs", names.region)
    try:
        found = ecs.describe_task_definition(taskDefinition=names.task_family(svc))
    except AwsError as exc:
        if is_code(exc, "ClientException"):  # ECS's answer for an unknown family
            return None
        raise
    return dict(found["taskDefinition"])


@step("point {role} {svc} task definition at its database")
def point_at_database(
    cfg: Config, role: Role, svc: str, database: dict[str, Any] | None, *, dry_run: bool = False
) -> StepResult:
    """A revision of ``svc``'s newest task definition in ``role`` whose containers reach
    ``database`` (``endpoint``, ``port``; None: no database), registered only when the newest
    differs. Backup and restore: the database a move restores has a new endpoint."""
    names = names_for(cfg, role)
    current = newest_revision(cfg, role, svc)
    if current is None:
        raise NotFound(
            f"no {names.task_family(svc)} task definition in {names.region}: run "
            "`tierbook provision`"
        )
    desired = with_database(current, cfg.database.db_name, database)
    diff = differences(current, desired)
    arn = str(current["taskDefinitionArn"])
    if not diff:
        return StepResult(outputs={"task_definition_arn": arn})
    change = updated(
        "ecs:task-definition",
        names.task_family(svc),
        names.region,
        {k: v[0] for k, v in diff.items()},
        {k: v[1] for k, v in diff.items()},
        detail="new revision: the database endpoint",
    )
    if not dry_run:
        ecs = connect(cfg).client("ecs", names.region)
        arn = ecs.register_task_definition(
            **desired, tags=tag_list(names.tags(svc), "key", "value")
        )["taskDefinition"]["taskDefinitionArn"]
    return StepResult(changes=[change], outputs={"task_definition_arn": arn}, applied=not dry_run)


@dataclass(frozen=True)
class Foundation:
    """What a region's services are made from, as provision left it there."""

    app_subnets: list[str]
    app_security_group: str
    target_group_arn: str
    target_group_suffix: str
    alb_suffix: str
    revisions: dict[str, str]


@step("find {role} app foundation")
def find_foundation(cfg: Config, role: Role) -> Foundation:
    """Read-only, in ``role``'s region only: the app subnets and security group, the target
    group, the load balancer and each service's newest task definition. NotFound (naming
    provision) when one is missing."""
    names = names_for(cfg, role)
    net = find_network.fn(cfg, role)
    lb = find_load_balancer(cfg, role)
    elb = connect(cfg).client("elbv2", names.region)
    try:
        tg = elb.describe_target_groups(Names=[names.target_group])["TargetGroups"][0]
    except AwsError as exc:
        if not is_code(exc, "TargetGroupNotFound"):
            raise
        tg = None
    newest = {svc: newest_revision(cfg, role, svc) for svc in service_names(cfg)}
    revisions = {svc: td["taskDefinitionArn"] for svc, td in newest.items() if td is not None}
    missing = [f"{svc} task definition" for svc, td in newest.items() if td is None]
    missing += ["network"] if is_placeholder(net.vpc_id) else []
    missing += ["load balancer"] if lb is None else []
    missing += ["target group"] if tg is None else []
    if missing or lb is None or tg is None:
        raise NotFound(
            f"{names.region} lacks its {', '.join(missing)}: run `tierbook provision` "
            "(pilot light keeps them there)"
        )
    return Foundation(
        app_subnets=list(net.subnets["app"]),
        app_security_group=net.security_groups["app"],
        target_group_arn=str(tg["TargetGroupArn"]),
        target_group_suffix=str(tg["TargetGroupArn"]).split(":")[-1],
        alb_suffix=str(lb["LoadBalancerArn"]).split(":loadbalancer/")[-1],
        revisions={svc: str(arn) for svc, arn in revisions.items()},
    )
