"""The deploy runbook's pure decisions, the scan gate (Stubber: moto reports no real findings)
and the Docker source at the Docker SDK boundary (a fake client; no engine here)."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from configs import load_config
from configs.errors import BadInput, Refused, StepFailed
from configs.models import Config
from tasks.core.aws import connect, forget_connections
from tasks.resources.task_definitions import differences
from tasks.runbooks.deploy.images import (
    DockerImage,
    Image,
    blocking_findings,
    build_progress,
    check_scan,
    provide_image,
    push_digest,
)
from tasks.runbooks.deploy.rollout import revision_before, revision_input, rollout_verdict

ROOT = Path(__file__).resolve().parents[2]
REPO = "shop/web"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
DIGEST = "sha256:" + "ab" * 32
TD = {
    "family": "shop-sandbox-web",
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-sandbox-web:3",
    "revision": 3,
    "status": "ACTIVE",
    "cpu": "512",
    "memory": "1024",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "containerDefinitions": [
        {
            "name": "web",
            "image": f"{REGISTRY}/{REPO}:1.0.0",
            "cpu": 0,
            "environment": [{"name": "LOG_LEVEL", "value": "info"}],
            "secrets": [
                {"name": "DB", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:db"}
            ],
            "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
        },
        {"name": "sidecar", "image": "public.ecr.aws/x/agent:1"},
    ],
}


# -- revisions -----------------------------------------------------------------------------------
def test_a_revision_differs_only_in_the_image() -> None:
    image = f"{REGISTRY}/{REPO}@{DIGEST}"
    new = revision_input(TD, image, "web")
    assert differences(TD, new) == {"container web.image": (f"{REGISTRY}/{REPO}:1.0.0", image)}
    assert "taskDefinitionArn" not in new and "revision" not in new
    assert differences(TD, revision_input(TD, TD["containerDefinitions"][0]["image"], "web")) == {}


def test_env_and_secret_changes_set_and_remove_names() -> None:
    new = revision_input(
        TD,
        TD["containerDefinitions"][0]["image"],
        "web",
        environment={"LOG_LEVEL": None, "FEATURE": "on"},
        secrets={"API": "arn:aws:secretsmanager:us-east-1:1:secret:api"},
    )
    diff = differences(TD, new)
    assert set(diff) == {"container web.environment", "container web.secrets"}
    assert diff["container web.environment"][1] == [{"name": "FEATURE", "value": "on"}]
    assert [s["name"] for s in diff["container web.secrets"][1]] == ["API", "DB"]


def test_revision_before_skips_later_and_picks_the_nearest_lower() -> None:
    arns = [f"arn:aws:ecs:r:1:task-definition/f:{n}" for n in (7, 5, 4, 1)]
    assert revision_before(arns, "arn:aws:ecs:r:1:task-definition/f:6").endswith(":5")
    assert revision_before(arns, "arn:aws:ecs:r:1:task-definition/f:1") is None


# -- rollout verdicts ----------------------------------------------------------------------------
def dep(id_: str, status: str, state: str, td: str = "f:2", reason: str = "") -> dict[str, Any]:
    return {
        "id": id_,
        "status": status,
        "rolloutState": state,
        "taskDefinition": f"arn:aws:ecs:r:1:task-definition/{td}",
        "rolloutStateReason": reason,
    }


def test_verdicts_follow_this_deployment_not_the_service() -> None:
    assert rollout_verdict({"deployments": [dep("d2", "PRIMARY", "COMPLETED")]}, "d2")[0] == (
        "completed"
    )
    running = {
        "deployments": [dep("d2", "PRIMARY", "IN_PROGRESS"), dep("d1", "ACTIVE", "COMPLETED")]
    }
    assert rollout_verdict(running, "d2")[0] == "in_progress"
    failed = {
        "deployments": [
            dep("d3", "PRIMARY", "IN_PROGRESS", "f:1"),
            dep("d2", "ACTIVE", "FAILED", reason="circuit breaker: tasks failed to start."),
        ]
    }
    state, why = rollout_verdict(failed, "d2")
    assert state == "failed" and "circuit breaker" in why
    # stable again, on the old revision: the rollback finished and our deployment is gone
    stable_on_old = {
        "deployments": [dep("d3", "PRIMARY", "COMPLETED", "f:1")],
        "events": [{"message": "(service web) rolling back to f:1 after deployment d2 failed."}],
    }
    state, why = rollout_verdict(stable_on_old, "d2")
    assert state == "failed" and "f:1" in why and "rolling back" in why
    superseded = {
        "deployments": [
            dep("d4", "PRIMARY", "IN_PROGRESS", "f:4"),
            dep("d2", "ACTIVE", "IN_PROGRESS"),
        ]
    }
    assert rollout_verdict(superseded, "d2")[0] == "failed"


# -- CodeBuild -----------------------------------------------------------------------------------
def test_a_failed_build_names_its_phase() -> None:
    build = {
        "currentPhase": "COMPLETED",
        "buildStatus": "FAILED",
        "phases": [
            {"phaseType": "PRE_BUILD", "phaseStatus": "SUCCEEDED"},
            {
                "phaseType": "BUILD",
                "phaseStatus": "FAILED",
                "contexts": [{"message": "COMMAND_EXECUTION_ERROR: exit status 1"}],
            },
        ],
    }
    assert build_progress(build) == (
        "COMPLETED",
        "build FAILED in phase BUILD: COMMAND_EXECUTION_ERROR: exit status 1",
    )
    assert build_progress({"currentPhase": "BUILD", "buildStatus": "IN_PROGRESS"}) == (
        "BUILD",
        None,
    )


# -- scan gate (Stubber) -------------------------------------------------------------------------
@pytest.fixture
def cfg() -> Iterator[Config]:
    forget_connections()
    config = load_config(ROOT / "configs" / "sandbox.yaml")
    connect(config)._verified_account = config.account_id  # no STS behind the stubs
    yield config
    forget_connections()


def scan(status: str, counts: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "repositoryName": REPO,
        "imageId": {"imageDigest": DIGEST},
        "imageScanStatus": {"status": status},
    }
    if counts is not None:
        out["imageScanFindings"] = {"findingSeverityCounts": counts}
    return out


IMAGE = Image(REPO, "2.0.0", DIGEST, REGISTRY)


def test_scan_gate_waits_for_the_scan_then_counts_critical_and_high(cfg: Config) -> None:
    ecr = connect(cfg).client("ecr", "us-east-1")
    expected = {"repositoryName": REPO, "imageId": {"imageDigest": DIGEST}}
    with Stubber(ecr) as stub:
        stub.add_response("describe_image_scan_findings", scan("IN_PROGRESS"), expected)
        stub.add_response(
            "describe_image_scan_findings",
            scan("COMPLETE", {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 9}),
            expected,
        )
        assert check_scan.fn(cfg, "web", IMAGE, 3).status == "passed"
        stub.add_response(
            "describe_image_scan_findings", scan("COMPLETE", {"CRITICAL": 1, "HIGH": 3}), expected
        )
        with pytest.raises(Refused, match=r"4 critical/high findings .* more than the 3"):
            check_scan.fn(cfg, "web", IMAGE, 3)
        stub.add_client_error(
            "describe_image_scan_findings", "ScanNotFoundException", "no scan", 400
        )
        with pytest.raises(Refused, match="no completed scan"):
            check_scan.fn(cfg, "web", IMAGE, 0)
        stub.assert_no_pending_responses()
    assert blocking_findings(scan("COMPLETE", {"LOW": 4})) == {}


# -- Docker source at the SDK boundary -----------------------------------------------------------
class FakeImages:
    def __init__(self, log: list[tuple[str, Any]], push_stream: list[dict[str, Any]]) -> None:
        self.log, self.push_stream = log, push_stream

    def build(self, **kwargs: Any) -> tuple[Any, list[Any]]:
        self.log.append(("build", kwargs))
        return type("Img", (), {"id": "sha256:" + "cd" * 32})(), []

    def push(self, repository: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.log.append(("push", {"repository": repository, **kwargs}))
        return iter(self.push_stream)


class FakeDocker:
    def __init__(self, push_stream: list[dict[str, Any]]) -> None:
        self.log: list[tuple[str, Any]] = []
        self.images = FakeImages(self.log, push_stream)

    def login(self, **kwargs: Any) -> dict[str, str]:
        self.log.append(("login", kwargs))
        return {"Status": "Login Succeeded"}


def test_docker_source_builds_logs_in_with_an_ecr_token_pushes_and_pins(cfg: Config) -> None:
    fake = FakeDocker([{"status": "Pushing"}, {"aux": {"Tag": "6.0.0", "Digest": DIGEST}}])
    ecr = connect(cfg).client("ecr", "us-east-1")
    token = base64.b64encode(b"AWS:secret-token").decode()
    with Stubber(ecr) as stub:
        stub.add_response(
            "get_authorization_token",
            {
                "authorizationData": [
                    {"authorizationToken": token, "proxyEndpoint": f"https://{REGISTRY}"}
                ]
            },
        )
        stub.add_response(
            "describe_images",
            {
                "imageDetails": [
                    {"repositoryName": REPO, "imageDigest": DIGEST, "imageTags": ["6.0.0"]}
                ]
            },
            {"repositoryName": REPO, "imageIds": [{"imageTag": "6.0.0"}]},
        )
        result = provide_image.fn(
            cfg, "web", "6.0.0", DockerImage(context="/src/app", client_factory=lambda: fake)
        )
    assert [op for op, _ in fake.log] == ["build", "login", "push"]
    build, login, push = (kw for _, kw in fake.log)
    assert build["path"] == "/src/app" and build["tag"] == f"{REGISTRY}/{REPO}:6.0.0"
    assert login == {
        "username": "AWS",
        "password": "secret-token",
        "registry": f"https://{REGISTRY}",
    }
    assert push["repository"] == f"{REGISTRY}/{REPO}" and push["tag"] == "6.0.0"
    assert result.outputs["image"].uri == f"{REGISTRY}/{REPO}@{DIGEST}"


def test_a_failed_push_fails_with_dockers_message() -> None:
    with pytest.raises(StepFailed, match="denied: not authorized"):
        push_digest([{"status": "Pushing"}, {"errorDetail": {"message": "denied: not authorized"}}])


def test_no_docker_sdk_or_engine_is_a_clear_refusal(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)
    with pytest.raises(BadInput, match="needs the Docker SDK"):
        DockerImage().provide(cfg, "web", "1")

    def no_engine() -> Any:
        raise ConnectionError("Error while fetching server API version")

    fake_module = type(sys)("docker")
    fake_module.from_env = no_engine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "docker", fake_module)
    with pytest.raises(BadInput, match="no Docker engine answers here"):
        DockerImage().provide(cfg, "web", "1")


# -- smoke check ---------------------------------------------------------------------------------
def test_smoke_check_passes_on_2xx_and_fails_on_5xx(http_server: dict[str, Any]) -> None:
    from configs.errors import DeadlineExceeded
    from tasks.runbooks.deploy.rollout import check_smoke

    assert check_smoke.fn(http_server["url"], 5).detail.endswith("→ 200")
    http_server["status"] = 503
    with pytest.raises(DeadlineExceeded, match="last seen: 503"):
        check_smoke.fn(http_server["url"], 0.5)


# -- bad input through the CLI: exit 2 before any AWS call -----------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "docker"], "needs the Docker SDK"),
        (["--env", "DB_PASSWORD=hunter2"], "look like secrets"),
        (["--secret", "API_KEY=plain"], "must be a Secrets Manager or SSM ARN"),
        (["--env", "bad key=1"], "expected NAME=VALUE"),
    ],
)
def test_bad_requests_exit_2_before_any_aws_call(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setitem(sys.modules, "docker", None)
    monkeypatch.setenv("TIERBOOK_AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing answers
    result = CliRunner().invoke(app, ["deploy", "--tag", "1.2.3", "--yes", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_build_logs_are_followed_page_by_page(cfg: Config) -> None:
    from tasks.runbooks.deploy.images import BuildLogs

    logs = connect(cfg).client("logs", "us-east-1")
    build = {"logs": {"groupName": "/aws/codebuild/shop-sandbox-image-build", "streamName": "b1"}}
    first = {
        "logGroupName": build["logs"]["groupName"],
        "logStreamName": "b1",
        "startFromHead": True,
    }
    with Stubber(logs) as stub:
        stub.add_client_error("get_log_events", "ResourceNotFoundException", "not yet", 400, first)
        stub.add_response(
            "get_log_events",
            {
                "events": [{"message": "Step 1/4 : FROM python"}, {"message": "Step 2/4"}],
                "nextForwardToken": "f/2",
            },
            first,
        )
        stub.add_response(
            "get_log_events",
            {"events": [{"message": "pushed"}], "nextForwardToken": "f/3"},
            {**first, "nextToken": "f/2"},
        )
        follower = BuildLogs(cfg, "us-east-1")
        for _ in range(3):
            follower.follow(build)
        follower.follow(
            {"logs": {"groupName": "null", "streamName": "null"}}
        )  # not started: no call
        stub.assert_no_pending_responses()
    assert follower.lines == 3
