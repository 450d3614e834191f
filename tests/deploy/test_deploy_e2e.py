"""End to end on the sandbox: deploy by digest, re-deploy changes nothing, DR kept in step.

One stack for the module; each test pushes its own tags (ECR tags are immutable here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from configs.errors import StepFailed
from configs.models import Config
from configs.names import names_for
from flows.deploy import deploy
from sandbox.testing import CONFIG, ROOT, Sandbox, plain, push, revisions, service, taskdef
from tasks.resources.task_definitions import differences
from tests.support import watch


def test_new_tag_deploys_by_digest_and_dr_follows(stack: Config) -> None:
    cfg = stack
    before = service(cfg, "web")
    dr_before = service(cfg, "web", "dr")
    digest = push(cfg, "web", "2.0.0")

    report = deploy(config=CONFIG, service="web", tag="2.0.0", approved=True, timeout_s=60)

    assert report["outcome"] == "succeeded"
    after = service(cfg, "web")
    assert after["taskDefinition"] != before["taskDefinition"]
    new, old = taskdef(cfg, after["taskDefinition"]), taskdef(cfg, before["taskDefinition"])
    repo = names_for(cfg).repository("web")
    image = f"{cfg.account_id}.dkr.ecr.{cfg.regions.primary}.amazonaws.com/{repo}@{digest}"
    assert differences(old, new) == {
        "container web.image": (old["containerDefinitions"][0]["image"], image)
    }
    mine = [d for d in after["deployments"] if d["taskDefinition"] == after["taskDefinition"]]
    assert [d["rolloutState"] for d in mine] == ["COMPLETED"]
    assert after["runningCount"] == after["desiredCount"]
    # DR: same digest from the DR registry, warm size untouched
    dr_after = service(cfg, "web", "dr")
    dr_td = taskdef(cfg, dr_after["taskDefinition"], "dr")
    dr_registry = f"{cfg.account_id}.dkr.ecr.{cfg.regions.dr}.amazonaws.com"
    assert dr_td["containerDefinitions"][0]["image"] == f"{dr_registry}/{repo}@{digest}"
    assert dr_after["desiredCount"] == dr_before["desiredCount"] == cfg.services.web.dr_warm_desired
    dr_old = taskdef(cfg, dr_before["taskDefinition"], "dr")
    assert list(differences(dr_old, dr_td)) == ["container web.image"]

    # the same image again: nothing registered, no task-definition or service mutation
    calls = watch(cfg)
    count = len(revisions(cfg, "web"))
    again = deploy(config=CONFIG, service="web", tag="2.0.0", approved=True, timeout_s=60)
    assert again["outcome"] == "succeeded"
    assert again["changes"] == []
    assert len(revisions(cfg, "web")) == count
    assert not [c for c in calls.seen if c.startswith("ecs:")], calls.seen
    assert service(cfg, "web")["taskDefinition"] == after["taskDefinition"]


def test_missing_tag_exits_2_and_changes_nothing(stack: Config) -> None:
    cfg = stack
    before = service(cfg, "web")["taskDefinition"]
    count = len(revisions(cfg, "web"))
    calls = watch(cfg)

    result = CliRunner().invoke(
        app, ["deploy", "-c", CONFIG, "--tag", "no-such-tag", "--yes", "-o", "json"]
    )

    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert report["outcome"] == "refused"
    assert "no image tagged 'no-such-tag'" in report["error"]
    assert calls.seen == []
    assert service(cfg, "web")["taskDefinition"] == before
    assert len(revisions(cfg, "web")) == count


@pytest.mark.parametrize("mode", ["fail", "stall"])
def test_failed_rollout_returns_to_the_previous_revision(
    stack: Config, sandbox: Sandbox, mode: str
) -> None:
    cfg = stack
    before = service(cfg, "web")["taskDefinition"]
    digest = push(cfg, "web", f"3.0.0-{mode}")
    sandbox.control.fail_next_deployment(cfg.regions.primary, names_for(cfg).service("web"), mode)

    with pytest.raises(StepFailed) as caught:
        deploy(config=CONFIG, service="web", tag=f"3.0.0-{mode}", approved=True, timeout_s=3)

    timeline = caught.value.timeline  # type: ignore[attr-defined]
    assert timeline.outcome == "failed"
    why = "circuit breaker" if mode == "fail" else "not reached within 3s"
    assert why in timeline.error
    assert f"rolled back to {before.split('/')[-1]}" in timeline.error
    assert any("rolled back" in n for n in timeline.notes)
    assert [s.outcome for s in timeline.steps if s.step.startswith("roll back")] == ["changed"]
    after = service(cfg, "web")
    assert after["taskDefinition"] == before
    assert [d["rolloutState"] for d in after["deployments"]] == ["COMPLETED"]
    # DR untouched: the failed image never reached it
    dr = taskdef(cfg, service(cfg, "web", "dr")["taskDefinition"], "dr")
    assert f"3.0.0-{mode}" not in json.dumps(dr)
    assert digest not in dr["containerDefinitions"][0]["image"]

    # the same image again, now healthy: the failed revision is reused, not registered anew
    failed_revision = revisions(cfg, "web")[-1]
    count = len(revisions(cfg, "web"))
    again = deploy(config=CONFIG, service="web", tag=f"3.0.0-{mode}", approved=True, timeout_s=60)
    assert again["outcome"] == "succeeded"
    assert len(revisions(cfg, "web")) == count
    assert service(cfg, "web")["taskDefinition"] == failed_revision


def test_rollback_command_returns_to_a_named_revision(stack: Config) -> None:
    cfg = stack
    push(cfg, "worker", "2.1.0")
    before = service(cfg, "worker")["taskDefinition"]
    deploy(config=CONFIG, service="worker", tag="2.1.0", approved=True, timeout_s=60, dr=False)
    assert service(cfg, "worker")["taskDefinition"] != before

    result = CliRunner().invoke(
        app, ["rollback", "-c", CONFIG, "--service", "worker", "--yes", "-o", "json"]
    )

    assert result.exit_code == 0, result.output
    assert service(cfg, "worker")["taskDefinition"] == before
    bad = CliRunner().invoke(app, ["rollback", "-c", CONFIG, "-s", "worker", "--to", "99", "--yes"])
    assert bad.exit_code == 2
    assert service(cfg, "worker")["taskDefinition"] == before


def test_a_rollback_brings_dr_back_in_step_so_a_failover_stays_possible(stack: Config) -> None:
    """A deploy moves DR with the primary; so does the rollback, or the failover's readiness
    would refuse (DR on another image than the primary)."""
    from flows.deploy import rollback
    from tasks.runbooks.failover.readiness import evaluate

    cfg = stack
    push(cfg, "web", "2.2.0")
    deploy(config=CONFIG, service="web", tag="2.2.0", approved=True, timeout_s=60)

    def image(role: str) -> str:
        td = taskdef(cfg, service(cfg, "web", role)["taskDefinition"], role)  # type: ignore[arg-type]
        return str(td["containerDefinitions"][0]["image"]).split("/", 1)[-1]

    moved = image("dr")
    assert moved == image("primary")  # pinned by digest in both regions

    report = rollback(config=CONFIG, service="web", approved=True, timeout_s=60)

    assert report["outcome"] == "succeeded", report["error"]
    assert image("dr") == image("primary") != moved
    assert [s["step"] for s in report["steps"] if s["step"].startswith("roll back")] == [
        "roll back primary web",
        "roll back dr web",
    ]
    checks = {f.check: f.status for f in evaluate(cfg).findings}
    assert checks["dr-services"] == "pass"


def test_plan_shows_the_revision_and_changes_nothing(stack: Config) -> None:
    cfg = stack
    digest = push(cfg, "worker", "4.0.0")
    before = service(cfg, "worker")["taskDefinition"]
    calls = watch(cfg)

    report = deploy(config=CONFIG, service="worker", tag="4.0.0", plan=True)

    assert calls.seen == []
    assert report["outcome"] == "planned"
    kinds = [(c["resource"], c["region"]) for c in report["changes"]]
    assert kinds == [
        ("ecs:task-definition", cfg.regions.primary),
        ("ecs:service", cfg.regions.primary),
        ("ecs:task-definition", cfg.regions.dr),
        ("ecs:service", cfg.regions.dr),
    ]
    assert digest in json.dumps(report["changes"][0]["after"])
    assert service(cfg, "worker")["taskDefinition"] == before


def test_codebuild_builds_pushes_and_deploys(stack: Config) -> None:
    cfg = stack
    before = service(cfg, "web")["taskDefinition"]
    planned = deploy(config=CONFIG, service="web", tag="5.0.0", source="codebuild", plan=True)
    assert [c["resource"] for c in planned["changes"]][:3] == [
        "iam:role",
        "codebuild:project",
        "ecs:task-definition",
    ]

    report = deploy(
        config=CONFIG, service="web", tag="5.0.0", source="codebuild", approved=True, timeout_s=60
    )

    assert report["outcome"] == "succeeded"
    repo = names_for(cfg).repository("web")
    ecr = plain(cfg, "ecr")
    found = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "5.0.0"}])
    digest = found["imageDetails"][0]["imageDigest"]
    after = service(cfg, "web")
    assert after["taskDefinition"] != before
    assert taskdef(cfg, after["taskDefinition"])["containerDefinitions"][0]["image"].endswith(
        f"{repo}@{digest}"
    )
    builds = plain(cfg, "codebuild").list_builds_for_project(
        projectName=names_for(cfg).codebuild_project
    )["ids"]
    assert len(builds) == 1
    step = next(s for s in report["steps"] if s["step"].startswith("provide web image"))
    assert "SUCCEEDED" in step["detail"] and "BUILD" in step["detail"]
    dr = taskdef(cfg, service(cfg, "web", "dr")["taskDefinition"], "dr")
    assert dr["containerDefinitions"][0]["image"].endswith(f"{repo}@{digest}")


def test_a_failed_build_deploys_nothing(stack: Config, sandbox: Sandbox) -> None:
    cfg = stack
    before = service(cfg, "web")["taskDefinition"]
    count = len(revisions(cfg, "web"))
    sandbox.control.fail_next_build()

    with pytest.raises(StepFailed, match="build FAILED in phase BUILD") as caught:
        deploy(config=CONFIG, service="web", tag="5.1.0", source="codebuild", approved=True)

    assert caught.value.timeline.outcome == "failed"  # type: ignore[attr-defined]
    assert service(cfg, "web")["taskDefinition"] == before
    assert len(revisions(cfg, "web")) == count


def test_a_protected_environment_needs_approval(stack: Config, tmp_path: Path) -> None:
    cfg = stack
    protected = tmp_path / "protected.yaml"
    text = (ROOT / CONFIG).read_text()
    protected.write_text(text.replace("account_id:", "protected: true\naccount_id:", 1))
    push(cfg, "worker", "7.0.0")
    before = service(cfg, "worker")["taskDefinition"]

    result = CliRunner().invoke(
        app, ["deploy", "-c", str(protected), "-s", "worker", "--tag", "7.0.0", "-o", "json"]
    )

    assert result.exit_code == 2, result.output
    assert "needs approval" in json.loads(result.stdout)["error"]
    assert service(cfg, "worker")["taskDefinition"] == before


def test_a_failing_smoke_check_rolls_back_a_completed_rollout(
    stack: Config, http_server: dict[str, Any]
) -> None:
    cfg = stack
    before = service(cfg, "web")["taskDefinition"]
    push(cfg, "web", "8.0.0")
    http_server["status"] = 503

    with pytest.raises(StepFailed) as caught:
        deploy(
            config=CONFIG,
            service="web",
            tag="8.0.0",
            smoke_url=http_server["url"],
            approved=True,
            timeout_s=2,
        )

    assert "GET " in caught.value.timeline.error  # type: ignore[attr-defined]
    assert "last seen: 503" in caught.value.timeline.error  # type: ignore[attr-defined]
    after = service(cfg, "web")
    assert after["taskDefinition"] == before
    assert [d["rolloutState"] for d in after["deployments"]] == ["COMPLETED"]


def test_all_services_then_a_dr_failure_rolls_dr_back_and_keeps_primary(
    stack: Config, sandbox: Sandbox
) -> None:
    cfg = stack
    digests = {svc: push(cfg, svc, "9.0.0") for svc in ("web", "worker")}
    report = deploy(config=CONFIG, service="all", tag="9.0.0", approved=True, timeout_s=60)
    assert report["outcome"] == "succeeded"
    for svc in ("web", "worker"):
        for role in ("primary", "dr"):
            td = taskdef(cfg, service(cfg, svc, role)["taskDefinition"], role)
            assert td["containerDefinitions"][0]["image"].endswith(digests[svc])

    digest = push(cfg, "worker", "9.1.0")
    dr_before = service(cfg, "worker", "dr")["taskDefinition"]
    sandbox.control.fail_next_deployment(cfg.regions.dr, names_for(cfg, "dr").service("worker"))
    with pytest.raises(StepFailed, match=r"dr worker: rollout of .* failed") as caught:
        deploy(config=CONFIG, service="worker", tag="9.1.0", approved=True, timeout_s=60)
    assert any("dr worker: rolled back" in n for n in caught.value.timeline.notes)  # type: ignore[attr-defined]
    assert service(cfg, "worker", "dr")["taskDefinition"] == dr_before
    primary = taskdef(cfg, service(cfg, "worker")["taskDefinition"])
    assert primary["containerDefinitions"][0]["image"].endswith(digest)


def test_a_deploy_already_running_on_the_service_is_refused(stack: Config) -> None:
    from tasks.core.errors import LockHeld
    from tasks.core.locks import hold

    cfg = stack
    push(cfg, "worker", "10.0.0")
    before = service(cfg, "worker")["taskDefinition"]
    with (
        hold(cfg, "deploy-worker", region=cfg.regions.primary, purpose="another deploy"),
        pytest.raises(LockHeld, match="another deploy"),
    ):
        deploy(config=CONFIG, service="worker", tag="10.0.0", approved=True)
    assert service(cfg, "worker")["taskDefinition"] == before
