"""Every runbook completes under 30 % throttling on every service, in both regions: a
throttled answer is retried like any transient error, never taken for a dark region or a
failed step. (Provision under throttling: tests/provision/test_throttling_adoption.py;
failover and failback: tests/failover/test_static_stability.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.testing import CONFIG, Stack

pytestmark = [pytest.mark.e2e]


def test_every_runbook_completes_under_30_percent_throttling(stack: Stack) -> None:
    from flows.audit import audit
    from flows.deploy import deploy, rollback
    from flows.destroy import destroy
    from flows.drills import backup_drill, game_day
    from flows.readiness import readiness_drill
    from flows.redrive import redrive
    from flows.region_drill import region_drill
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
        reports["drill-region"] = region_drill(config=CONFIG, approved=True, reason="throttled")
        home = (stack.answers(), stack.db("primary").get("ReadReplicaSourceDBInstanceIdentifier"))
        reports["destroy"] = destroy(config=CONFIG, yes=True, disable_deletion_protection=True)
    finally:
        stack.control.clear_faults()
    throttled = stack.control.stats()["faults"]
    assert throttled, "no throttling was injected"

    for name, report in reports.items():
        assert report["outcome"] == "succeeded", f"{name}: {report.get('error')}"
        assert not [n for n in report["notes"] if "does not answer" in n], (name, report["notes"])
    # The game day's own fault calls were among those throttled and retried.
    assert any("TestFailover" in k or "RebootDBInstance" in k for k in throttled), throttled
    # The region drill went out and back: home, losing nothing; then destroy took it all.
    assert reports["drill-region"]["metrics"]["rpo_seconds"] == 0
    assert home[0] == [stack.alb_dns("primary").lower()] and not home[1]
