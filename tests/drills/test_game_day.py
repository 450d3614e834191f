"""End to end: the AZ game day on a provisioned stack, its refusals and its stop alarm.

The stop-alarm abort test holds the database in ``rebooting`` (a long sandbox timing), so the
game day is still waiting for recovery when the alarm goes to ALARM: the order is fixed by the
emulator's state, not by sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from configs.models import Config
from configs.names import names_for
from flows.drills import game_day
from sandbox.control import SandboxControl
from sandbox.testing import CONFIG, ROOT, TEST_TIMINGS, plain
from tests.support import watch

STOP_ALARM = "shop-sandbox-web-5xx"


def db_status(cfg: Config) -> str:
    db = plain(cfg, "rds").describe_db_instances(DBInstanceIdentifier="shop-sandbox-db")
    return str(db["DBInstances"][0]["DBInstanceStatus"])


def stopped_tasks(cfg: Config) -> list[str]:
    ecs = plain(cfg, "ecs")
    return [
        arn
        for svc in ("shop-sandbox-web", "shop-sandbox-worker")
        for arn in ecs.list_tasks(cluster="shop-sandbox", serviceName=svc, desiredStatus="STOPPED")[
            "taskArns"
        ]
    ]


def wait_steady(cfg: Config) -> None:
    """Until the database is available and every service runs its desired count (the
    emulator replaces stopped tasks on its own)."""
    ecs = plain(cfg, "ecs")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        services = ecs.describe_services(
            cluster="shop-sandbox", services=["shop-sandbox-web", "shop-sandbox-worker"]
        )["services"]
        if db_status(cfg) == "available" and all(
            s["runningCount"] == s["desiredCount"] for s in services
        ):
            return
        time.sleep(0.1)
    raise AssertionError("the stack did not settle")


def set_alarm(cfg: Config, state: str) -> None:
    plain(cfg, "cloudwatch").set_alarm_state(
        AlarmName=STOP_ALARM, StateValue=state, StateReason="game day test"
    )


def test_plan_lists_the_faults_and_injects_none(provisioned: Config) -> None:
    cfg = provisioned
    wait_steady(cfg)  # provision ends before the emulator has started the services' tasks
    ecs = plain(cfg, "ecs")
    arns = ecs.list_tasks(cluster="shop-sandbox", serviceName="shop-sandbox-web")["taskArns"]
    web = ecs.describe_tasks(cluster="shop-sandbox", tasks=arns)["tasks"]
    az = web[0]["availabilityZone"]
    before = set(stopped_tasks(cfg))
    calls = watch(cfg)
    out = CliRunner().invoke(
        app, ["drill", "gameday", "-c", CONFIG, "--az", az, "--plan", "-o", "json"]
    )
    assert out.exit_code == 0, out.output
    assert calls.seen == []
    report = json.loads(out.output)
    assert report["outcome"] == "planned"
    planned = {(c["resource"], c["name"]) for c in report["changes"]}
    assert ("rds:instance", "shop-sandbox-db") in planned
    assert ("elasticache:replication-group", "shop-sandbox-cache") in planned
    in_az = {t["taskArn"].rsplit("/", 1)[-1] for t in web if t["availabilityZone"] == az}
    assert in_az <= {name for kind, name in planned if kind == "ecs:task"}
    assert all(c["action"] == "invoke" for c in report["changes"])
    assert db_status(cfg) == "available"
    assert set(stopped_tasks(cfg)) == before


def test_game_day_fails_over_stops_one_az_and_times_recovery(provisioned: Config) -> None:
    cfg = provisioned
    ecs = plain(cfg, "ecs")
    arns = ecs.list_tasks(cluster="shop-sandbox", serviceName="shop-sandbox-web")["taskArns"]
    web = ecs.describe_tasks(cluster="shop-sandbox", tasks=arns)["tasks"]
    az = web[0]["availabilityZone"]
    in_az = [t["taskArn"] for t in web if t["availabilityZone"] == az]

    report = game_day(config=CONFIG, az=az)

    assert report["outcome"] == "succeeded", report["error"]
    m = report["metrics"]
    for key in ("database_recovery_seconds", "web_recovery_seconds", "recovery_seconds"):
        assert isinstance(m[key], float) and m[key] >= 0, key
    assert m["tasks_stopped"] >= len(in_az)
    # TestFailover (which the sandbox answers as AWS does, moto lacking it) started
    assert m["cache_failover"] == "ok" and "cache_recovery_seconds" in m
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["start cache failover"]["detail"] == "TestFailover on shop-sandbox-cache"
    assert steps["force database failover"]["outcome"] == "ok"
    # the emulator: the web tasks in that AZ were stopped, everything is back
    assert set(in_az) <= set(stopped_tasks(cfg))
    assert db_status(cfg) == "available"
    for svc in ecs.describe_services(
        cluster="shop-sandbox", services=["shop-sandbox-web", "shop-sandbox-worker"]
    )["services"]:
        assert svc["runningCount"] == svc["desiredCount"], svc["serviceName"]


def test_default_az_is_the_busiest_and_is_reported(provisioned: Config) -> None:
    cfg = provisioned
    ecs = plain(cfg, "ecs")
    zones: dict[str, int] = {}
    for svc in ("shop-sandbox-web", "shop-sandbox-worker"):
        arns = ecs.list_tasks(cluster="shop-sandbox", serviceName=svc)["taskArns"]
        for t in ecs.describe_tasks(cluster="shop-sandbox", tasks=arns)["tasks"]:
            zones[t["availabilityZone"]] = zones.get(t["availabilityZone"], 0) + 1
    report = game_day(config=CONFIG)
    assert report["outcome"] == "succeeded", report["error"]
    assert zones[report["metrics"]["az"]] == max(zones.values())
    assert report["metrics"]["tasks_stopped"] == max(zones.values())


def test_an_unsteady_stack_is_refused_before_any_fault(
    provisioned: Config, aws_endpoint: str
) -> None:
    cfg = provisioned
    wait_steady(cfg)
    control = SandboxControl(aws_endpoint)
    control.timings(ecs_task_replace_seconds=600)
    ecs = plain(cfg, "ecs")
    try:
        task = ecs.list_tasks(cluster="shop-sandbox", serviceName="shop-sandbox-web")["taskArns"][0]
        ecs.stop_task(cluster="shop-sandbox", task=task, reason="test: not steady")
        before = set(stopped_tasks(cfg))
        out = CliRunner().invoke(app, ["drill", "gameday", "-c", CONFIG, "-o", "json"])
        assert out.exit_code == 2, out.output
        assert "not in a steady state (web not healthy)" in json.loads(out.output)["error"]
        assert db_status(cfg) == "available"
        assert set(stopped_tasks(cfg)) == before
    finally:
        control.timings(**TEST_TIMINGS)
    wait_steady(cfg)


def variant(tmp_path: Path, **changes: Any) -> str:
    raw = yaml.safe_load((ROOT / CONFIG).read_text())
    raw.update(changes)
    path = tmp_path / "sandbox.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_missing_stop_alarm_or_no_approval_is_refused(provisioned: Config, tmp_path: Path) -> None:
    cfg = provisioned
    before = set(stopped_tasks(cfg))
    drills = yaml.safe_load((ROOT / CONFIG).read_text())["drills"]
    drills["game_day"]["stop_alarms"] = ["shop-sandbox-no-such-alarm"]
    out = CliRunner().invoke(
        app, ["drill", "gameday", "-c", variant(tmp_path, drills=drills), "-o", "json"]
    )
    assert out.exit_code == 2, out.output
    assert "shop-sandbox-no-such-alarm not found" in json.loads(out.output)["error"]

    protected = variant(tmp_path, protected=True)
    out = CliRunner().invoke(app, ["drill", "gameday", "-c", protected, "-o", "json"])
    assert out.exit_code == 2, out.output
    assert "needs approval (--yes)" in json.loads(out.output)["error"]
    assert db_status(cfg) == "available"
    assert set(stopped_tasks(cfg)) == before


def test_unknown_az_is_refused(provisioned: Config) -> None:
    out = CliRunner().invoke(app, ["drill", "gameday", "-c", CONFIG, "--az", "us-east-1z"])
    assert out.exit_code == 2
    assert "us-east-1z" in out.output


def test_a_stop_alarm_already_firing_refuses_before_any_fault(provisioned: Config) -> None:
    cfg = provisioned
    before = set(stopped_tasks(cfg))
    set_alarm(cfg, "ALARM")
    try:
        out = CliRunner().invoke(app, ["drill", "gameday", "-c", CONFIG, "-o", "json"])
    finally:
        set_alarm(cfg, "OK")
    assert out.exit_code == 2, out.output
    assert "already in ALARM" in json.loads(out.output)["error"]
    assert db_status(cfg) == "available"
    assert set(stopped_tasks(cfg)) == before


def task_zones(cfg: Config, svc: str) -> set[str]:
    """The AZs where ``svc`` has a running task."""
    ecs = plain(cfg, "ecs")
    arns = ecs.list_tasks(cluster="shop-sandbox", serviceName=svc, desiredStatus="RUNNING")[
        "taskArns"
    ]
    tasks = ecs.describe_tasks(cluster="shop-sandbox", tasks=arns)["tasks"] if arns else []
    return {t["availabilityZone"] for t in tasks}


def test_no_recovery_within_the_timeout_fails_and_says_what_is_down(
    provisioned: Config, aws_endpoint: str
) -> None:
    cfg = provisioned
    # Both services run as many tasks as the AZs they span (two), a task in every AZ: losing
    # one AZ takes both below their desired count.
    ecs = plain(cfg, "ecs")
    desired = {
        s["serviceName"]: s["desiredCount"]
        for s in ecs.describe_services(
            cluster="shop-sandbox", services=["shop-sandbox-web", "shop-sandbox-worker"]
        )["services"]
    }
    for svc in desired:
        ecs.update_service(
            cluster="shop-sandbox", service=svc, desiredCount=2, forceNewDeployment=True
        )
    wait_steady(cfg)
    shared = task_zones(cfg, "shop-sandbox-web") & task_zones(cfg, "shop-sandbox-worker")
    assert shared, "no AZ runs both services"
    az = sorted(shared)[0]
    control = SandboxControl(aws_endpoint)
    control.timings(ecs_task_replace_seconds=600)
    try:
        out = CliRunner().invoke(
            app,
            ["drill", "gameday", "-c", CONFIG, "--az", az, "--recovery-timeout", "1", "-o", "json"],
        )
        # the emulator: both services are still short of tasks when the game day gives up
        services = ecs.describe_services(
            cluster="shop-sandbox", services=["shop-sandbox-web", "shop-sandbox-worker"]
        )["services"]
    finally:
        control.timings(**TEST_TIMINGS)
    assert out.exit_code == 1, out.output
    error = json.loads(out.output)["error"]
    assert "DeadlineExceeded" in error
    assert "web=down" in error and "worker=down" in error, error
    for svc in services:
        assert svc["runningCount"] < svc["desiredCount"], svc["serviceName"]
    wait_steady(cfg)
    for svc, count in desired.items():
        ecs.update_service(cluster="shop-sandbox", service=svc, desiredCount=count)
    wait_steady(cfg)


# -- --isolate-network ----------------------------------------------------------------------
DENY_ALL = "shop-sandbox-game-day-deny-all"


def az_subnets(cfg: Config, az: str) -> list[str]:
    """The primary VPC's subnets in ``az`` (public, app, data), as the emulator has them."""
    ec2 = plain(cfg, "ec2")
    name = names_for(cfg, "primary").vpc
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "availability-zone", "Values": [az]},
        ]
    )["Subnets"]
    return sorted(s["SubnetId"] for s in subnets)


