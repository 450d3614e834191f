"""The failover deployment pauses for a typed approval, whatever parameters its run was given;
resuming it through the API (as the UI's form does) lets it finish."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.testing import SERVER_TEST_TIMEOUT_S, PrefectServer, Stack, resume
from tests.failover.test_failover_e2e import assert_failed_over

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(SERVER_TEST_TIMEOUT_S)]


def test_failover_waits_for_a_typed_approval_and_completes_once_given(
    prefect_server: PrefectServer, served: Path, stack: Stack
) -> None:
    deployment = prefect_server.deployment_id("failover", "failover · shop-sandbox")
    # The API refuses an up-front approval: the deployment's schema does not offer one.
    refused = prefect_server.create_run(deployment, {"approved": True})
    assert refused.status_code == 409, refused.text
    # With schema enforcement turned off for the run, the parameter reaches the flow, which
    # still waits for the form.
    run = prefect_server.run(deployment, {"approved": True}, enforce_parameter_schema=False)
    paused = prefect_server.wait_state(run, {"PAUSED", "COMPLETED", "FAILED", "CRASHED"})
    assert paused["type"] == "PAUSED", served.read_text()[-3000:]
    untouched = stack.db("dr")
    assert untouched.get("ReadReplicaSourceDBInstanceIdentifier")  # nothing done while waiting

    base = f"{paused['name'].lower()}-{paused['state_details']['pause_key']}"
    schema = prefect_server.run_input(run, f"{base}-schema")
    assert sorted(schema["required"]) == ["environment", "reason"]
    assert all(field.get("description") for field in schema["properties"].values())
    prompt = prefect_server.run_input(run, f"{base}-description")
    assert "shop-sandbox" in prompt and "the run goes on" in prompt

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
