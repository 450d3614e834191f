"""Pilot light: the DR region holds the data, the images, the network and the load balancer,
and runs nothing; failover creates the services (with their autoscaling and alarms) while the
database is promoted, failback returns DR to its posture. End to end on the sandbox, state
read back with plain boto3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from configs import ConfigError, resolve_config
from configs.names import names_for
from flows.audit import audit
from flows.deploy import deploy, rollback
from flows.failover import failback, failover, switchover
from flows.provision import provision
from flows.readiness import readiness_drill
from sandbox.testing import CONFIG, ROOT, Stack, push
from tasks.resources.alarms import desired_alarms
from tests.failover.conftest import Build
from tests.failover.test_failover_e2e import assert_failed_over
from tests.support import posture_config

pytestmark = [pytest.mark.e2e]

EAST = "us-east-1"


def pilot_config(tmp_path: Path, **database: Any) -> Path:
    return posture_config(tmp_path, "pilot_light", **database)


@pytest.fixture
def pilot(tmp_path: Path, build: Build) -> tuple[Stack, str]:
    """A fresh account provisioned as a pilot light, images in both regions."""
    return build(pilot_config(tmp_path))


def dr_services(stack: Stack) -> dict[str, dict[str, Any]]:
    """The DR region's ACTIVE services, by config name."""
    names = names_for(stack.cfg, "dr")
    found = stack.client("ecs", "dr").describe_services(
        cluster=names.cluster, services=[names.service("web"), names.service("worker")]
    )["services"]
    by_name = {s["serviceName"]: s for s in found if s.get("status") == "ACTIVE"}
    return {
        svc: by_name[names.service(svc)]
        for svc in ("web", "worker")
        if names.service(svc) in by_name
    }


def dr_alarms(stack: Stack) -> list[str]:
    """The DR app's alarms (the DNS switch's alarm lives there in every posture)."""
    wanted = sorted(desired_alarms(stack.cfg, "dr", "-", "-"))
    alarms = stack.client("cloudwatch", "dr").describe_alarms(AlarmNames=wanted)
    return [a["AlarmName"] for a in alarms["MetricAlarms"]]


def test_the_posture_is_validated(tmp_path: Path) -> None:
    assert resolve_config(str(pilot_config(tmp_path))).pilot_light
    with pytest.raises(ConfigError, match="dr_replica"):
        resolve_config(str(pilot_config(tmp_path, dr_replica=False)))
    data = yaml.safe_load((ROOT / CONFIG).read_text())
    data["dr"] = {"posture": "lukewarm"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="posture"):
        resolve_config(str(bad))


def test_pilot_light_fails_over_and_back_to_its_posture(pilot: tuple[Stack, str]) -> None:
    stack, path = pilot
    dr = names_for(stack.cfg, "dr")
    # Provision left DR running nothing, with what a move needs standing there.
    assert dr_services(stack) == {}
    assert dr_alarms(stack) == []
    ecs = stack.client("ecs", "dr")
    for svc in ("web", "worker"):
        assert ecs.list_task_definitions(familyPrefix=dr.task_family(svc))["taskDefinitionArns"]
    assert stack.alb_dns("dr")
    assert stack.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")
    again = provision(config=path, plan=True)
    assert again["changes"] == [], again["changes"]
    # The readiness drill and the audit find a pilot light as it should be.
    drill = readiness_drill(config=path)
    assert drill["outcome"] == "succeeded", drill.get("error")
    assert audit(config=path)["outcome"] == "succeeded"

    # The plan says what the move creates; readiness passes on task definitions.
    planned = failover(config=path, plan=True)
    assert planned["outcome"] == "planned", planned.get("error")
    creates = {(c["resource"], c["name"]) for c in planned["changes"] if c["action"] == "create"}
    assert ("ecs:service", dr.service("web")) in creates
    assert ("ecs:service", dr.service("worker")) in creates
    assert any(r == "cloudwatch:alarm" for r, _ in creates)
    assert any("pilot light" in n for n in planned["notes"] if n.startswith("readiness dr-"))

    over = failover(config=path, approved=True, reason="pilot light drill")
    assert over["outcome"] == "succeeded", over.get("error")
    assert_failed_over(stack)  # DR writable, web 2 / worker 1 running, DNS answers DR
    assert dr_alarms(stack)
    steps = {s["step"] for s in over["steps"]}
    assert {"ensure dr web service", "ensure dr worker service", "ensure dr alarms"} <= steps
    # The services were created while the database was promoted, not after.
    by_step = {s["step"]: s for s in over["steps"]}
    promote = next(s for s in over["steps"] if s["step"].startswith("promote"))
    assert by_step["ensure dr web service"]["start"] < promote["end"]

    back = failback(config=path, approved=True, reason="home")
    assert back["outcome"] == "succeeded", back.get("error")
    assert stack.answers() == [stack.alb_dns("primary").lower()]
    assert dr_services(stack) == {}, "DR back to its posture: no services"
    assert dr_alarms(stack) == []
    assert stack.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")
    settled = provision(config=path, plan=True)
    assert settled["changes"] == [], settled["changes"]


