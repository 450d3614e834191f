"""``tierbook iam-policy``: the per-runbook action lists are what the source calls, and the
printed policy is scoped to the config. Pure: no AWS, no Prefect API."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from configs import load_config
from configs.iam_actions import iam_actions
from configs.iam_policy import policy_actions, policy_for
from configs.permissions import ALIASES, FLOWS, RUNBOOKS
from sandbox.testing import ROOT
from tests.iam.calls import calls, undeclared_dynamic

CFG = load_config(ROOT / "configs" / "sandbox.yaml")


def called_actions(runbook: str) -> set[str]:
    return {a for service, op in calls(FLOWS[runbook]) for a in iam_actions(service, op)}


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_the_list_is_exactly_what_the_source_calls(runbook: str) -> None:
    """Every client call the runbook's steps can reach (real-AWS-only paths included) is in its
    list, and the list holds nothing they do not call."""
    listed = set(RUNBOOKS[runbook].calls)
    found = called_actions(runbook)
    assert found - listed == set(), f"{runbook} calls these, add them to configs/permissions.py"
    assert listed - found == set(), f"{runbook} never calls these, remove them"


def test_every_call_by_a_built_name_is_declared() -> None:
    """``getattr(client, name)(...)`` hides a call from the scan unless tests/iam/calls.py
    lists the names it can build."""
    assert undeclared_dynamic() == set()


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_implicit_actions_are_not_called_and_say_why(runbook: str) -> None:
    perms = RUNBOOKS[runbook]
    assert not set(perms.implicit) & set(perms.calls)
    assert all(len(why) > 20 for why in perms.implicit.values())


def test_every_runbook_has_a_list() -> None:
    from deployments.catalog import RUNBOOKS as DEPLOYED

    assert set(DEPLOYED) | {"provision", "destroy"} == set(RUNBOOKS) == set(FLOWS)
    assert set(ALIASES.values()) <= set(RUNBOOKS)


def test_the_scan_sees_the_calls_the_sandbox_cannot_run() -> None:
    """Aurora, ARC routing controls (Stubber-tested in tests/failover/test_real_api_calls.py),
    CodeBuild, the native SQS move, the cache failover that moto lacks."""
    assert {
        "rds:FailoverGlobalCluster",
        "rds:PromoteReadReplicaDBCluster",
        "route53-recovery-cluster:UpdateRoutingControlStates",
    } <= called_actions("failover")
    assert {"codebuild:StartBuild", "codebuild:BatchGetBuilds"} <= called_actions("deploy")
    assert {"sqs:StartMessageMoveTask", "sqs:CancelMessageMoveTask"} <= called_actions("redrive")
    assert {"elasticache:TestFailover", "rds:FailoverDBCluster"} <= called_actions("game-day")


def test_operation_names_map_to_iam_actions() -> None:
    assert iam_actions("elbv2", "DescribeTargetHealth") == (
        "elasticloadbalancing:DescribeTargetHealth",
    )
    assert iam_actions("s3", "ListObjectsV2") == ("s3:ListBucket",)
    assert iam_actions("s3", "ListObjectVersions") == ("s3:ListBucketVersions",)
    assert iam_actions("s3", "HeadObject") == ("s3:GetObject",)
    assert iam_actions("sqs", "SendMessageBatch") == ("sqs:SendMessage",)
    assert iam_actions("sts", "GetCallerIdentity") == ()
    assert iam_actions("application-autoscaling", "RegisterScalableTarget") == (
        "application-autoscaling:RegisterScalableTarget",
    )


def test_cli_prints_the_failover_policy() -> None:
    result = CliRunner().invoke(app, ["iam-policy", "failover", "-c", "configs/sandbox.yaml"])
    assert result.exit_code == 0, result.output
    policy = json.loads(result.stdout)
    assert policy["Version"] == "2012-10-17"
    actions = policy_actions(policy)
    assert actions == RUNBOOKS["failover"].actions
    # EC2 is only read (a pilot light's move finds the DR subnets and security group).
    assert not any(a.startswith("ec2:") and not a.startswith("ec2:Describe") for a in actions)
    assert "ecs:CreateService" in actions  # a pilot light's move creates the DR services
    assert not any(a.startswith(("iam:", "kms:", "codebuild:", "sqs:")) for a in actions)
    assert {"rds:PromoteReadReplica", "route53:ChangeResourceRecordSets"} <= actions
    assert "sts:GetCallerIdentity" not in actions  # needs no permission


def test_an_unknown_runbook_lists_the_known_ones() -> None:
    result = CliRunner().invoke(app, ["iam-policy", "nuke"])
    assert result.exit_code == 2
    assert "unknown runbook 'nuke'" in result.output
    for name in ("failover", "provision", "redrive", "audit"):
        assert name in result.output


def test_an_alias_names_the_same_runbook() -> None:
    assert policy_for(CFG, "drill-backup") == policy_for(CFG, "backup-drill")


def by_sid(runbook: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["Sid"]: s for s in policy_for(CFG, runbook)["Statement"]}


def test_regional_actions_are_held_to_the_two_regions_and_global_ones_are_apart() -> None:
    stmts = by_sid("provision")
    regions = [CFG.regions.primary, CFG.regions.dr]
    for sid in ("Regional", "RegionalInAccount"):
        assert stmts[sid]["Condition"] == {"StringEquals": {"aws:RequestedRegion": regions}}
    glob = stmts["Global"]
    assert "Condition" not in glob
    assert {a.split(":")[0] for a in glob["Action"]} <= {"route53", "cloudfront"}
    assert not any(
        a.startswith(("route53:", "cloudfront:", "iam:")) for a in stmts["Regional"]["Action"]
    )


def test_resources_are_the_accounts_and_roles_the_stacks() -> None:
    stmts = by_sid("provision")
    account, stack = CFG.account_id, CFG.stack
    assert all(f":{account}:" in r for r in stmts["RegionalInAccount"]["Resource"])
    assert stmts["StackRoles"]["Resource"] == f"arn:aws:iam::{account}:role/{stack}-*"
    assert stmts["PassStackRoles"]["Action"] == ["iam:PassRole"]
    assert stmts["PassStackRoles"]["Condition"]["StringEquals"]["iam:PassedToService"]
    assert stmts["ServiceLinkedRoles"]["Resource"].endswith(":role/aws-service-role/*")
    assert all(s["Effect"] == "Allow" for s in stmts.values())


def test_a_cloudfront_web_acl_outside_the_two_regions_gets_us_east_1() -> None:
    raw = CFG.model_dump(mode="json")
    raw["regions"] = {"primary": "eu-west-1", "dr": "eu-central-1"}
    for role, region in raw["regions"].items():
        raw["network"][role]["azs"] = [f"{region}{z}" for z in "abc"]
    from configs import parse_config

    stmts = {s["Sid"]: s for s in policy_for(parse_config(raw), "provision")["Statement"]}
    assert stmts["CloudFrontWebAcl"]["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": ["us-east-1"]}
    }
    assert "wafv2:CreateWebACL" in stmts["CloudFrontWebAcl"]["Action"]
    assert "CloudFrontWebAcl" not in by_sid("provision")  # us-east-1 is already a region


def test_every_runbook_prints_a_policy() -> None:
    for runbook in RUNBOOKS:
        policy = policy_for(CFG, runbook)
        assert policy_actions(policy) == RUNBOOKS[runbook].actions
        assert json.loads(json.dumps(policy)) == policy


def test_a_config_without_an_edge_gets_a_policy() -> None:
    raw = CFG.model_dump(mode="json")
    raw["edge"] = None
    from configs import parse_config

    policy = policy_for(parse_config(raw), "provision")
    assert "CloudFrontWebAcl" not in {s["Sid"] for s in policy["Statement"]}
    assert policy_actions(policy) == RUNBOOKS["provision"].actions
