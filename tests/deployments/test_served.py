"""The UI path: deployments served against a real Prefect server, triggered through its API."""

from __future__ import annotations

from pathlib import Path

from sandbox.testing import PrefectServer


def test_triggered_deployment_completes_and_its_timeline_is_readable(
    prefect_server: PrefectServer, served: Path, clean_aws: str
) -> None:
    deployment = prefect_server.deployment_id("preflight", "shop-sandbox")
    run = prefect_server.run(deployment)
    state = prefect_server.wait_state(run, {"COMPLETED", "FAILED", "CRASHED"})
    assert state["type"] == "COMPLETED", served.read_text()[-3000:]
    artifacts = {a["key"]: a for a in prefect_server.artifacts(run)}
    timeline = artifacts["preflight-timeline-shop-sandbox"]
    assert timeline["type"] == "markdown"
    assert "check us-west-2 answers" in timeline["data"] and "succeeded" in timeline["data"]
