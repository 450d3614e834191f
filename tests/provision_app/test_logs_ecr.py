from __future__ import annotations

from configs.models import Config
from sandbox.testing import Mutations, plain
from tasks.resources.ecr import ensure_repositories, replication_rules
from tasks.resources.logs import APP_LOG_RETENTION_DAYS, ensure_log_groups


def test_log_groups_converge_and_drift_is_restored(sandbox_cfg: Config) -> None:
    first = ensure_log_groups.fn(sandbox_cfg, "primary")
    assert [c.name for c in first.changes] == ["/ecs/shop-sandbox/web", "/ecs/shop-sandbox/worker"]
    assert ensure_log_groups.fn(sandbox_cfg, "primary").changes == []

    logs = plain(sandbox_cfg, "logs", "us-east-1")
    logs.put_retention_policy(logGroupName="/ecs/shop-sandbox/web", retentionInDays=1)
    fixed = ensure_log_groups.fn(sandbox_cfg, "primary")
    assert [(c.name, c.before, c.after) for c in fixed.changes] == [
        ("/ecs/shop-sandbox/web", {"retentionInDays": 1}, {"retentionInDays": 30})
    ]
    group = logs.describe_log_groups(logGroupNamePrefix="/ecs/shop-sandbox/web")["logGroups"][0]
    assert group["retentionInDays"] == APP_LOG_RETENTION_DAYS


def test_repositories_are_immutable_scanned_and_replicated(
    sandbox_cfg: Config, mutations: Mutations
) -> None:
    plan = ensure_repositories.fn(sandbox_cfg, "primary", dry_run=True)
    assert mutations.calls == []
    assert {c.name for c in plan.changes} == {"shop/web", "shop/worker", "replication"}

    ensure_repositories.fn(sandbox_cfg, "primary")
    assert ensure_repositories.fn(sandbox_cfg, "primary").changes == []
    ecr = plain(sandbox_cfg, "ecr", "us-east-1")
    repo = ecr.describe_repositories(repositoryNames=["shop/web"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"
    rules = ecr.describe_registry()["replicationConfiguration"]["rules"]
    assert rules[0]["destinations"] == [{"region": "us-west-2", "registryId": "123456789012"}]
    assert {f["filter"] for f in rules[0]["repositoryFilters"]} == {"shop/web", "shop/worker"}


def test_adopted_mutable_repository_is_fixed_in_place(sandbox_cfg: Config) -> None:
    ecr = plain(sandbox_cfg, "ecr", "us-east-1")
    arn = ecr.create_repository(repositoryName="shop/web", imageTagMutability="MUTABLE")[
        "repository"
    ]["repositoryArn"]
    result = ensure_repositories.fn(sandbox_cfg, "primary")
    web = [c for c in result.changes if c.name == "shop/web"]
    assert web[0].before == {"imageTagMutability": "MUTABLE", "scanOnPush": False}
    repo = ecr.describe_repositories(repositoryNames=["shop/web"])["repositories"][0]
    assert repo["repositoryArn"] == arn and repo["imageTagMutability"] == "IMMUTABLE"


def test_replication_keeps_foreign_rules_and_skips_covered_repositories() -> None:
    foreign = {
        "destinations": [{"region": "eu-west-1", "registryId": "1"}],
        "repositoryFilters": [{"filter": "other/", "filterType": "PREFIX_MATCH"}],
    }
    covering = {
        "destinations": [{"region": "us-west-2", "registryId": "1"}],
        "repositoryFilters": [{"filter": "shop/", "filterType": "PREFIX_MATCH"}],
    }
    assert replication_rules([foreign, covering], ["shop/web"], "1", "us-west-2") == [
        foreign,
        covering,
    ]
    added = replication_rules([foreign], ["shop/web"], "1", "us-west-2")
    assert added[0] == foreign and added[1]["repositoryFilters"][0]["filter"] == "shop/web"
    # A second stack in the account (a fleet) joins the rule to the same region.
    shared = replication_rules(added, ["blog/web"], "1", "us-west-2")
    assert len(shared) == 2 and shared[0] == foreign
    assert [f["filter"] for f in shared[1]["repositoryFilters"]] == ["shop/web", "blog/web"]
