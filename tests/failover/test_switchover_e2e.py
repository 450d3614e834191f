"""The planned moves end to end on the sandbox: a switchover to DR and a failback home, both
losing nothing. Writes are "in flight" (the sandbox's replicas lag while any service of their
source region wants tasks) until the fence: each promotion must wait for the lag to reach 0."""

from __future__ import annotations

from typing import Any

import pytest

from configs.errors import DeadlineExceeded, Refused
from flows.failover import failback, failover, switchover
from sandbox.testing import CONFIG, Stack

pytestmark = [pytest.mark.e2e]


def order(report: dict[str, Any], *names: str) -> list[str]:
    """The named steps in the order they started (each must be in the report)."""
    started = {s["step"]: s["start"] for s in report["steps"]}
    missing = [n for n in names if n not in started]
    assert not missing, f"steps missing: {missing}; got {sorted(started)}"
    return sorted(names, key=lambda n: started[n])


def finished(report: dict[str, Any], name: str) -> str:
    return str(next(s["end"] for s in report["steps"] if s["step"] == name))


def started(report: dict[str, Any], name: str) -> str:
    return str(next(s["start"] for s in report["steps"] if s["step"] == name))


def test_switchover_waits_for_lag_0_after_the_fence_then_failback_the_same_way(
    stack: Stack,
) -> None:
    from flows.provision import provision

    stack.control.set_replica_lag(7.0, while_writers_run=True)

    moved = switchover(config=CONFIG, approved=True, reason="quarterly rotation")

    assert moved["outcome"] == "succeeded", moved["error"]
    # Fence → lag 0 → promote, and the promotion only after the lag was confirmed 0.
    assert order(
        moved, "fence primary services", "confirm dr replica lag 0", "switch dr database to writer"
    ) == ["fence primary services", "confirm dr replica lag 0", "switch dr database to writer"]
    assert finished(moved, "fence primary services") <= started(moved, "confirm dr replica lag 0")
    assert finished(moved, "confirm dr replica lag 0") <= started(
        moved, "switch dr database to writer"
    )
    # DNS went to DR once DR ran its tasks, before the primary was fenced.
    assert order(moved, "scale dr web to 2", "send traffic to dr", "fence primary services") == [
        "scale dr web to 2",
        "send traffic to dr",
        "fence primary services",
    ]
    metrics = moved["metrics"]
    assert metrics["rpo_seconds"] == 0 and "lag 0" in metrics["rpo_verified"]
    assert metrics["rto_seconds"] > 0 and metrics["write_pause_seconds"] >= 2.0  # the quiet window
    # The emulator's state: DR writes, the primary replicates it, DNS answers DR.
    dr, primary = stack.db("dr"), stack.db("primary")
    assert not dr.get("ReadReplicaSourceDBInstanceIdentifier") and dr["MultiAZ"] is True
    assert primary["ReadReplicaSourceDBInstanceIdentifier"] == dr["DBInstanceArn"]
    assert stack.answers() == [stack.alb_dns("dr").lower()]
    for svc, n in (("web", 2), ("worker", 1)):
        assert stack.service("dr", svc)["runningCount"] == n
        assert stack.service("primary", svc)["desiredCount"] == 0

    # Writes in flight again, now from DR: failback waits for them the same way.
    back = failback(config=CONFIG, approved=True, reason="rotation done")

    assert back["outcome"] == "succeeded", back["error"]
    assert order(
        back,
        "scale primary web to 2",
        "fence dr services",
        "confirm primary replica lag 0",
        "switch primary database to writer",
    ) == [
        "scale primary web to 2",
        "fence dr services",
        "confirm primary replica lag 0",
        "switch primary database to writer",
    ]
    assert finished(back, "scale primary web to 2") <= started(back, "fence dr services")
    assert back["metrics"]["rpo_seconds"] == 0
    primary, dr = stack.db("primary"), stack.db("dr")
    assert not primary.get("ReadReplicaSourceDBInstanceIdentifier")
    assert dr["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]
    assert stack.answers() == [stack.alb_dns("primary").lower()]
    for svc, n in (("web", 2), ("worker", 1)):
        assert stack.service("primary", svc)["runningCount"] == n
        assert stack.service("dr", svc)["desiredCount"] == 1  # warm standby again
    # Home again, the stack matches its config.
    assert provision(config=CONFIG, plan=True)["changes"] == []


def test_lag_that_never_drains_stops_before_the_promotion(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica still lagging after the fence (writes the fence did not stop) is never
    promoted: the run fails naming the lag; the DR database is still a replica; a re-run once
    the lag drains completes."""
    stack.control.set_replica_lag(4.0)  # lags whatever the services do
    from configs import resolve_config

    cfg = resolve_config(CONFIG)
    short = cfg.model_copy(
        update={"failover": cfg.failover.model_copy(update={"promote_timeout_seconds": 3})}
    )
    monkeypatch.setattr("flows.failover.resolve_config", lambda _c: short)

    with pytest.raises(DeadlineExceeded, match="lag 4s"):
        switchover(config=CONFIG, approved=True, reason="test")
    assert stack.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")

    stack.control.set_replica_lag(0.0)
    again = switchover(config=CONFIG, approved=True, reason="test")
    assert again["outcome"] == "succeeded", again["error"]
    assert not stack.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")


def test_switchover_is_refused_when_the_primary_is_dark_and_when_already_moved(
    stack: Stack,
) -> None:
    stack.control.set_faults({"kind": "down", "regions": ["us-east-1"], "hang_seconds": 2})
    with pytest.raises(Refused, match="does not answer: a planned move stops its writers"):
        switchover(config=CONFIG, approved=True)
    stack.control.clear_faults()
    assert stack.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")  # nothing moved

    failover(config=CONFIG, approved=True)
    with pytest.raises(Refused, match="already runs in us-west-2"):
        switchover(config=CONFIG, approved=True)


def test_region_drill_goes_out_and_back_losing_nothing_and_leaves_the_stack_as_found(
    stack: Stack,
) -> None:
    from flows.provision import provision
    from flows.region_drill import region_drill

    readers = [d for d in all_dbs(stack, "primary") if "-ro" in d["DBInstanceIdentifier"]]
    assert readers, "the sandbox config has in-region readers"

    stack.control.set_replica_lag(6.0, while_writers_run=True)
    report = region_drill(config=CONFIG, approved=True)

    assert report["outcome"] == "succeeded", report["error"]
    m = report["metrics"]
    assert m["rpo_seconds"] == 0 and m["rto_out_seconds"] > 0 and m["rto_back_seconds"] > 0
    assert m["write_pause_out_seconds"] >= 2.0 and m["write_pause_back_seconds"] >= 2.0
    # As found: the primary writes, its readers and the DR replica copy it, traffic is home,
    # DR is a warm standby, and nothing set aside is left behind.
    primary = stack.db("primary")
    assert not primary.get("ReadReplicaSourceDBInstanceIdentifier")
    assert stack.db("dr")["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]
    for d in all_dbs(stack, "primary"):
        if "-ro" in d["DBInstanceIdentifier"]:
            assert (
                d["ReadReplicaSourceDBInstanceIdentifier"].split(":")[-1]
                == (primary["DBInstanceIdentifier"])
            )
    left = [
        d["DBInstanceIdentifier"]
        for role in ("primary", "dr")
        for d in all_dbs(stack, role)
        if "-retired-" in d["DBInstanceIdentifier"]
    ]
    assert left == []
    assert stack.answers() == [stack.alb_dns("primary").lower()]
    assert stack.service("dr", "web")["desiredCount"] == 1
    assert provision(config=CONFIG, plan=True)["changes"] == []

    # Not ready (lag over the 30 s budget): refused, nothing moved.
    stack.control.set_replica_lag(45.0)
    with pytest.raises(Refused, match=r"runs only on a ready stack.*replica-lag"):
        region_drill(config=CONFIG, approved=True)
    assert stack.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")
    assert stack.answers() == [stack.alb_dns("primary").lower()]


def all_dbs(stack: Stack, role: str) -> list[dict[str, Any]]:
    return list(stack.client("rds", role).describe_db_instances()["DBInstances"])  # type: ignore[arg-type]
