"""Failover and failback end to end on the sandbox; state read back with plain boto3."""

from __future__ import annotations

import pytest

from flows.failover import failover
from sandbox.testing import CONFIG, Stack

pytestmark = [pytest.mark.e2e]


def assert_failed_over(
    stack: Stack, counts: dict[str, int] | None = None, *, fenced: bool = True
) -> None:
    """DR writable and hardened, at ``counts`` (the primary's: web 2, worker 1 unless given);
    the primary at 0 (when ``fenced``); Route 53 answering the DR ALB."""
    db = stack.db("dr")
    assert db["DBInstanceStatus"] == "available"
    assert not db.get("ReadReplicaSourceDBInstanceIdentifier")
    assert (
        db["MultiAZ"] is True
        and db["BackupRetentionPeriod"] == stack.cfg.database.backup_retention_days
    )
    for svc, n in (counts or {"web": 2, "worker": 1}).items():
        dr = stack.service("dr", svc)
        assert (dr["desiredCount"], dr["runningCount"]) == (n, n)
        if fenced:
            assert stack.service("primary", svc)["desiredCount"] == 0
    assert stack.answers() == [stack.alb_dns("dr").lower()]


def assert_records_rewritten(stack: Stack) -> None:
    """The record-rewriting fallback's end state: the DR record is the PRIMARY one."""
    records = stack.records()
    assert records["dr"]["Failover"] == "PRIMARY" and records["primary"]["Failover"] == "SECONDARY"
    assert (
        records["dr"]["AliasTarget"]["DNSName"].rstrip(".").lower() == stack.alb_dns("dr").lower()
    )
    assert "HealthCheckId" in records["dr"] and "HealthCheckId" not in records["primary"]


def test_failover_promotes_scales_and_flips(stack: Stack) -> None:
    before = stack.records()
    assert before["primary"]["Failover"] == "PRIMARY"
    assert stack.answers() == [stack.alb_dns("primary").lower()]
    assert stack.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")

    report = failover(config=CONFIG, approved=True, reason="test")

    assert report["outcome"] == "succeeded"
    assert_failed_over(stack)
    assert stack.test_dns_answer() == [stack.alb_dns("dr").lower()]
    # Through the switch provision prepared: the records themselves did not change.
    assert stack.records() == before
    metrics = report["metrics"]
    assert metrics["rto_seconds"] > 0 and metrics["rpo_seconds"] == 1.0
    assert "fencing" not in metrics  # the primary answered: fenced, not skipped
    steps = {s["step"]: s["outcome"] for s in report["steps"]}
    assert steps["promote dr replica"] == "changed" and steps["send traffic to dr"] == "changed"
    # Provision would undo the failover: it refuses until a failback.
    from configs.errors import Refused
    from flows.provision import provision

    with pytest.raises(Refused, match="tierbook failback"):
        provision(config=CONFIG, plan=True)


def test_a_run_stopped_after_promotion_completes_when_run_again(stack: Stack) -> None:
    from tasks.runbooks.failover.database import promote_replica

    promote_replica.fn(stack.cfg, "dr")  # as far as the first run got
    report = failover(config=CONFIG, approved=True)
    assert report["outcome"] == "succeeded"
    assert_failed_over(stack)
    steps = {s["step"]: s for s in report["steps"]}
    assert "already promoted" in steps["promote dr replica"]["detail"]
    again = failover(config=CONFIG, approved=True)  # and a third time: nothing left to do
    assert {s["step"]: s["outcome"] for s in again["steps"]}["send traffic to dr"] == "unchanged"


def test_failback_returns_traffic_and_writes_home_and_leaves_a_fresh_dr_replica(
    stack: Stack,
) -> None:
    from flows.failover import failback
    from flows.provision import provision

    failover(config=CONFIG, approved=True)
    report = failback(config=CONFIG, approved=True, reason="primary healthy again")

    assert report["outcome"] == "succeeded", report["error"]
    primary, dr = stack.db("primary"), stack.db("dr")
    assert primary["DBInstanceStatus"] == "available" and primary["MultiAZ"] is True
    assert not primary.get("ReadReplicaSourceDBInstanceIdentifier")
    assert dr["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]
    records = stack.records()
    assert records["primary"]["Failover"] == "PRIMARY" and records["dr"]["Failover"] == "SECONDARY"
    assert stack.answers() == [stack.alb_dns("primary").lower()]
    for svc, n in (("web", 2), ("worker", 1)):
        p = stack.service("primary", svc)
        assert (p["desiredCount"], p["runningCount"]) == (n, n)
        assert stack.service("dr", svc)["desiredCount"] == 1  # warm standby again
    retired = [
        d["DBInstanceIdentifier"]
        for role in ("primary", "dr")
        for d in stack.client("rds", role).describe_db_instances()["DBInstances"]
        if "-retired-" in d["DBInstanceIdentifier"]
    ]
    assert len(retired) == 2
    # Home again, the stack matches its config: provision has nothing to change.
    assert provision(config=CONFIG, plan=True)["changes"] == []