def acl_of(cfg: Config, subnets: list[str]) -> dict[str, str]:
    """Each subnet's network ACL."""
    acls = plain(cfg, "ec2").describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": subnets}]
    )["NetworkAcls"]
    return {
        a["SubnetId"]: acl["NetworkAclId"]
        for acl in acls
        for a in acl["Associations"]
        if a["SubnetId"] in subnets
    }


def deny_all_acls(cfg: Config) -> list[dict[str, Any]]:
    return list(
        plain(cfg, "ec2").describe_network_acls(
            Filters=[{"Name": "tag:Name", "Values": [DENY_ALL]}]
        )["NetworkAcls"]
    )


def isolation_record(cfg: Config) -> dict[str, Any] | None:
    item = plain(cfg, "dynamodb", cfg.regions.dr).get_item(
        TableName=names_for(cfg).lock_table,
        Key={"lock_id": {"S": f"shop-sandbox/isolation/{cfg.regions.primary}"}},
        ConsistentRead=True,
    )
    return item.get("Item")


def wait_cut(cfg: Config, subnets: list[str], runner: threading.Thread) -> dict[str, str]:
    """Until every subnet is on the drill's deny-all ACL (read while the game day runs)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and runner.is_alive():
        acls = deny_all_acls(cfg)
        if acls and set(acl_of(cfg, subnets).values()) == {acls[0]["NetworkAclId"]}:
            return acl_of(cfg, subnets)
        time.sleep(0.05)
    raise AssertionError("the AZ's subnets never went onto the deny-all ACL")


def assert_restored(cfg: Config, subnets: list[str], before: dict[str, str]) -> None:
    assert acl_of(cfg, subnets) == before
    assert deny_all_acls(cfg) == []
    assert isolation_record(cfg) is None


def in_thread(outcome: dict[str, Any], **params: Any) -> threading.Thread:
    def run() -> None:
        try:
            outcome["report"] = game_day(config=CONFIG, **params)
        except Exception as exc:
            outcome["error"] = exc

    return threading.Thread(target=run)


def test_isolate_network_cuts_the_az_off_during_the_faults_and_restores_it(
    provisioned: Config, aws_endpoint: str
) -> None:
    cfg = provisioned
    wait_steady(cfg)
    az = cfg.network.primary.azs[0]
    subnets = az_subnets(cfg, az)
    assert len(subnets) == 3  # public, app, data
    before = acl_of(cfg, subnets)
    control = SandboxControl(aws_endpoint)
    control.timings(rds_modify_seconds=5)  # the faults last while the cut is read
    outcome: dict[str, Any] = {}
    runner = in_thread(outcome, az=az, isolate_network=True, recovery_timeout_s=120)
    try:
        runner.start()
        during = wait_cut(cfg, subnets, runner)
        (acl,) = deny_all_acls(cfg)
        record = isolation_record(cfg)
        runner.join(timeout=120)
        assert not runner.is_alive()
    finally:
        control.timings(**TEST_TIMINGS)
    # during the faults: every tier's subnet on the one deny-all ACL, tagged, with no rules
    # but the implicit deny, the original ACLs recorded in the DR lock table
    assert set(during.values()) == {acl["NetworkAclId"]}
    assert not acl["IsDefault"] and all(e["RuleAction"] == "deny" for e in acl["Entries"])
    assert {"Key": "component", "Value": "game-day"} in acl["Tags"]
    assert record is not None and record["kind"]["S"] == "isolation"
    assert {k: v["S"] for k, v in record["subnets"]["M"].items()} == before
    report = outcome.get("report")
    assert report is not None, outcome
    assert report["outcome"] == "succeeded", report["error"]
    assert report["metrics"]["subnets_isolated"] == 3
    assert report["metrics"]["subnets_restored"] == 3
    assert_restored(cfg, subnets, before)


def test_a_stop_alarm_aborts_the_isolated_game_day_and_restores_the_network(
    provisioned: Config, aws_endpoint: str
) -> None:
    cfg = provisioned
    wait_steady(cfg)
    az = cfg.network.primary.azs[1]
    subnets = az_subnets(cfg, az)
    before = acl_of(cfg, subnets)
    control = SandboxControl(aws_endpoint)
    control.timings(rds_modify_seconds=20)  # still failing over when the alarm fires
    outcome: dict[str, Any] = {}
    runner = in_thread(outcome, az=az, isolate_network=True, recovery_timeout_s=300)
    try:
        runner.start()
        wait_cut(cfg, subnets, runner)
        set_alarm(cfg, "ALARM")
        runner.join(timeout=120)
        assert not runner.is_alive()
    finally:
        set_alarm(cfg, "OK")
        control.timings(**TEST_TIMINGS)
    exc = outcome.get("error")
    assert exc is not None, outcome
    assert f"stop alarm {STOP_ALARM} in ALARM" in str(exc)
    assert exc.timeline.outcome == "failed"  # type: ignore[attr-defined]
    assert_restored(cfg, subnets, before)
    wait_steady(cfg)


def test_a_cut_left_by_a_killed_run_is_restored_by_a_rerun_and_by_readiness(
    provisioned: Config,
) -> None:
    from flows.readiness import readiness_drill
    from tasks.runbooks.drills.isolation import isolate_az

    cfg = provisioned
    wait_steady(cfg)
    az = cfg.network.primary.azs[0]
    subnets = az_subnets(cfg, az)
    before = acl_of(cfg, subnets)
    for rerun in ("game-day", "readiness"):
        # the cut done and recorded, then the run dies before restoring (nothing restores)
        cut = isolate_az.fn(cfg, az)  # a step outside any run, as a killed run left it
        assert set(acl_of(cfg, subnets).values()) == {cut.outputs["acl"]}
        assert isolation_record(cfg) is not None
        if rerun == "game-day":
            report = game_day(config=CONFIG, az=az)
            assert report["outcome"] == "succeeded", report["error"]
            metrics = report["metrics"]
        else:
            try:
                metrics = readiness_drill(config=CONFIG)["metrics"]
            except Exception as exc:  # a failing readiness check still restores first
                metrics = exc.timeline.metrics  # type: ignore[attr-defined]
        assert metrics["isolation_restored"] == az, rerun
        assert_restored(cfg, subnets, before)
        wait_steady(cfg)


def test_stop_alarm_during_the_game_day_aborts_it(provisioned: Config, aws_endpoint: str) -> None:
    cfg = provisioned
    wait_steady(cfg)
    control = SandboxControl(aws_endpoint)
    control.timings(rds_modify_seconds=120)
    outcome: dict[str, Any] = {}
    runner = in_thread(outcome, recovery_timeout_s=300)
    try:
        runner.start()
        deadline = time.monotonic() + 60
        while db_status(cfg) != "rebooting" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db_status(cfg) == "rebooting"
        set_alarm(cfg, "ALARM")
        runner.join(timeout=120)
        assert not runner.is_alive()
    finally:
        set_alarm(cfg, "OK")
        control.timings(**TEST_TIMINGS)
    exc = outcome.get("error")
    assert exc is not None, outcome
    assert f"stop alarm {STOP_ALARM} in ALARM" in str(exc)
    timeline = exc.timeline  # type: ignore[attr-defined]
    assert timeline.outcome == "failed"
    # aborted while the database was still failing over: no recovery was reported
    assert "database_recovery_seconds" not in timeline.metrics


@pytest.mark.parametrize("flag", ["--az", "--isolate-network"])
def test_cli_lists_gameday_and_backup(flag: str) -> None:
    out = CliRunner().invoke(app, ["drill", "--help"])
    assert out.exit_code == 0
    assert "backup" in out.output and "gameday" in out.output
    assert flag in CliRunner().invoke(app, ["drill", "gameday", "--help"]).output