def test_pilot_light_fails_over_with_the_primary_region_dark(pilot: tuple[Stack, str]) -> None:
    assert_fails_over_in_the_dark(*pilot)


def assert_fails_over_in_the_dark(stack: Stack, path: str) -> None:
    """With us-east-1 dark, Route 53's control plane and STS included: DR serves, unfenced."""
    stack.control.set_faults({"kind": "down", "regions": [EAST], "hang_seconds": 2})
    try:
        over = failover(config=path, approved=True, reason="us-east-1 is dark")
        answers = stack.answers()
    finally:
        stack.control.clear_faults()
    assert over["outcome"] == "succeeded", over.get("error")
    assert_failed_over(stack, fenced=False)
    assert answers == [stack.alb_dns("dr").lower()]
    assert over["metrics"]["fencing"].startswith("skipped:")


def test_a_deploy_and_a_rollback_keep_the_dark_dr_revisions_current(
    pilot: tuple[Stack, str],
) -> None:
    stack, path = pilot
    dr = names_for(stack.cfg, "dr")
    ecs = stack.client("ecs", "dr")

    def newest_dr_image() -> str:
        td = ecs.describe_task_definition(taskDefinition=dr.task_family("web"))["taskDefinition"]
        return str(td["containerDefinitions"][0]["image"])

    before = newest_dr_image()
    digest = push(stack.cfg, "web", "2.0.0")
    report = deploy(config=path, service="web", tag="2.0.0", approved=True, timeout_s=120)
    assert report["outcome"] == "succeeded", report.get("error")
    assert dr_services(stack) == {}, "a deploy starts nothing in a pilot-light region"
    assert newest_dr_image().endswith(f"@{digest}")
    assert newest_dr_image().startswith(f"{stack.cfg.account_id}.dkr.ecr.{dr.region}.")
    assert failover(config=path, plan=True)["outcome"] == "planned"

    # A rollback puts the DR revision a move would start back on the primary's image.
    back = rollback(config=path, service="web", approved=True, timeout_s=120)
    assert back["outcome"] == "succeeded", back.get("error")
    assert dr_services(stack) == {}
    assert newest_dr_image().split("/", 1)[1] == before.split("/", 1)[1]
    assert failover(config=path, plan=True)["outcome"] == "planned"


def test_a_switchover_lights_dr_up_and_failback_puts_it_out(pilot: tuple[Stack, str]) -> None:
    stack, path = pilot
    over = switchover(config=path, approved=True, reason="planned move")
    assert over["outcome"] == "succeeded", over.get("error")
    assert over["metrics"]["rpo_seconds"] == 0
    running = dr_services(stack)
    assert {svc: s["runningCount"] for svc, s in running.items()} == {"web": 2, "worker": 1}
    assert stack.answers() == [stack.alb_dns("dr").lower()]

    back = failback(config=path, approved=True, reason="home")
    assert back["outcome"] == "succeeded", back.get("error")
    assert dr_services(stack) == {} and dr_alarms(stack) == []
    assert provision(config=path, plan=True)["changes"] == []
