"""The failover deployment pauses for a typed approval; resuming it through the API (as the
UI's form does) lets it finish."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.testing import PrefectServer, Stack, resume
from tests.failover.test_failover_e2e import assert_failed_over

pytestmark = [pytest.mark.e2e]


def test_failover_waits_for_a_typed_approval_and_completes_once_given(
    prefect_server: PrefectServer, served: Path, stack: Stack
) -> None:
    deployment = prefect_server.deployment_id("failover", "shop-sandbox")
    run = prefect_server.run(deployment)
    paused = prefect_server.wait_state(run, {"PAUSED", "COMPLETED", "FAILED", "CRASHED"})
    assert paused["type"] == "PAUSED", served.read_text()[-3000:]
    untouched = stack.db("dr")
    assert untouched.get("ReadReplicaSourceDBInstanceIdentifier")  # nothing done while waiting

    answer = resume(prefect_server, run, {"environment": "shop-sandbox", "reason": "game day"})
    assert answer.get("status") == "ACCEPT", answer

    state = prefect_server.wait_state(run, {"COMPLETED", "FAILED", "CRASHED"})
    assert state["type"] == "COMPLETED", served.read_text()[-3000:]
    assert_failed_over(stack)
    timeline = {a["key"]: a for a in prefect_server.artifacts(run)}[
        "failover-timeline-shop-sandbox"
    ]
    assert "approved in the UI: game day" in timeline["data"]
    assert "rto_seconds" in timeline["data"]
