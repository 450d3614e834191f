"""CloudWatch alarms on the symptoms seed 000 says to page on, one set per region.

ALB 5XX, p99 target response time and healthy hosts; RDS CPU, connections and (in the DR
region) replica lag; cache evictions; per queue the age of the oldest message, and any message
at all in its DLQ. Names come from ``names_for(cfg, role).alarm(signal)`` so game days and
other runbooks can find them. ``PutMetricAlarm`` is an upsert: only differing alarms are put.
"""

from __future__ import annotations

from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect, role_client
from tasks.core.changes import Change, StepResult, created, deleted, result, updated
from tasks.core.steps import step
from tasks.core.tags import tag_list
from tasks.resources.autoscaling import DIMENSION
from tasks.resources.ecs import capacity, service_names

TARGET_5XX_PER_MINUTE = 10


P99_LATENCY_S = 1.5


DB_CPU_PERCENT = 80


DB_CONNECTIONS = 400  # well under max_connections of the instance classes the seeds use


QUEUE_AGE_FLOOR_S = 300


COMPARED = (
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)


def _alarm(
    namespace: str, metric: str, dims: dict[str, str], stat: str, op: str, threshold: float,
    *, periods: int = 5, missing: str = "notBreaching",
) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims.items())],
        "Period": 60,
        "EvaluationPeriods": periods,
        "Threshold": float(threshold),
        "ComparisonOperator": op,
        "TreatMissingData": missing,
    }
    spec["ExtendedStatistic" if stat.startswith("p") else "Statistic"] = stat
    return spec


def desired_alarms(
    cfg: Config, role: Role, alb_arn_suffix: str, tg_arn_suffix: str
) -> dict[str, dict[str, Any]]:
    """Alarm name → PutMetricAlarm input (without name and tags)."""
    names = names_for(cfg, role)
    lb = {"LoadBalancer": alb_arn_suffix}
    tg = {**lb, "TargetGroup": tg_arn_suffix}
    gt, lt = "GreaterThanThreshold", "LessThanThreshold"
    _, low, _ = capacity(cfg, role, "web")
    out = {
        "web-5xx": _alarm(
            "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, "Sum", gt, TARGET_5XX_PER_MINUTE
        ),
        "web-latency": _alarm(
            "AWS/ApplicationELB", "TargetResponseTime", lb, "p99", gt, P99_LATENCY_S
        ),
        "web-healthy-hosts": _alarm(
            "AWS/ApplicationELB",
            "HealthyHostCount",
            tg,
            "Minimum",
            lt,
            max(low, 1),
            periods=3,
            missing="breaching",
        ),
        "db-cpu": _alarm(
            "AWS/RDS",
            "CPUUtilization",
            {"DBInstanceIdentifier": names.db_instance},
            "Average",
            gt,
            DB_CPU_PERCENT,
        ),
        "db-connections": _alarm(
            "AWS/RDS",
            "DatabaseConnections",
            {"DBInstanceIdentifier": names.db_instance},
            "Maximum",
            gt,
            DB_CONNECTIONS,
        ),
    }
    if role == "dr" and cfg.database.dr_replica:
        out["db-replica-lag"] = _alarm(
            "AWS/RDS",
            "ReplicaLag",
            {"DBInstanceIdentifier": names.db_instance},
            "Maximum",
            gt,
            cfg.failover.max_replica_lag_seconds,
        )
    if cfg.cache is not None:
        out["cache-evictions"] = _alarm(
            "AWS/ElastiCache", "Evictions", {"CacheClusterId": f"{names.cache}-001"}, "Sum", gt, 0
        )
    for q in cfg.queues:
        age = max(QUEUE_AGE_FLOOR_S, 5 * q.visibility_timeout_seconds)
        out[f"{q.name}-age"] = _alarm(
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": names.queue(q.name, fifo=q.fifo)},
            "Maximum",
            gt,
            age,
        )
        out[f"{q.name}-dlq-depth"] = _alarm(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": names.dlq(q.name, fifo=q.fifo)},
            "Maximum",
            gt,
            0,
            periods=1,
        )
    return {names.alarm(signal): spec for signal, spec in out.items()}


def alarm_drift(
    want: dict[str, Any], have: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    before, after = {}, {}
    for key in COMPARED:
        w, h = want.get(key), have.get(key)
        if key == "Dimensions" and h is not None:
            h = sorted(h, key=lambda d: d["Name"])
        if key == "Threshold" and h is not None:
            h = float(h)
        if w != h:
            before[key], after[key] = h, w
    return before, after


@step("ensure {role} alarms")
def ensure_alarms(
    cfg: Config, role: Role, alb_arn_suffix: str, tg_arn_suffix: str, *, dry_run: bool = False
) -> StepResult:
    names = names_for(cfg, role)
    cw = connect(cfg).client("cloudwatch", names.region)
    want = desired_alarms(cfg, role, alb_arn_suffix, tg_arn_suffix)
    have: dict[str, dict[str, Any]] = {}
    for page in cw.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=f"{names.stem}-", AlarmTypes=["MetricAlarm"]
    ):
        have |= {a["AlarmName"]: a for a in page["MetricAlarms"]}
    tags = names.tags("alarms")
    changes: list[Change] = []
    for name, spec in want.items():
        current = have.get(name)
        if current is None:
            changes.append(created("cloudwatch:alarm", name, names.region, spec))
            if not dry_run:
                cw.put_metric_alarm(AlarmName=name, Tags=tag_list(tags), **spec)
            continue
        before, after = alarm_drift(spec, current)
        if after:
            changes.append(updated("cloudwatch:alarm", name, names.region, before, after))
            if not dry_run:
                # Keep whatever actions (paging, scaling) someone wired to the alarm.
                actions = {
                    k: current.get(k, [])
                    for k in ("AlarmActions", "OKActions", "InsufficientDataActions")
                }
                cw.put_metric_alarm(AlarmName=name, **spec, **actions)
    return StepResult(changes=changes, outputs={"alarms": sorted(want)}, applied=not dry_run)


@step("delete {role} alarms and autoscaling")
def ensure_alarms_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    region = names.region
    cw, aas = (
        role_client(cfg, "cloudwatch", role),
        role_client(cfg, "application-autoscaling", role),
    )
    wanted = sorted(desired_alarms(cfg, role, "-", "-"))
    found = [a["AlarmName"] for a in cw.describe_alarms(AlarmNames=wanted)["MetricAlarms"]]
    changes = [deleted("cloudwatch:alarm", a, region) for a in found]
    if found and not dry_run:
        cw.delete_alarms(AlarmNames=found)
    for svc in service_names(cfg):
        rid = f"service/{names.cluster}/{names.service(svc)}"
        scope = {"ServiceNamespace": "ecs", "ResourceId": rid, "ScalableDimension": DIMENSION}
        for p in aas.describe_scaling_policies(**scope)["ScalingPolicies"]:
            changes.append(deleted("appautoscaling:policy", p["PolicyName"], region))
            if not dry_run:
                aas.delete_scaling_policy(PolicyName=p["PolicyName"], **scope)
        targets = aas.describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[rid], ScalableDimension=DIMENSION
        )["ScalableTargets"]
        if targets:
            changes.append(deleted("appautoscaling:target", names.service(svc), region))
            if not dry_run:
                aas.deregister_scalable_target(**scope)
    return result(changes, dry_run)
