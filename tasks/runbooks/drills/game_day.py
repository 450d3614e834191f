"""AZ game day steps: lose one AZ's worth of the stack on purpose, and time the recovery.

Three faults, each the real AWS API for it: a Multi-AZ database failover (``RebootDBInstance``
with ``ForceFailover``; ``FailoverDBCluster`` for Aurora), an ElastiCache failover
(``TestFailover`` on the primary's node group) and the ECS tasks of one AZ stopped
(``StopTask``). Recovery is watched until the database is available, every service runs its
desired count and the cache is available again — while the configured stop alarms are read on
every poll: one in ``ALARM`` aborts the game day (:class:`GameDayAborted`).

Emulators that lack ``TestFailover`` (moto) answer it with an error page; when the config points
at an endpoint (``aws.endpoint_url``) that answer is recorded as "not supported by the
endpoint" rather than failing the drill. Against AWS every error counts.
"""

from __future__ import annotations

import time
from typing import Any

from configs.errors import BadInput, Refused, StepFailed
from configs.models import Config
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.changes import Action, Change, StepResult
from tasks.core.errors import AwsError
from tasks.core.retry import TRANSIENT_CODES, is_code, wait_for
from tasks.core.steps import step
from tasks.resources.database.lookup import (
    INSTANCE_NOT_FOUND,
    describe_cluster,
    describe_instance,
)

# What an endpoint without the operation answers (moto: a 500 HTML page botocore cannot parse).
UNSUPPORTED_CODES = (
    "InvalidAction",
    "NotImplemented",
    "UnknownOperationException",
    "ResponseParserError",
)


STOP_REASON = "tierbook game day: AZ {az} lost on purpose"


class GameDayAborted(StepFailed):
    """A stop alarm went to ALARM: no more faults are injected."""


# -- pure rules --------------------------------------------------------------------------------
def firing(alarms: list[dict[str, Any]]) -> list[str]:
    return sorted(a["AlarmName"] for a in alarms if a.get("StateValue") == "ALARM")


def missing(alarms: list[dict[str, Any]], wanted: list[str]) -> list[str]:
    return sorted(set(wanted) - {a["AlarmName"] for a in alarms})


def tasks_in_az(tasks: list[dict[str, Any]], az: str) -> list[str]:
    return sorted(
        t["taskArn"]
        for t in tasks
        if t.get("availabilityZone") == az and t.get("lastStatus") != "STOPPED"
    )


def busiest_az(tasks: list[dict[str, Any]], zones: list[str]) -> str:
    """The configured AZ running the most tasks (first in config order on a tie)."""
    count = {z: 0 for z in zones}
    for t in tasks:
        if t.get("availabilityZone") in count and t.get("lastStatus") != "STOPPED":
            count[t["availabilityZone"]] += 1
    return max(zones, key=lambda z: (count[z], -zones.index(z)))


