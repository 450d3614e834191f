"""The UI path: deployments served against a real Prefect server, triggered through its API."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments import RUNBOOKS
from sandbox.testing import SERVER_TEST_TIMEOUT_S, PrefectServer

pytestmark = [pytest.mark.timeout(SERVER_TEST_TIMEOUT_S)]


def test_triggered_deployment_completes_and_its_timeline_is_readable(
    prefect_server: PrefectServer, served: Path, clean_aws: str
) -> None:
    deployment = prefect_server.deployment_id("preflight", "preflight · shop-sandbox")
    run = prefect_server.run(deployment)
    state = prefect_server.wait_state(run, {"COMPLETED", "FAILED", "CRASHED"})
    assert state["type"] == "COMPLETED", served.read_text()[-3000:]
    artifacts = {a["key"]: a for a in prefect_server.artifacts(run)}
    timeline = artifacts["preflight-timeline-shop-sandbox"]
    assert timeline["type"] == "markdown"
    assert "check us-west-2 answers" in timeline["data"] and "succeeded" in timeline["data"]


def test_the_deployment_list_has_every_runbook_with_forms_that_explain_themselves(
    prefect_server: PrefectServer, served: Path
) -> None:
    prefect_server.deployment_id("destroy", "destroy · shop-sandbox")  # the last one served
    listed = {d["name"]: d for d in prefect_server.deployments()}
    # the demo is a warm standby: no snapshot copies to schedule
    expected = {f"{runbook} · shop-sandbox" for runbook in RUNBOOKS if runbook != "snapshot-copy"}
    assert expected <= set(listed)
    assert "snapshot-copy · shop-sandbox" not in listed
    for name, deployment in listed.items():
        schema = deployment["parameter_openapi_schema"]
        assert deployment["enforce_parameter_schema"], name
        assert schema["additionalProperties"] is False, name
        undescribed = [p for p, s in schema["properties"].items() if not s.get("description")]
        assert not undescribed, (name, undescribed)
        assert schema["properties"]["config"]["enum"], name
    for runbook in ("failover", "switchover", "failback", "drill-region", "destroy"):
        offered = listed[f"{runbook} · shop-sandbox"]["parameter_openapi_schema"]["properties"]
        assert not {"approved", "yes"} & set(offered), runbook
    for runbook in ("provision", "destroy"):
        deployment = listed[f"{runbook} · shop-sandbox"]
        assert deployment["parameters"]["plan"] is True
        assert deployment["parameter_openapi_schema"]["properties"]["plan"]["default"] is True
        region = deployment["parameter_openapi_schema"]["properties"]["region"]
        assert region["enum"] == ["both", "primary", "dr"]
    assert listed["deploy · shop-sandbox"]["parameter_openapi_schema"]["properties"]["source"][
        "enum"
    ] == ["pushed", "codebuild", "docker"]
    assert listed["backup-drill · shop-sandbox"]["parameter_openapi_schema"]["properties"][
        "source"
    ]["enum"] == ["new", "automated"]
