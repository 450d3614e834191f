"""Sending the app's traffic to one region, by the config's DNS strategy.

:func:`send_traffic` is the step the runbooks call. With ``failover`` or ``weighted`` records
it flips the prepared data-plane switch (:mod:`tasks.resources.dns_switch`: a metric written
in the DR region, no control-plane call); only when no switch is prepared, and Route 53's
control plane answers, does it fall back to rewriting the records (:func:`flip_dns`):

* ``failover``: the target region's alias record becomes the PRIMARY failover record, with a
  health check on its own load balancer; the other region's becomes the SECONDARY. Inverting
  the old primary's health check instead would send traffic back to it as soon as fencing
  leaves its load balancer without targets (an inverted check of a failing endpoint is
  healthy), so the records themselves change.
* ``weighted``: the target region's record gets weight 100, the other 0.
* ``arc``: Route 53 ARC routing controls, switched through the cluster's data-plane endpoints
  (one of which answers even when the Route 53 control plane does not).

The other region's load balancer is read from its current record, never from that region,
which may be down. The change is waited on until INSYNC and the records are read back.
"""

from __future__ import annotations

from typing import Any

from configs.errors import NotFound, StepFailed
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import Change, StepResult, updated
from tasks.core.retry import wait_for
from tasks.core.steps import step
from tasks.resources.dns import (
    app_records,
    comparable_record,
    ensure_health_check,
    find_dns,
    find_health_check,
    find_health_check_named,
    list_records,
    route53_client,
)
from tasks.resources.dns_switch import (
    METRIC,
    NAMESPACE,
    alarm_name,
    find_alarm,
    put_primary_active,
    switch_check_ref,
)
from tasks.resources.load_balancer import find_load_balancer

OTHER: dict[str, Role] = {"primary": "dr", "dr": "primary"}


def _alb_of(record: dict[str, Any]) -> dict[str, str]:
    target = record["AliasTarget"]
    return {"alb_dns_name": target["DNSName"].rstrip("."), "alb_zone_id": target["HostedZoneId"]}


def active_role(cfg: Config, records: dict[str, dict[str, Any]]) -> Role | None:
    """Which region the records send traffic to (None: no records to tell)."""
    for role in ("primary", "dr"):
        r = records.get(role) or {}
        if r.get("Failover") == "PRIMARY" or r.get("Weight", 0) > 0:
            return role  # type: ignore[return-value]
    return None


def load_balancer(cfg: Config, role: Role) -> dict[str, Any]:
    """``role``'s ALB, or NotFound naming it and its region."""
    lb = find_load_balancer(cfg, role)
    if lb is None:
        names = names_for(cfg, role)
        raise NotFound(f"load balancer {names.alb} missing in {names.region}")
    return lb


def wanted_records(
    cfg: Config, to: Role, dns: dict[str, Any], health_check_id: str
) -> list[dict[str, Any]]:
    """The records that send traffic to ``to``; the other region's ALB as its record has it."""
    lb = load_balancer(cfg, to)
    albs: dict[str, dict[str, str] | None] = {
        to: {"alb_dns_name": lb["DNSName"], "alb_zone_id": lb["CanonicalHostedZoneId"]}
    }
    other = OTHER[to]
    albs[other] = _alb_of(dns["records"][other]) if other in dns["records"] else None
    return app_records(cfg, albs["primary"], albs["dr"], health_check_id, active=to)  # type: ignore[arg-type]