def cluster_roles(cluster: dict[str, Any]) -> tuple[str | None, list[str]]:
    """An Aurora cluster's writer instance and its readers (the failover targets)."""
    members = cluster.get("DBClusterMembers") or []
    writer = next((m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")), None)
    readers = sorted(m["DBInstanceIdentifier"] for m in members if not m.get("IsClusterWriter"))
    return writer, readers


def service_recovered(svc: dict[str, Any]) -> bool:
    return int(svc.get("runningCount", 0)) >= int(svc.get("desiredCount", 0))


def primary_node_group(group: dict[str, Any]) -> str:
    groups = group.get("NodeGroups") or []
    if not groups:
        raise StepFailed(f"cache {group.get('ReplicationGroupId')} has no node groups")
    return str(groups[0]["NodeGroupId"])


def unsupported_by_endpoint(exc: BaseException, endpoint_url: str | None) -> bool:
    """An emulator's answer to an operation it lacks (moto: an HTML error page, which the
    retry layer reports as ``ResponseParserError``). Throttling and AWS's own 5xx codes never
    count: the retry layer retried them, and what is left is a failure, not a missing API."""
    if is_code(exc, *TRANSIENT_CODES):
        return False
    return bool(endpoint_url) and is_code(exc, *UNSUPPORTED_CODES)


# -- stop alarms -------------------------------------------------------------------------------
def read_alarms(cfg: Config) -> list[dict[str, Any]]:
    wanted = cfg.drills.game_day.stop_alarms
    if not wanted:
        return []
    cw = connect(cfg).client("cloudwatch", cfg.regions.primary)
    found: list[dict[str, Any]] = []
    for i in range(0, len(wanted), 100):
        found += cw.describe_alarms(AlarmNames=wanted[i : i + 100])["MetricAlarms"]
    return found


def abort_if_alarm(cfg: Config) -> None:
    if hot := firing(read_alarms(cfg)):
        raise GameDayAborted(f"aborted: stop alarm {', '.join(hot)} in ALARM")


@step("check stop alarms")
def check_stop_alarms(cfg: Config) -> StepResult:
    """Refuse to start without the configured stop alarms, or with one already firing."""
    wanted = cfg.drills.game_day.stop_alarms
    if not wanted:
        return StepResult(status="warn", detail="no stop alarms configured (drills.game_day)")
    alarms = read_alarms(cfg)
    if gone := missing(alarms, wanted):
        raise Refused(f"stop alarm(s) {', '.join(gone)} not found in {cfg.regions.primary}")
    if hot := firing(alarms):
        raise Refused(f"stop alarm(s) {', '.join(hot)} already in ALARM; not starting")
    return StepResult(status="passed", detail=f"{len(alarms)} stop alarm(s), none in ALARM")


# -- faults ------------------------------------------------------------------------------------
@step("force database failover")
def force_db_failover(cfg: Config) -> StepResult:
    names = names_for(cfg, "primary")
    rds = connect(cfg).client("rds", names.region)
    if cfg.database.engine == "aurora-postgresql":
        return _fail_over_cluster(rds, names.db_cluster, names.region)
    db = describe_instance(rds, names.db_instance)
    if db is None:
        raise BadInput(f"database {names.db_instance} not found in {names.region}")
    if not db.get("MultiAZ"):
        return StepResult(skipped=f"{names.db_instance} is single-AZ: no standby to fail over to")
    was = db.get("AvailabilityZone", "?")
    rds.reboot_db_instance(DBInstanceIdentifier=names.db_instance, ForceFailover=True)
    return StepResult(
        outputs={"at": time.time()},
        status="ok",
        detail=f"reboot with failover of {names.db_instance} (writer was in {was})",
    )


def _fail_over_cluster(rds: Any, ident: str, region: str) -> StepResult:
    """``FailoverDBCluster``: a reader becomes the writer (AWS picks which). Without a
    reader there is nothing to fail over to: skipped, as a single-AZ instance is."""
    cluster = describe_cluster(rds, ident)
    if cluster is None:
        raise BadInput(f"database cluster {ident} not found in {region}")
    writer, readers = cluster_roles(cluster)
    if not readers:
        return StepResult(skipped=f"{ident} has no reader: no instance to fail over to")
    rds.failover_db_cluster(DBClusterIdentifier=ident)
    return StepResult(
        outputs={"at": time.time(), "writer": writer},
        status="ok",
        detail=f"FailoverDBCluster on {ident} (writer was {writer})",
    )


def request_cache_failover(ec: Any, group_id: str) -> dict[str, Any]:
    """``TestFailover`` on the primary's node group; returns the group as AWS answers it."""
    group = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    node_group = primary_node_group(group)
    answer = ec.test_failover(ReplicationGroupId=group_id, NodeGroupId=node_group)
    return dict(answer["ReplicationGroup"])


@step("start cache failover")
def start_cache_failover(cfg: Config) -> StepResult:
    if cfg.cache is None:
        return StepResult(skipped="the config has no cache")
    name = names_for(cfg, "primary").cache
    ec = connect(cfg).client("elasticache", cfg.regions.primary)
    try:
        request_cache_failover(ec, name)
    except AwsError as exc:
        if unsupported_by_endpoint(exc, cfg.aws.endpoint_url):
            return StepResult(
                status="unsupported",
                detail=f"TestFailover not supported by the endpoint {cfg.aws.endpoint_url} "
                f"({getattr(exc, 'code', type(exc).__name__)}); the cache was not failed over",
            )
        raise
    return StepResult(outputs={"at": time.time()}, status="ok", detail=f"TestFailover on {name}")


def running_tasks(cfg: Config) -> dict[str, list[dict[str, Any]]]:
    """Each service's running tasks, as ``DescribeTasks`` returns them."""
    names = names_for(cfg, "primary")
    ecs = connect(cfg).client("ecs", names.region)
    out: dict[str, list[dict[str, Any]]] = {}
    for svc, _ in cfg.services.items():
        pages = ecs.get_paginator("list_tasks").paginate(
            cluster=names.cluster, serviceName=names.service(svc), desiredStatus="RUNNING"
        )
        arns = [arn for page in pages for arn in page["taskArns"]]
        out[svc] = [
            task
            for i in range(0, len(arns), 100)  # DescribeTasks takes at most 100
            for task in ecs.describe_tasks(cluster=names.cluster, tasks=arns[i : i + 100])["tasks"]
        ]
    return out


@step("choose the AZ to lose")
def choose_az(cfg: Config) -> StepResult:
    """The AZ running the most of the app's tasks, so the game day hits something."""
    zones = cfg.network.primary.azs
    tasks = [t for ts in running_tasks(cfg).values() for t in ts]
    az = busiest_az(tasks, zones)
    return StepResult(outputs={"az": az}, status="ok", detail=f"{az} ({len(tasks)} task(s) seen)")


@step("stop ECS tasks in {az}")
def stop_tasks_in_az(cfg: Config, az: str) -> StepResult:
    names = names_for(cfg, "primary")
    ecs = connect(cfg).client("ecs", names.region)
    stopped: dict[str, int] = {}
    for svc, tasks in running_tasks(cfg).items():
        victims = tasks_in_az(tasks, az)
        for arn in victims:
            ecs.stop_task(cluster=names.cluster, task=arn, reason=STOP_REASON.format(az=az))
        stopped[svc] = len(victims)
    total = sum(stopped.values())
    return StepResult(
        outputs={"stopped": stopped, "at": time.time()},
        status="ok" if total else "warn",
        detail=", ".join(f"{svc}: {n}" for svc, n in stopped.items()) + f" task(s) in {az}",
    )


# -- recovery ----------------------------------------------------------------------------------
def observe(cfg: Config) -> dict[str, bool]:
    """What is healthy right now: database, each service, cache. Aborts on a stop alarm."""
    abort_if_alarm(cfg)
    names = names_for(cfg, "primary")
    state: dict[str, bool] = {}
    rds = connect(cfg).client("rds", names.region)
    if cfg.database.engine == "aurora-postgresql":
        db = rds.describe_db_clusters(DBClusterIdentifier=names.db_cluster)["DBClusters"][0]
        state["database"] = db.get("Status") == "available"
    else:
        db = rds.describe_db_instances(DBInstanceIdentifier=names.db_instance)["DBInstances"][0]
        state["database"] = db.get("DBInstanceStatus") == "available"
    ecs = connect(cfg).client("ecs", names.region)
    services = ecs.describe_services(
        cluster=names.cluster, services=[names.service(s) for s, _ in cfg.services.items()]
    )["services"]
    for (svc, _), found in zip(cfg.services.items(), services, strict=False):
        state[svc] = service_recovered(found)
    if cfg.cache is not None:
        ec = connect(cfg).client("elasticache", names.region)
        group = ec.describe_replication_groups(ReplicationGroupId=names.cache)["ReplicationGroups"][
            0
        ]
        state["cache"] = group.get("Status") == "available"
    return state


@step("check steady state")
def check_steady_state(cfg: Config) -> StepResult:
    """A game day starts only from a healthy stack, or its recovery times mean nothing."""
    state = observe(cfg)
    if down := sorted(k for k, ok in state.items() if not ok):
        raise Refused(f"not in a steady state ({', '.join(down)} not healthy); not starting")
    return StepResult(status="passed", detail=", ".join(f"{k} ok" for k in state))


@step("wait for recovery")
def wait_for_recovery(cfg: Config, injected: dict[str, float], timeout_s: float) -> StepResult:
    """Poll until everything is healthy; each target's time to recovery is measured from its
    own fault. A stop alarm in ALARM aborts (:class:`GameDayAborted`)."""
    recovered_at: dict[str, float] = {}

    def probe() -> dict[str, bool]:
        state = observe(cfg)
        now = time.time()
        for target, ok in state.items():
            if ok and target not in recovered_at:
                recovered_at[target] = now
        return state

    wait_for(
        probe,
        until=lambda s: all(s.values()),
        what="stack recovered from the game day",
        timeout_s=timeout_s,
        describe=lambda s: ", ".join(f"{k}={'ok' if v else 'down'}" for k, v in s.items()),
    )
    seconds = {
        target: round(max(0.0, at - injected[target]), 1)
        for target, at in recovered_at.items()
        if target in injected
    }
    return StepResult(
        outputs={"seconds": seconds},
        status="ok",
        detail=", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()) or "nothing was faulted",
    )


# -- plan --------------------------------------------------------------------------------------
@step("plan game day in {az}")
def plan_game_day(cfg: Config, az: str) -> StepResult:
    """The faults the game day would inject, found with read-only calls only."""
    names = names_for(cfg, "primary")
    region = names.region
    changes: list[Change] = []
    rds = connect(cfg).client("rds", region)
    if cfg.database.engine == "aurora-postgresql":
        cluster = describe_cluster(rds, names.db_cluster)
        if cluster is None:
            raise BadInput(f"database cluster {names.db_cluster} not found in {region}")
        writer, readers = cluster_roles(cluster)
        if readers:
            detail = f"FailoverDBCluster (writer {writer}; readers {', '.join(readers)})"
            changes.append(_invoke("rds:cluster", names.db_cluster, region, detail))
    else:
        try:
            db = rds.describe_db_instances(DBInstanceIdentifier=names.db_instance)["DBInstances"][0]
        except AwsError as exc:
            if is_code(exc, *INSTANCE_NOT_FOUND):
                raise BadInput(f"database {names.db_instance} not found in {region}") from exc
            raise
        if db.get("MultiAZ"):
            detail = f"reboot with failover (writer in {db.get('AvailabilityZone', '?')})"
            changes.append(_invoke("rds:instance", names.db_instance, region, detail))
    if cfg.cache is not None:
        changes.append(
            _invoke("elasticache:replication-group", names.cache, region, "TestFailover")
        )
    for svc, tasks in running_tasks(cfg).items():
        for arn in tasks_in_az(tasks, az):
            changes.append(
                _invoke("ecs:task", arn.rsplit("/", 1)[-1], region, f"stop ({svc} in {az})")
            )
    return StepResult(changes=changes, applied=False)


def _invoke(resource: str, name: str, region: str, detail: str) -> Change:
    return Change(resource=resource, name=name, action=Action.INVOKE, region=region, detail=detail)
