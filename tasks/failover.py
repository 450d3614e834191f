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
from typing import Any

from configs.errors import AwsError, NotFound, StepFailed
from configs.models import Config
from configs.names import Role, names_for
from tasks import converge
from tasks.aws import connect
from tasks.changes import Change, StepResult
from tasks.database import describe_instance, is_aurora
from tasks.readiness import is_replica, service_names
from tasks.retry import is_code, wait_for
from tasks.rollout import describe_service
from tasks.scaling import DIMENSION
from tasks.steps import step

# -- fencing ---------------------------------------------------------------------------------


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
        converge.update(
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


# -- the database ----------------------------------------------------------------------------


def _db(cfg: Config, role: Role) -> dict[str, Any]:
    names = names_for(cfg, role)
    found = describe_instance(connect(cfg).client("rds", names.region), names.db_instance)
    if found is None:
        raise NotFound(f"database {names.db_instance} does not exist in {names.region}")
    return found


def wait_available(cfg: Config, role: Role, what: str, timeout_s: float) -> dict[str, Any]:
    return wait_for(
        lambda: _db(cfg, role),
        until=lambda d: d.get("DBInstanceStatus") == "available",
        failed=lambda d: (
            f"status {d.get('DBInstanceStatus')}"
            if d.get("DBInstanceStatus") in ("failed", "incompatible-parameters", "storage-full")
            else None
        ),
        what=what,
        timeout_s=timeout_s,
        describe=lambda d: str(d.get("DBInstanceStatus")),
    )


@step("promote {role} replica")
def promote_replica(cfg: Config, role: Role) -> StepResult:
    """Make ``role``'s cross-region replica a standalone, writable instance."""
    if is_aurora(cfg):
        from tasks.aurora_failover import promote_aurora

        return promote_aurora(cfg, role)
    names = names_for(cfg, role)
    timeout = cfg.failover.promote_timeout_seconds
    db = _db(cfg, role)
    if not is_replica(db):
        if db.get("DBInstanceStatus") != "available":
            wait_available(cfg, role, f"{names.db_instance} available", timeout)
        return StepResult(detail=f"{names.db_instance} was already promoted")
    if db.get("DBInstanceStatus") != "available":
        db = wait_available(cfg, role, f"replica {names.db_instance} available", timeout)
    rds = connect(cfg).client("rds", names.region)
    rds.promote_read_replica(
        DBInstanceIdentifier=names.db_instance,
        BackupRetentionPeriod=cfg.database.backup_retention_days,
    )
    wait_for(
        lambda: _db(cfg, role),
        until=lambda d: d.get("DBInstanceStatus") == "available" and not is_replica(d),
        what=f"{names.db_instance} promoted",
        timeout_s=timeout,
        describe=lambda d: f"{d.get('DBInstanceStatus')}, replica={is_replica(d)}",
    )
    return StepResult(
        changes=[
            converge.update(
                "rds:instance",
                names.db_instance,
                names.region,
                {"role": "read replica"},
                {"role": "standalone primary"},
            )
        ],
        applied=True,
    )


def hardening(cfg: Config, db: dict[str, Any]) -> dict[str, Any]:
    """What a promoted instance lacks as a primary. Pure."""
    want = {
        "MultiAZ": cfg.database.multi_az,
        "BackupRetentionPeriod": cfg.database.backup_retention_days,
        "DeletionProtection": cfg.database.deletion_protection,
    }
    return {k: v for k, v in want.items() if db.get(k) != v}


@step("harden {role} database")
def harden_database(cfg: Config, role: Role) -> StepResult:
    """Multi-AZ, backups and deletion protection on a newly promoted primary."""
    if is_aurora(cfg):
        return StepResult(skipped="an Aurora cluster keeps its settings through promotion")
    names = names_for(cfg, role)
    db = _db(cfg, role)
    todo = hardening(cfg, db)
    if not todo:
        return StepResult(detail="Multi-AZ, backups and deletion protection already on")
    connect(cfg).client("rds", names.region).modify_db_instance(
        DBInstanceIdentifier=names.db_instance, ApplyImmediately=True, **todo
    )
    wait_available(cfg, role, f"{names.db_instance} modified", cfg.failover.promote_timeout_seconds)
    return StepResult(
        changes=[
            converge.update(
                "rds:instance", names.db_instance, names.region, {k: db.get(k) for k in todo}, todo
            )
        ],
        applied=True,
    )


# -- the app ---------------------------------------------------------------------------------


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


# -- failback: the database the other way round ----------------------------------------------


def retired_name(ident: str, stamp: str) -> str:
    return f"{ident}-retired-{stamp}"[:63]


def newest_retired(rds: Any, ident: str) -> dict[str, Any] | None:
    """The most recently retired copy of ``ident`` in this region (the stamp sorts), if any."""
    prefix = retired_name(ident, "")
    found = [
        d
        for page in rds.get_paginator("describe_db_instances").paginate()
        for d in page["DBInstances"]
        if d["DBInstanceIdentifier"].startswith(prefix)
    ]
    return max(found, key=lambda d: d["DBInstanceIdentifier"], default=None)


@step("retire {role} database")
def retire_database(cfg: Config, role: Role, stamp: str) -> StepResult:
    """Move a database that is not (or no longer) the copy ``role`` needs out of the way: it
    is renamed, not deleted, so its data stays for whoever needs to look at it."""
    names = names_for(cfg, role)
    rds = connect(cfg).client("rds", names.region)
    db = describe_instance(rds, names.db_instance)
    if db is None:
        return StepResult(detail=f"no {names.db_instance} in {names.region}")
    if is_replica(db):
        return StepResult(detail=f"{names.db_instance} is already a replica")
    new = retired_name(names.db_instance, stamp)
    if db.get("DBInstanceStatus") != "available":
        wait_available(
            cfg, role, f"{names.db_instance} available", cfg.failover.promote_timeout_seconds
        )
    rds.modify_db_instance(
        DBInstanceIdentifier=names.db_instance, NewDBInstanceIdentifier=new, ApplyImmediately=True
    )
    wait_for(
        lambda: describe_instance(rds, new),
        until=lambda d: d is not None and d.get("DBInstanceStatus") == "available",
        what=f"{names.db_instance} renamed to {new}",
        timeout_s=cfg.failover.promote_timeout_seconds,
        describe=lambda d: str((d or {}).get("DBInstanceStatus")),
    )
    return StepResult(
        changes=[
            converge.update(
                "rds:instance",
                names.db_instance,
                names.region,
                {"identifier": names.db_instance},
                {"identifier": new},
                detail="kept for inspection; delete it when done",
            )
        ],
        applied=True,
        outputs={"retired": new},
    )


@step("replicate {source} database into {role}")
def replicate_database(cfg: Config, role: Role, source: Role) -> StepResult:
    """A cross-region read replica of ``source``'s database as ``role``'s database."""
    from tasks.network import find_network
    from tasks.replicas import _replica_params

    names, src = names_for(cfg, role), names_for(cfg, source)
    rds = connect(cfg).client("rds", names.region)
    have = describe_instance(rds, names.db_instance)
    if have is None:
        origin = _db(cfg, source)
        like = newest_retired(rds, names.db_instance)
        if like is not None:
            # Placed like the database it replaces: right for a stack built elsewhere too.
            subnet_group = like["DBSubnetGroup"]["DBSubnetGroupName"]
            groups = [g["VpcSecurityGroupId"] for g in like.get("VpcSecurityGroups", [])]
            key: str | None = like.get("KmsKeyId")  # None: unencrypted, so is its copy
        else:
            subnet_group = names.db_subnet_group
            groups = [find_network(cfg, role).security_groups["data"]]
            key = f"arn:aws:kms:{names.region}:{cfg.account_id}:{names.kms_alias}"
        params = {
            k: v
            for k, v in _replica_params(cfg, names.db_instance, groups[0]).items()
            if k != "CopyTagsToSnapshot"
        }
        rds.create_db_instance_read_replica(
            SourceDBInstanceIdentifier=origin["DBInstanceArn"],
            SourceRegion=src.region,
            DBSubnetGroupName=subnet_group,
            **{**params, "VpcSecurityGroupIds": groups, **({"KmsKeyId": key} if key else {})},
        )
        changes = [
            converge.create(
                "rds:cross-region-replica",
                names.db_instance,
                names.region,
                {"source": origin["DBInstanceArn"]},
            )
        ]
    elif not is_replica(have):
        raise StepFailed(
            f"{names.db_instance} in {names.region} is a standalone database; retire it first"
        )
    else:
        changes = []
    wait_available(
        cfg, role, f"replica {names.db_instance} available", cfg.failover.promote_timeout_seconds
    )
    return StepResult(changes=changes, applied=True, detail=f"{names.db_instance} replicating")


@step("wait for {role} replica to catch up")
def wait_caught_up(cfg: Config, role: Role, max_lag_s: float) -> StepResult:
    from tasks.readiness import replica_lag_of

    lag = wait_for(
        lambda: replica_lag_of(cfg, role),
        until=lambda v: v is not None and v <= max_lag_s,
        what=f"{role} replica lag ≤ {max_lag_s:g}s",
        timeout_s=cfg.failover.promote_timeout_seconds,
        describe=lambda v: "no data" if v is None else f"{v:g}s",
    )
    return StepResult(status="passed", detail=f"lag {lag:g}s", outputs={"lag_s": lag})


@step("set {role} services to warm standby")
def warm_standby(cfg: Config, role: Role) -> StepResult:
    """Back to the warm-standby size and autoscaling range provision gives the DR region."""
    from tasks.ecs import capacity

    changes = []
    for svc in service_names(cfg):
        changes += set_capacity(cfg, role, svc, *capacity(cfg, role, svc))
    return StepResult(changes=changes, applied=True)
