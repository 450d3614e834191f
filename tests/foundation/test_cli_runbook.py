"""A runbook from the terminal with no Prefect server: its own output only, exit codes, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
NOISE = ("Traceback", "Error flushing", "CancelledError", "| INFO", "Starting temporary server")


def run_cli(
    args: list[str], endpoint: str, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    environ.update(
        TIERBOOK_AWS_ENDPOINT_URL=endpoint,
        TIERBOOK_HOME=str(tmp_path / "home"),
        PREFECT_HOME=str(tmp_path / "prefect"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        timeout=300,
    )


def test_preflight_prints_only_its_own_output(clean_aws: str, tmp_path: Path) -> None:
    done = run_cli(["preflight", "-c", "configs/sandbox.yaml"], clean_aws, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "preflight · shop-sandbox · succeeded" in done.stdout
    assert not [n for n in NOISE if n in done.stderr + done.stdout], done.stderr
    reports = list((tmp_path / "home" / "reports").glob("preflight-shop-sandbox-*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert {s["step"] for s in report["steps"]} == {
        "check account",
        "check us-east-1 answers",
        "check us-west-2 answers",
    }
    assert all(s["outcome"] == "passed" for s in report["steps"])


def test_dead_prefect_server_falls_back_and_json_output(clean_aws: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api"
    done = run_cli(["preflight", "-o", "json"], clean_aws, tmp_path, PREFECT_API_URL=dead)
    assert done.returncode == 0, done.stderr
    assert "does not answer" in done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "succeeded" and len(report["steps"]) == 3


def test_wrong_account_exits_2_and_says_why(clean_aws: str, tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load((ROOT / "configs" / "sandbox.yaml").read_text())
    data["account_id"] = "999999999999"
    cfg = tmp_path / "wrong.yaml"
    cfg.write_text(yaml.safe_dump(data))
    done = run_cli(["preflight", "-c", str(cfg)], clean_aws, tmp_path)
    assert done.returncode == 2
    assert "999999999999" in done.stderr and "refusing" in done.stderr
    assert not [n for n in NOISE if n in done.stderr], done.stderr


def test_rebuilding_an_immutable_tag_fails_the_build_like_codebuild(clean_aws: str) -> None:
    """The sandbox's CodeBuild answers a push ECR refuses as AWS does — a build FAILED in
    POST_BUILD with docker's message — never with an HTML 500."""
    import time

    import boto3

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=clean_aws,
            region_name="us-east-1",
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    ecr, cb = client("ecr"), client("codebuild")
    ecr.create_repository(repositoryName="shop/web", imageTagMutability="IMMUTABLE")
    cb.create_project(
        name="build-web",
        source={"type": "S3", "location": "bucket/source.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole="arn:aws:iam::123456789012:role/build",
    )
    env = [
        {"name": "IMAGE_REPO_NAME", "value": "shop/web"},
        {"name": "IMAGE_TAG", "value": "1.1.0"},
    ]

    def build() -> dict[str, Any]:
        build_id = cb.start_build(projectName="build-web", environmentVariablesOverride=env)[
            "build"
        ]["id"]
        for _ in range(200):
            got: dict[str, Any] = cb.batch_get_builds(ids=[build_id])["builds"][0]
            if got["buildComplete"]:
                return got
            time.sleep(0.05)
        raise AssertionError("build never completed")

    assert build()["buildStatus"] == "SUCCEEDED"
    second = build()
    assert second["buildStatus"] == "FAILED"
    post = next(p for p in second["phases"] if p["phaseType"] == "POST_BUILD")
    assert post["phaseStatus"] == "FAILED"
    assert "already exists" in post["contexts"][0]["message"]
    images = ecr.describe_images(repositoryName="shop/web")["imageDetails"]
    assert [d["imageTags"] for d in images] == [["1.1.0"]]


@pytest.mark.timeout(1200)  # a whole provision through the CLI
def test_plan_updates_existing_services_onto_a_new_revision(clean_aws: str, tmp_path: Path) -> None:
    """When the plan registers a new task-definition revision (here: the config's image tag
    and environment changed; after a failover and failback, the DR endpoints), the services
    exist and are ACTIVE: the plan updates them, it does not create them again."""
    done = run_cli(["provision"], clean_aws, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # (on the same stack, to provision once) right after provision the images are not in
    # the DR repository: failover --plan is refused and names the deploy that fixes it
    refused = run_cli(["failover", "--plan"], clean_aws, tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "tierbook deploy --service all --tag 1.0.0 --source codebuild" in refused.stderr
    data: dict[str, Any] = yaml.safe_load((ROOT / "configs" / "sandbox.yaml").read_text())
    for svc in ("web", "worker"):
        data["services"][svc]["environment"] = {"LOG_LEVEL": "debug"}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(data))
    plan = run_cli(["provision", "--plan", "-o", "json", "-c", str(changed)], clean_aws, tmp_path)
    assert plan.returncode == 0, plan.stderr
    services = [c for c in json.loads(plan.stdout)["changes"] if c["resource"] == "ecs:service"]
    assert services, "the services move onto the new revisions"
    assert {c["action"] for c in services} == {"update"}, services
