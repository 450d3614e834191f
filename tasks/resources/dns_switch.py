"""The DNS switch: moving traffic between regions with no control-plane call.

Route 53's control plane lives in us-east-1; on the day that region is dark a failover cannot
rewrite records. So the switch is prepared ahead of time (by provision, or ``prepare`` for an
adopted stack) and flipped through data planes only:

* a metric tierbook writes in the **DR region** (namespace ``tierbook``, ``PrimaryActive``,
  dimension ``Environment=<app>-<env>``): 1 = the primary takes traffic, 0 = it is out;
* an alarm there on it, ``PrimaryActive < 1``; missing data keeps the alarm's state
  (``TreatMissingData=ignore``), so one write holds until the next;
* a ``CLOUDWATCH_METRIC`` health check following that alarm (unhealthy in ALARM; healthy while
  the alarm has no data yet);
* a ``CALCULATED`` health check, healthy only when both the endpoint check of the primary load
  balancer and the alarm check are: the primary failover (or weight-100) record carries it.

Failover writes 0 in DR (``PutMetricData``: a data-plane call in the surviving region) → the
alarm goes to ALARM → the health checks turn unhealthy → Route 53's data plane answers the
SECONDARY (DR) record. Failback writes 1. No record changes, no us-east-1 call.

Trade-offs: the move takes as long as the alarm's period plus Route 53's health-check
evaluation (Route 53 only follows standard-resolution alarms: about one to two minutes, where a
record rewrite reaches INSYNC in about one); the switch is three more health checks (billed)
and an alarm; and the primary record's health check is now the calculated one, so whoever
edits the records outside tierbook must keep it. The record-rewriting path
(:func:`tasks.runbooks.failover.traffic_switch.flip_dns`) remains the fallback when the switch
is not prepared and the control plane answers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from configs.errors import NotFound
from configs.models import Config
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.changes import Change, StepResult, created, placeholder, updated
from tasks.core.errors import AwsError
from tasks.core.retry import is_code
from tasks.core.steps import step
from tasks.core.tags import tag_list
from tasks.resources.dns import (
    find_dns,
    find_health_check_named,
    find_zone_id,
    route53_client,
    switch_refs,
)

NAMESPACE = "tierbook"
METRIC = "PrimaryActive"
# Route 53 follows standard-resolution alarms only (one-minute periods).
# https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-types.html
PERIOD_S = 60


def alarm_name(cfg: Config) -> str:
    return switch_refs(cfg)[2]


def alarm_check_ref(cfg: Config) -> str:
    """The Name tag of the CLOUDWATCH_METRIC check."""
    return switch_refs(cfg)[1]


def switch_check_ref(cfg: Config) -> str:
    """The Name tag of the CALCULATED check the primary record carries."""
    return switch_refs(cfg)[0]


def _cw(cfg: Config) -> Any:
    return connect(cfg).client("cloudwatch", cfg.regions.dr)


def dimensions(cfg: Config) -> list[dict[str, str]]:
    return [{"Name": "Environment", "Value": cfg.stack}]


def alarm_spec(cfg: Config) -> dict[str, Any]:
    """The PutMetricAlarm arguments. Pure."""
    return {
        "AlarmName": alarm_name(cfg),
        "AlarmDescription": (
            f"{cfg.stack}: the primary region is out of service (tierbook failover). "
            "Followed by the Route 53 health check of the primary record."
        ),
        "Namespace": NAMESPACE,
        "MetricName": METRIC,
        "Dimensions": dimensions(cfg),
        "Statistic": "Minimum",
        "Period": PERIOD_S,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "LessThanThreshold",
        "TreatMissingData": "ignore",
        "ActionsEnabled": False,
    }


ALARM_FIELDS = (
    "Namespace",
    "MetricName",
    "Statistic",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)


def find_alarm(cfg: Config) -> dict[str, Any] | None:
    """The switch's alarm in the DR region (read there: it must answer when the primary
    does not)."""
    found = _cw(cfg).describe_alarms(AlarmNames=[alarm_name(cfg)])["MetricAlarms"]
    return found[0] if found else None


def alarm_check_config(cfg: Config) -> dict[str, Any]:
    return {
        "Type": "CLOUDWATCH_METRIC",
        "AlarmIdentifier": {"Region": cfg.regions.dr, "Name": alarm_name(cfg)},
        "InsufficientDataHealthStatus": "Healthy",
    }


def switch_check_config(endpoint_check_id: str, alarm_check_id: str) -> dict[str, Any]:
    return {
        "Type": "CALCULATED",
        "ChildHealthChecks": [endpoint_check_id, alarm_check_id],
        "HealthThreshold": 2,
    }


def _ensure_check(
    cfg: Config, ref: str, want: dict[str, Any], mutable: dict[str, Any], dry_run: bool
) -> tuple[str, list[Change]]:
    """A health check named ``ref``: created, or its ``mutable`` fields updated."""
    r53 = route53_client(cfg)
    found = find_health_check_named(cfg, ref)
    if found is None:
        change = created("route53:health-check", ref, "global", want)
        if dry_run:
            return placeholder("route53:health-check", ref), [change]
        hc = r53.create_health_check(
            CallerReference=f"{ref}-{uuid.uuid4()}", HealthCheckConfig=want
        )["HealthCheck"]
        tags = {**names_for(cfg, "primary").tags("dns"), "Name": ref}
        r53.change_tags_for_resource(
            ResourceType="healthcheck", ResourceId=hc["Id"], AddTags=tag_list(tags)
        )
        return str(hc["Id"]), [change]
    have = found["HealthCheckConfig"]
    after = {k: v for k, v in mutable.items() if have.get(k) != v}
    if not after:
        return str(found["Id"]), []
    change = updated("route53:health-check", ref, "global", {k: have.get(k) for k in after}, after)
    if not dry_run:
        r53.update_health_check(
            HealthCheckId=found["Id"], HealthCheckVersion=found["HealthCheckVersion"], **after
        )
    return str(found["Id"]), [change]


def _ensure_alarm(cfg: Config, dry_run: bool) -> list[Change]:
    want = alarm_spec(cfg)
    have = find_alarm(cfg)
    label = f"{NAMESPACE}/{METRIC} {want['AlarmName']}"
    if have is not None and all(have.get(k) == want[k] for k in ALARM_FIELDS):
        return []
    changes: list[Change] = [
        created("cloudwatch:alarm", label, cfg.regions.dr, {k: want[k] for k in ALARM_FIELDS})
        if have is None
        else updated(
            "cloudwatch:alarm",
            label,
            cfg.regions.dr,
            {k: have.get(k) for k in ALARM_FIELDS if have.get(k) != want[k]},
            {k: want[k] for k in ALARM_FIELDS if have.get(k) != want[k]},
        )
    ]
    if dry_run:
        return changes
    _cw(cfg).put_metric_alarm(**want)
    if have is None:
        # Armed: the primary takes traffic until a failover says otherwise.
        put_primary_active(cfg, True)
    return changes


def _primary_record_on(cfg: Config, check_id: str, dry_run: bool) -> list[Change]:
    """The primary record carries the switch's check (an adopted stack's did not)."""
    assert cfg.edge is not None
    dns = find_dns(cfg)
    record = dns["records"].get("primary")
    if record is None or record.get("HealthCheckId") == check_id:
        return []
    if record.get("Failover", "PRIMARY") != "PRIMARY" and not record.get("Weight"):
        return []  # failed over by rewriting: failback puts the check back
    want = {**record, "HealthCheckId": check_id}
    label = f"{dns['name']} {record['SetIdentifier']}"
    change = updated(
        "route53:record",
        label,
        "global",
        {"HealthCheckId": record.get("HealthCheckId")},
        {"HealthCheckId": check_id},
    )
    if not dry_run:
        route53_client(cfg).change_resource_record_sets(
            HostedZoneId=dns["zone_id"],
            ChangeBatch={
                "Comment": f"tierbook {cfg.stack}: primary follows the DNS switch",
                "Changes": [{"Action": "UPSERT", "ResourceRecordSet": want}],
            },
        )
    return [change]


@step("ensure DNS switch")
def ensure_dns_switch(
    cfg: Config, endpoint_check_id: str | None = None, *, dry_run: bool = False
) -> StepResult:
    """Prepare the data-plane switch; outputs the id of the check the primary record must
    carry (``health_check_id``). ``endpoint_check_id``: the check on the primary load
    balancer (found by its name when not given)."""
    if cfg.edge is None or cfg.dns.strategy == "arc":
        return StepResult(skipped=f"not used with dns.strategy {cfg.dns.strategy}")
    if endpoint_check_id is None:
        found = find_health_check_named(cfg, names_for(cfg, "primary").health_check_reference)
        if found is None:
            raise NotFound(
                f"no health check named {names_for(cfg, 'primary').health_check_reference} "
                "on the primary load balancer"
            )
        endpoint_check_id = str(found["Id"])
    changes = _ensure_alarm(cfg, dry_run)
    want_alarm = alarm_check_config(cfg)
    alarm_id, made = _ensure_check(
        cfg,
        alarm_check_ref(cfg),
        want_alarm,
        {
            "AlarmIdentifier": want_alarm["AlarmIdentifier"],
            "InsufficientDataHealthStatus": want_alarm["InsufficientDataHealthStatus"],
        },
        dry_run,
    )
    changes += made
    want_switch = switch_check_config(endpoint_check_id, alarm_id)
    switch_id, made = _ensure_check(
        cfg,
        switch_check_ref(cfg),
        want_switch,
        {k: want_switch[k] for k in ("ChildHealthChecks", "HealthThreshold")},
        dry_run,
    )
    changes += made
    if not dry_run:
        try:
            find_zone_id(cfg, cfg.edge.hosted_zone)
        except NotFound:
            pass  # provision makes the records after this step, carrying the id
        else:
            changes += _primary_record_on(cfg, switch_id, dry_run)
    return StepResult(changes=changes, outputs={"health_check_id": switch_id}, applied=not dry_run)


def put_primary_active(cfg: Config, active: bool) -> None:
    """One datapoint in the DR region: the data-plane half of the switch."""
    _cw(cfg).put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": METRIC,
                "Dimensions": dimensions(cfg),
                "Timestamp": datetime.now(UTC),
                "Value": 1.0 if active else 0.0,
                "Unit": "Count",
            }
        ],
    )


def check_switch(cfg: Config, *, read_route53: bool = True) -> tuple[bool, str]:
    """(prepared, why): the alarm in DR, and, when Route 53's control plane may be asked,
    the primary record carrying the switch's check."""
    try:
        alarm = find_alarm(cfg)
    except AwsError as exc:
        if is_code(exc, "ResourceNotFound"):
            alarm = None
        else:
            raise
    if alarm is None:
        return False, f"no switch alarm {alarm_name(cfg)} in {cfg.regions.dr}"
    if not read_route53:
        return True, (
            f"alarm {alarm_name(cfg)} in {cfg.regions.dr} is {alarm['StateValue']} "
            "(records not read: Route 53's control plane does not answer)"
        )
    switch = find_health_check_named(cfg, switch_check_ref(cfg))
    if switch is None:
        return False, f"no health check named {switch_check_ref(cfg)}"
    records = find_dns(cfg)["records"]
    carrier = [r for r in records.values() if r.get("HealthCheckId") == switch["Id"]]
    if not carrier:
        return False, f"no record of {cfg.edge.domain if cfg.edge else ''} carries the switch"
    return True, (
        f"alarm {alarm_name(cfg)} in {cfg.regions.dr} is {alarm['StateValue']}; "
        f"{switch_check_ref(cfg)} on the primary record"
    )


__all__ = [
    "alarm_name",
    "check_switch",
    "ensure_dns_switch",
    "find_alarm",
    "put_primary_active",
]
