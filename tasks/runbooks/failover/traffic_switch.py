"""Sending the app's traffic to one region, by the config's DNS strategy.

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
from tasks.core.changes import StepResult, updated
from tasks.core.retry import wait_for
from tasks.core.steps import step
from tasks.resources.dns import (
    app_records,
    comparable_record,
    ensure_health_check,
    find_dns,
    find_health_check,
    list_records,
)
from tasks.resources.load_balancer import find_load_balancer

OTHER: dict[str, Role] = {"primary": "dr", "dr": "primary"}


def _r53(cfg: Config) -> Any:
    return connect(cfg).client("route53", cfg.regions.primary)


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


@step("send traffic to {to}")
def flip_dns(cfg: Config, to: Role) -> StepResult:
    """Point the app's name at ``to``; waits for INSYNC and reads the records back."""
    if cfg.dns.strategy == "arc":
        return flip_arc(cfg, to)
    if cfg.edge is None:
        return StepResult(skipped="no edge block: no DNS records to change")
    dns = find_dns(cfg)
    lb = load_balancer(cfg, to)
    hc = find_health_check(cfg, to)
    if hc is None:
        hc_id = ensure_health_check.fn(cfg, to, lb["DNSName"]).outputs["health_check_id"]
    else:
        hc_id = hc["Id"]
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
    r53 = _r53(cfg)
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