def _routing(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of a record that say where traffic goes."""
    return {k: record.get(k) for k in ("Failover", "Weight", "HealthCheckId") if k in record}


def control_plane_answers(cfg: Config) -> bool:
    """Route 53's control plane, as this run's probe of the primary found it (asked when the
    run has not probed)."""
    aws = connect(cfg)
    probe = aws.last_probe(cfg.regions.primary) or aws.probe_region(cfg.regions.primary)
    return probe.control_plane_answers


@step("send traffic to {to}")
def send_traffic(cfg: Config, to: Role) -> StepResult:
    """Send the app's traffic to ``to`` through a data plane wherever one is prepared."""
    if cfg.dns.strategy == "arc":
        return flip_arc(cfg, to)
    if cfg.edge is None:
        return StepResult(skipped="no edge block: no DNS records to change")
    alarm = find_alarm(cfg)
    r53 = control_plane_answers(cfg)
    if alarm is None:
        if not r53:
            raise StepFailed(
                f"no DNS switch prepared (alarm {alarm_name(cfg)} in {cfg.regions.dr}) and "
                "Route 53's control plane does not answer: run provision (or prepare) ahead"
            )
        return flip_dns.fn(cfg, to)
    changes: list[Change] = []
    notes = []
    if to == "primary" and r53:
        # A failover made by rewriting the records (no switch then) is undone the same way.
        dns = find_dns(cfg)
        if active_role(cfg, dns["records"]) == "dr":
            rewritten = flip_dns.fn(cfg, "primary")
            changes += rewritten.changes
            notes.append(rewritten.detail)
    changes += flip_switch(cfg, to, alarm)
    notes.append(
        f"{NAMESPACE}/{METRIC} in {cfg.regions.dr}: {alarm_name(cfg)} "
        f"{'ALARM' if to == 'dr' else 'OK'}: Route 53 answers the {to} load balancer"
    )
    return StepResult(changes=changes, applied=True, detail="; ".join(n for n in notes if n))


def flip_switch(cfg: Config, to: Role, alarm: dict[str, Any]) -> list[Change]:
    """Write ``PrimaryActive`` in the DR region (a data-plane call) unless the alarm already
    says so, then wait for the alarm to agree. Idempotent."""
    want = "ALARM" if to == "dr" else "OK"
    before = str(alarm.get("StateValue"))
    changes: list[Change] = []
    if before != want:
        put_primary_active(cfg, to == "primary")
        changes.append(
            updated(
                "cloudwatch:metric",
                f"{NAMESPACE}/{METRIC} {cfg.stack}",
                cfg.regions.dr,
                {"alarm": before},
                {"alarm": want, "value": 1 if to == "primary" else 0},
            )
        )
    wait_for(
        lambda: str((find_alarm(cfg) or {}).get("StateValue")),
        until=lambda s: s == want,
        what=f"alarm {alarm_name(cfg)} {want}",
        timeout_s=cfg.failover.dns_timeout_seconds,
        describe=str,
    )
    return changes


@step("rewrite DNS records to {to}")
def flip_dns(cfg: Config, to: Role) -> StepResult:
    """Point the app's name at ``to`` by rewriting the records (Route 53's control plane);
    waits for INSYNC and reads the records back."""
    if cfg.dns.strategy == "arc":
        return flip_arc(cfg, to)
    if cfg.edge is None:
        return StepResult(skipped="no edge block: no DNS records to change")
    dns = find_dns(cfg)
    lb = load_balancer(cfg, to)
    hc_id = record_check_id(cfg, to, lb["DNSName"])
    want = wanted_records(cfg, to, dns, hc_id)
    have = {r.get("SetIdentifier"): r for r in list_records(cfg, dns["zone_id"], dns["name"])}
    batch: list[dict[str, Any]] = [
        {"Action": "UPSERT", "ResourceRecordSet": r}
        for r in want
        if have.get(r["SetIdentifier"]) is None
        or comparable_record(have[r["SetIdentifier"]]) != comparable_record(r)
    ]
    if not batch:
        return StepResult(detail=f"{dns['name']} already sends traffic to {to}")
    r53 = route53_client(cfg)
    change = r53.change_resource_record_sets(
        HostedZoneId=dns["zone_id"],
        ChangeBatch={"Comment": f"tierbook: traffic to {to}", "Changes": batch},
    )["ChangeInfo"]
    wait_for(
        lambda: r53.get_change(Id=change["Id"])["ChangeInfo"]["Status"],
        until=lambda s: s == "INSYNC",
        what=f"DNS change {change['Id'].split('/')[-1]} INSYNC",
        timeout_s=cfg.failover.dns_timeout_seconds,
        describe=str,
    )
    after = {r.get("SetIdentifier"): r for r in list_records(cfg, dns["zone_id"], dns["name"])}
    wrong = [
        r["SetIdentifier"]
        for r in want
        if comparable_record(after.get(r["SetIdentifier"]) or {}) != comparable_record(r)
    ]
    if wrong:
        raise StepFailed(f"records read back differ from what was written: {', '.join(wrong)}")
    return StepResult(
        changes=[
            updated(
                "route53:record",
                f"{dns['name']} {ident}",
                "global",
                _routing(have.get(ident, {})),
                _routing(r["ResourceRecordSet"]),
            )
            for r in batch
            for ident in [r["ResourceRecordSet"]["SetIdentifier"]]
        ],
        applied=True,
        detail=f"{dns['name']} → {lb['DNSName']} (INSYNC, read back)",
    )


def record_check_id(cfg: Config, to: Role, alb_dns_name: str) -> str:
    """The check ``to``'s record carries when it takes the traffic: the primary's switch check
    where prepared, else a check on ``to``'s own load balancer that matches the primary's
    (protocol, port, path, thresholds), made when missing."""
    if to == "primary":
        switch = find_health_check_named(cfg, switch_check_ref(cfg))
        if switch is not None:
            return str(switch["Id"])
    hc = find_health_check(cfg, to)
    if hc is not None:
        return str(hc["Id"])
    primary = find_health_check(cfg, "primary") if to != "primary" else None
    like = primary["HealthCheckConfig"] if primary else None
    made = ensure_health_check.fn(cfg, to, alb_dns_name, like)
    return str(made.outputs["health_check_id"])


def arc_client(cfg: Config, endpoint: str) -> Any:
    """The routing-control data plane lives at the cluster's own endpoints, one per region;
    each is tried with a short deadline so a dead one costs seconds."""
    return connect(cfg).client(
        "route53-recovery-cluster",
        _endpoint_region(endpoint),
        impaired=True,
        endpoint_url=endpoint,
    )


def _endpoint_region(endpoint: str) -> str:
    host = endpoint.split("//", 1)[-1].split("/", 1)[0]
    parts = host.split(".")
    return parts[1] if len(parts) > 2 and parts[0].startswith("host-") else "us-west-2"


def arc_states(to: Role, arc: Any) -> list[dict[str, str]]:
    """Target region's control On, the other Off. Pure."""
    on = arc.dr_control_arn if to == "dr" else arc.primary_control_arn
    off = arc.primary_control_arn if to == "dr" else arc.dr_control_arn
    return [
        {"RoutingControlArn": on, "RoutingControlState": "On"},
        {"RoutingControlArn": off, "RoutingControlState": "Off"},
    ]


def flip_arc(cfg: Config, to: Role, *, client_for: Any = None) -> StepResult:
    """Set the routing controls through the first ARC cluster endpoint that answers (a data
    plane call). ``client_for`` makes the client of an endpoint (tests pass fakes)."""
    arc = cfg.dns.arc
    assert arc is not None  # the config validator requires it for this strategy
    states = arc_states(to, arc)
    errors = []
    for endpoint in arc.cluster_endpoints:  # any one healthy endpoint will do
        client = (client_for or (lambda e: arc_client(cfg, e)))(endpoint)
        try:
            client.update_routing_control_states(UpdateRoutingControlStateEntries=states)
            seen = {
                s["RoutingControlArn"]: client.get_routing_control_state(
                    RoutingControlArn=s["RoutingControlArn"]
                )["RoutingControlState"]
                for s in states
            }
        except Exception as exc:
            errors.append(f"{endpoint}: {type(exc).__name__}: {exc}")
            continue
        wrong = [
            s["RoutingControlArn"]
            for s in states
            if seen[s["RoutingControlArn"]] != s["RoutingControlState"]
        ]
        if wrong:
            raise StepFailed(f"routing controls read back in the wrong state: {', '.join(wrong)}")
        return StepResult(
            changes=[
                updated(
                    "arc:routing-control",
                    st["RoutingControlArn"].split("/")[-1],
                    "global",
                    {},
                    {"state": st["RoutingControlState"]},
                )
                for st in states
            ],
            applied=True,
            detail=f"routing controls switched to {to} via {endpoint}",
        )
    raise StepFailed("no ARC cluster endpoint answered: " + "; ".join(errors))
