"""The readiness drill: a scorecard on a healthy stack; a check that turns to fail after the
DR replica is broken is reported and evented, and the drill fails."""

from __future__ import annotations

import pytest

from configs.errors import StepFailed
from configs.names import names_for
from flows.readiness import readiness_drill
from sandbox.testing import CONFIG, Stack
from tasks.runbooks.drills.scorecard import turned_failed

pytestmark = [pytest.mark.e2e]


def test_turned_failed_only_counts_a_change_for_the_worse() -> None:
    before = {"a": "pass", "b": "fail", "c": "warn"}
    now = {"a": "fail", "b": "fail", "c": "fail", "d": "fail"}
    assert turned_failed(before, now) == ["a", "c"]
    assert turned_failed({}, now) == []


def test_healthy_then_broken_replica(stack: Stack) -> None:
    first = readiness_drill(config=CONFIG)
    assert first["outcome"] == "succeeded"
    assert first["metrics"]["readiness"] == "pass" and first["metrics"]["events"] == 0
    assert first["metrics"]["passed"] == first["metrics"]["checks"] == 9

    dr = names_for(stack.cfg, "dr").db_instance
    # Someone renames the replica away (moto cannot delete a replica sharing a managed secret).
    stack.client("rds", "dr").modify_db_instance(
        DBInstanceIdentifier=dr, NewDBInstanceIdentifier=f"{dr}-moved", ApplyImmediately=True
    )

    with pytest.raises(StepFailed, match=f"dr-database: {dr} does not exist") as failed:
        readiness_drill(config=CONFIG)
    metrics = failed.value.timeline.metrics  # type: ignore[attr-defined]
    assert metrics["turned_failed"] == "dr-database" and metrics["events"] == 1
    # Still failing next time: no new event (it turned once).
    with pytest.raises(StepFailed) as again:
        readiness_drill(config=CONFIG)
    assert again.value.timeline.metrics["events"] == 0  # type: ignore[attr-defined]
