"""Failover through a real us-east-1 event: the primary region dark for every service, Route 53's
control plane and STS included; a busy (throttled) region that is not dark; ARC routing
controls; the record-rewriting fallback. End to end on the sandbox, state read back with plain
boto3 and through Route 53's data plane as the sandbox evaluates it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from configs.names import names_for
from flows.failover import failback, failover
from sandbox.testing import CONFIG, ROOT, Stack, plain
from tasks.core.retry import wait_for
from tests.failover.test_failover_adopted import NAMES, RUNNING, every_name
from tests.failover.test_failover_adopted import adopted as adopted  # the fixture
from tests.failover.test_failover_e2e import assert_failed_over, assert_records_rewritten
from tests.failover.test_real_api_calls import ARC

pytestmark = [pytest.mark.e2e]

EAST = "us-east-1"
CONFIG_COUNTS = {"web": 2, "worker": 1}  # configs/sandbox.yaml's desired counts


def dark(stack: Stack, *, services: list[str] | None = None) -> None:
    """The primary region does not answer: every service (Route 53 and STS included) unless
    ``services`` names some."""
    stack.control.set_faults(
        {"kind": "down", "regions": [EAST], "services": services or [], "hang_seconds": 2}
    )


def requests_to(stack: Stack, region: str) -> dict[str, int]:
    return {
        k: v for k, v in stack.control.stats()["requests"].items() if k.startswith(f"{region} ")
    }


def findings(report: dict[str, Any]) -> dict[str, str]:
    """readiness notes as {check: 'status — detail'}."""
    out = {}
    for note in report["notes"]:
        if note.startswith("readiness "):
            check, rest = note.removeprefix("readiness ").split(": ", 1)
            out[check] = rest
    return out


def test_a_primary_region_fully_dark_fails_over_through_the_data_plane(stack: Stack) -> None:
    before = requests_to(stack, EAST)
    dark(stack)
    try:
        report = failover(config=CONFIG, approved=True, reason="us-east-1 is dark")
        during = requests_to(stack, EAST)
        # Resolvers still answer (Route 53's data plane), and they answer DR.
        assert stack.answers() == [stack.alb_dns("dr").lower()]
    finally:
        stack.control.clear_faults()

    assert report["outcome"] == "succeeded", report["error"]
    assert_failed_over(stack, {"web": 2, "worker": 1}, fenced=False)
    assert report["metrics"]["fencing"].startswith("skipped:")
    assert "does not answer" in report["metrics"]["fencing"]
    # The primary was asked once: the probe (STS, RDS, ECS, Route 53), nothing else.
    asked = {k: during.get(k, 0) - before.get(k, 0) for k in during}
    assert sum(asked.values()) == 4, asked
    # Readiness: each check pass / fail / unknown with its reason; the dark ones unknown.
    seen = findings(report)
    assert seen["secret"].startswith("unknown") and "does not answer" in seen["secret"]
    assert seen["dns"].startswith("unknown") and "control plane" in seen["dns"]
    assert seen["primary-region"].startswith("unknown")
    for check in ("dr-database", "dr-services", "dr-image", "dr-load-balancer", "dns-switch"):
        assert seen[check].startswith("pass"), (check, seen[check])
    assert report["metrics"]["rto_seconds"] <= report["metrics"]["wall_seconds"]
    changed = {(c["resource"], c["region"]) for c in report["changes"]}
    assert ("cloudwatch:metric", stack.cfg.regions.dr) in changed
    assert ("ecs:service", stack.cfg.regions.dr) in changed
    # Back on the air, Route 53's own API says the same: the switch holds.
    assert stack.test_dns_answer() == [stack.alb_dns("dr").lower()]


def test_throttling_in_both_regions_changes_no_decision(stack: Stack) -> None:
    stack.control.set_faults({"kind": "throttle", "rate": 0.3}, seed=12)
    try:
        over = failover(config=CONFIG, approved=True, reason="drill under load")
        back = failback(config=CONFIG, approved=True, reason="home again")
    finally:
        stack.control.clear_faults()
    assert stack.control.stats()["faults"], "no throttling was injected"

    assert over["outcome"] == "succeeded", over["error"]
    assert back["outcome"] == "succeeded", back["error"]
    for report in (over, back):
        assert not [n for n in report["notes"] if "does not answer" in n], report["notes"]
        assert "fencing" not in report["metrics"]  # the primary answered: fenced
    assert stack.answers() == [stack.alb_dns("primary").lower()]
    primary = stack.db("primary")
    assert not primary.get("ReadReplicaSourceDBInstanceIdentifier")


def test_a_rerun_says_what_was_already_done(stack: Stack) -> None:
    first = failover(config=CONFIG, approved=True)
    again = failover(config=CONFIG, approved=True)
    assert first["changes"] and again["changes"] == []
    done = again["metrics"]["already_done"]
    assert "send traffic to dr" in done and "scale dr web to 2" in done


def arc_config(tmp_path: Path) -> str:
    data = yaml.safe_load((ROOT / CONFIG).read_text())
    data["dns"] = {"strategy": "arc", "arc": ARC}
    path = tmp_path / "arc.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_arc_routing_controls_flip_through_a_cluster_endpoint_with_the_primary_dark(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto has no ARC: the routing-control data plane is a Stubber checking AWS's shapes."""
    from tasks.runbooks.failover import readiness, traffic_switch

    arc = boto3.client(
        "route53-recovery-cluster",
        region_name="us-west-2",
        endpoint_url=ARC["cluster_endpoints"][1],
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    stub = Stubber(arc)
    for arn, state in ((ARC["primary_control_arn"], "On"), (ARC["dr_control_arn"], "Off")):
        stub.add_response(
            "get_routing_control_state",
            {"RoutingControlArn": arn, "RoutingControlState": state},
            {"RoutingControlArn": arn},
        )
    states = traffic_switch.arc_states("dr", _arc(tmp_path))
    stub.add_response(
        "update_routing_control_states", {}, {"UpdateRoutingControlStateEntries": states}
    )
    for s in states:
        stub.add_response(
            "get_routing_control_state",
            {
                "RoutingControlArn": s["RoutingControlArn"],
                "RoutingControlState": s["RoutingControlState"],
            },
            {"RoutingControlArn": s["RoutingControlArn"]},
        )
    monkeypatch.setattr(traffic_switch, "arc_client", lambda _cfg, _endpoint: arc)
    monkeypatch.setattr(readiness, "arc_client", lambda _cfg, _endpoint: arc)
    dark(stack)
    try:
        with stub:
            report = failover(config=arc_config(tmp_path), approved=True, reason="arc")
            stub.assert_no_pending_responses()
    finally:
        stack.control.clear_faults()
    assert report["outcome"] == "succeeded", report["error"]
    assert_failed_over_without_dns(stack)
    assert report["metrics"]["fencing"].startswith("skipped:")
    arc_changes = [c for c in report["changes"] if c["resource"] == "arc:routing-control"]
    assert len(arc_changes) == 2


def _arc(tmp_path: Path) -> Any:
    from configs import load_config

    return load_config(arc_config(tmp_path)).dns.arc


def assert_failed_over_without_dns(stack: Stack) -> None:
    db = stack.db("dr")
    assert db["DBInstanceStatus"] == "available"
    assert not db.get("ReadReplicaSourceDBInstanceIdentifier")
    for svc, n in {"web": 2, "worker": 1}.items():
        dr = stack.service("dr", svc)
        assert (dr["desiredCount"], dr["runningCount"]) == (n, n)


# -- a stack built elsewhere ---------------------------------------------------------------
def switch_names() -> list[str]:
    ref = NAMES["health_check"]
    return [f"{ref}-switch", f"{ref}-alarm"]


def test_an_adopted_stack_prepared_ahead_fails_over_with_the_primary_fully_dark(
    adopted: Stack, tmp_path: Path
) -> None:
    from tests.failover.test_failover_adopted import DR_NAMES

    path = str(tmp_path / "adopted.yaml")
    cfg = adopted.cfg
    before = sorted(every_name(cfg))
    planned = failover(config=path, prepare=True, plan=True)
    assert planned["outcome"] == "planned" and planned["changes"]
    assert sorted(every_name(cfg)) == before  # a plan changes nothing
    prepared = failover(config=path, prepare=True)
    assert {c["resource"] for c in prepared["changes"]} == {
        "cloudwatch:alarm",
        "route53:health-check",
        "route53:record",
    }
    assert failover(config=path, prepare=True)["changes"] == []  # the second run: nothing
    after = every_name(cfg)
    assert sorted(after) == sorted([*before, *switch_names()])
    assert not [n for n in after if cfg.stack in n], after  # named after the stack's own check
    wait_for(  # the Terraform stack up: the primary's web tasks behind its load balancer
        lambda: adopted.service("primary", "web")["runningCount"],
        until=lambda n: n == RUNNING["primary"]["web"],
        what="primary web running",
        timeout_s=30,
    )
    assert adopted.answers() == [adopted.alb_dns("primary").lower()]

    dark(adopted)
    try:
        report = failover(config=path, approved=True, reason="us-east-1 is dark")
        assert adopted.answers() == [adopted.alb_dns("dr").lower()]
    finally:
        adopted.control.clear_faults()
    assert report["outcome"] == "succeeded", report["error"]
    # The primary's own counts cannot be read while it is dark: the config's.
    assert_failed_over(adopted, CONFIG_COUNTS, fenced=False)
    assert report["metrics"]["fencing"].startswith("skipped:")
    assert adopted.test_dns_answer() == [adopted.alb_dns("dr").lower()]
    alarm = plain(cfg, "cloudwatch", cfg.regions.dr).describe_alarms(
        AlarmNames=[f"{NAMES['health_check']}-primary-out"]
    )["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    assert DR_NAMES["health_check"] not in every_name(cfg)  # no control-plane call made one


def test_an_adopted_stack_not_prepared_falls_back_to_rewriting_the_records(
    adopted: Stack, tmp_path: Path
) -> None:
    """Only the primary's regional services are dark: Route 53's control plane answers, so
    the records are rewritten."""
    regional = ["ecs", "rds", "application-autoscaling", "elasticloadbalancing", "ecr"]
    dark(adopted, services=[*regional, "secretsmanager", "monitoring", "sts", "dynamodb", "ec2"])
    try:
        report = failover(config=str(tmp_path / "adopted.yaml"), approved=True)
    finally:
        adopted.control.clear_faults()
    assert report["outcome"] == "succeeded", report["error"]
    assert_failed_over(adopted, CONFIG_COUNTS, fenced=False)
    assert_records_rewritten(adopted)
    seen = findings(report)
    assert seen["dns-switch"].startswith("warn") and "rewriting" in seen["dns-switch"]
    assert names_for(adopted.cfg, "dr").health_check_reference in every_name(adopted.cfg)
