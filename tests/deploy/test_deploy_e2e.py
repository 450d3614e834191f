"""End to end on the sandbox: deploy by digest, re-deploy changes nothing, DR kept in step.

One stack for the module; each test pushes its own tags (ECR tags are immutable here).
"""

from __future__ import annotations

from configs.models import Config
from configs.names import names_for
from flows.deploy import deploy
from tasks.taskdefs import differences
from tests.deploy.conftest import CONFIG, push, revisions, service, taskdef, watch


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
