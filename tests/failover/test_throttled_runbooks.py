"""Every runbook completes under 30 % throttling on every service, in both regions: a
throttled answer is retried like any transient error, never taken for a dark region or a
failed step. (Provision under throttling: tests/provision/test_throttling_adoption.py;
failover and failback: tests/failover/test_static_stability.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.testing import CONFIG, Stack

pytestmark = [pytest.mark.e2e]


def test_drills_audit_redrive_deploy_and_rollback_complete_under_30_percent_throttling(
    stack: Stack,
) -> None:
    from flows.audit import audit
    from flows.deploy import deploy, rollback
    from flows.drills import backup_drill, game_day
    from flows.readiness import readiness_drill
    from flows.redrive import redrive
    from sandbox.testing import push

    push(stack.cfg, "web", "2.0.0")
    stack.control.set_faults({"kind": "throttle", "rate": 0.3}, seed=7)
    reports: dict[str, dict[str, Any]] = {}
    try:
        reports["drill-readiness"] = readiness_drill(config=CONFIG)
        reports["audit"] = audit(config=CONFIG)
        reports["redrive"] = redrive(config=CONFIG, queue="orders", approved=True)
        reports["deploy"] = deploy(
            config=CONFIG, service="web", tag="2.0.0", approved=True, timeout_s=120
        )
        reports["rollback"] = rollback(config=CONFIG, service="web", approved=True, timeout_s=120)
        reports["backup-drill"] = backup_drill(config=CONFIG)
        reports["game-day"] = game_day(config=CONFIG, yes=True, recovery_timeout_s=120)
    finally:
        stack.control.clear_faults()
    throttled = stack.control.stats()["faults"]
    assert throttled, "no throttling was injected"
    for name, report in reports.items():
        assert report["outcome"] == "succeeded", f"{name}: {report.get('error')}"
        assert not [n for n in report["notes"] if "does not answer" in n], (name, report["notes"])
    # The game day injected both faults and saw everything recover.
    assert reports["game-day"]["metrics"]["cache_failover"] == "ok"
    assert "database_recovery_seconds" in reports["game-day"]["metrics"]


def test_the_region_drill_and_destroy_complete_under_30_percent_throttling(
    stack: Stack,
) -> None:
    from flows.destroy import destroy
    from flows.region_drill import region_drill

    stack.control.set_faults({"kind": "throttle", "rate": 0.3}, seed=11)
    reports: dict[str, dict[str, Any]] = {}
    try:
        reports["drill-region"] = region_drill(config=CONFIG, approved=True, reason="throttled")
        # The test's own reads are not under test: they look at the emulator unthrottled.
        stack.control.clear_faults()
        home = (stack.answers(), stack.db("primary").get("ReadReplicaSourceDBInstanceIdentifier"))
        alb = stack.alb_dns("primary").lower()
        stack.control.set_faults({"kind": "throttle", "rate": 0.3}, seed=13)
        reports["destroy"] = destroy(config=CONFIG, yes=True, disable_deletion_protection=True)
    finally:
        stack.control.clear_faults()
    throttled = stack.control.stats()["faults"]
    assert throttled, "no throttling was injected"

    for name, report in reports.items():
        assert report["outcome"] == "succeeded", f"{name}: {report.get('error')}"
        assert not [n for n in report["notes"] if "does not answer" in n], (name, report["notes"])
    # The region drill went out and back: home, losing nothing; then destroy took it all.
    assert reports["drill-region"]["metrics"]["rpo_seconds"] == 0
    assert home[0] == [alb] and not home[1]
