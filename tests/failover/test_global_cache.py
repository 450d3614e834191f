"""The session cache as an ElastiCache Global Datastore, end to end on the sandbox: provision
makes it with a DR member, failover promotes that member next to the database, failback
returns it, destroy leaves nothing; also with the primary region dark. State read back with
plain boto3, from each region."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from configs.names import Role, names_for
from configs.permissions import RUNBOOKS
from flows.destroy import destroy
from flows.failover import failback, failover, switchover
from flows.provision import provision
from sandbox.control import SandboxControl
from sandbox.testing import ROOT, Stack, push_images
from tests.failover.test_failover_e2e import assert_failed_over
from tests.failover.test_static_stability import EAST, dark, requests_to
from tests.iam.test_recorded import Ops, actions
from tests.support import fresh_account, watch

pytestmark = [pytest.mark.e2e]


def global_config(folder: Path) -> Path:
    """The demo config with a global session cache (on an R node type: AWS's requirement)."""
    data = yaml.safe_load((ROOT / "configs/sandbox.yaml").read_text())
    data["cache"].update(node_type="cache.r7g.large", global_datastore=True)
    path = folder / "global-cache.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def built(
    tmp_path: Path, aws_endpoint: str, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> tuple[Stack, str, Ops]:
    """A fresh account provisioned with the global cache, images pushed in both regions: the
    stack, its config's path and the calls the provision made."""
    path = str(global_config(tmp_path))
    cfg = fresh_account(aws_endpoint, monkeypatch, path)
    calls = watch(cfg)
    report = provision(config=path)
    assert report["outcome"] == "succeeded", report.get("error")
    push_images(cfg)
    return Stack(cfg=cfg, control=SandboxControl(aws_endpoint)), path, set(calls.operations)


def allowed(runbook: str, ops: Ops, *needed: str) -> None:
    """``ops`` are within the runbook's IAM policy, and include ``needed``."""
    made = actions(ops)
    assert made - RUNBOOKS[runbook].actions == set(), runbook
    assert set(needed) <= made, runbook


def datastores(stack: Stack, role: Role) -> list[dict[str, Any]]:
    """Every Global Datastore ``role``'s region sees, with its members."""
    ec = stack.client("elasticache", role)
    found: list[dict[str, Any]] = ec.describe_global_replication_groups(ShowMemberInfo=True)[
        "GlobalReplicationGroups"
    ]
    return found


def roles(stack: Stack) -> dict[str, str]:
    """{region: role} of the one datastore's members, as the DR region sees it."""
    (group,) = datastores(stack, "dr")
    assert group["Status"] == "available"
    return {m["ReplicationGroupRegion"]: m["Role"] for m in group["Members"]}


def cache_groups(stack: Stack, role: Role) -> list[str]:
    ec = stack.client("elasticache", role)
    return [g["ReplicationGroupId"] for g in ec.describe_replication_groups()["ReplicationGroups"]]


def test_provision_failover_failback_destroy(built: tuple[Stack, str, Ops]) -> None:
    stack, path, provisioned = built
    cfg = stack.cfg
    allowed(
        "provision",
        provisioned,
        "elasticache:CreateGlobalReplicationGroup",
        "elasticache:CreateReplicationGroup",
    )
    dr = names_for(cfg, "dr")
    # provisioned: one datastore, seen alike from both regions, both members associated
    (seen_primary,) = datastores(stack, "primary")
    (seen_dr,) = datastores(stack, "dr")
    assert seen_primary == seen_dr
    assert seen_dr["GlobalReplicationGroupId"].endswith(f"-{cfg.stack}-cache")
    assert {m["Status"] for m in seen_dr["Members"]} == {"associated"}
    assert roles(stack) == {cfg.regions.primary: "PRIMARY", cfg.regions.dr: "SECONDARY"}
    member = stack.client("elasticache", "dr").describe_replication_groups(
        ReplicationGroupId=dr.cache
    )["ReplicationGroups"][0]
    assert member["AtRestEncryptionEnabled"] and member["TransitEncryptionEnabled"]
    assert (member["CacheNodeType"], member.get("Engine")) == ("cache.r7g.large", "valkey")

    # ensure twice: nothing to do, and the plan shows nothing
    again = provision(config=path)
    assert again["outcome"] == "succeeded" and again["changes"] == []
    steps = {s["step"]: s["outcome"] for s in again["steps"]}
    assert steps["ensure global cache"] == "unchanged"
    assert provision(config=path, plan=True)["changes"] == []

    calls = watch(cfg)
    report = failover(config=path, approved=True, reason="test")
    assert report["outcome"] == "succeeded", report.get("error")
    allowed("failover", set(calls.operations), "elasticache:FailoverGlobalReplicationGroup")
    assert_failed_over(stack)
    assert roles(stack) == {cfg.regions.primary: "SECONDARY", cfg.regions.dr: "PRIMARY"}
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["promote session cache in dr"]["outcome"] == "changed"
    split = report["metrics"]["rto_split_seconds"]
    assert split["cache"] > 0 and split["database"] > 0
    # in parallel: the cache's failover began before the database's promotion ended
    cache, db = steps["promote session cache in dr"], steps["promote dr replica"]
    assert cache["start"] < db["end"] and db["start"] < cache["end"]

    calls = watch(cfg)
    back = failback(config=path, approved=True, reason="home")
    assert back["outcome"] == "succeeded", back.get("error")
    allowed("failback", set(calls.operations), "elasticache:FailoverGlobalReplicationGroup")
    assert roles(stack) == {cfg.regions.primary: "PRIMARY", cfg.regions.dr: "SECONDARY"}
    assert {s["step"]: s["outcome"] for s in back["steps"]}[
        "promote session cache in primary"
    ] == "changed"

    calls = watch(cfg)
    gone = destroy(config=path, yes=True, disable_deletion_protection=True)
    assert gone["outcome"] == "succeeded", gone.get("error")
    allowed(
        "destroy",
        set(calls.operations),
        "elasticache:DisassociateGlobalReplicationGroup",
        "elasticache:DeleteGlobalReplicationGroup",
    )
    assert datastores(stack, "primary") == datastores(stack, "dr") == []
    assert cache_groups(stack, "primary") == cache_groups(stack, "dr") == []


def test_failover_with_the_primary_region_dark_promotes_the_dr_member(
    built: tuple[Stack, str, Ops],
) -> None:
    stack, path, _ = built
    cfg = stack.cfg
    before = requests_to(stack, EAST)
    dark(stack)
    try:
        report = failover(config=path, approved=True, reason="us-east-1 is dark")
        during = requests_to(stack, EAST)
    finally:
        stack.control.clear_faults()
    assert report["outcome"] == "succeeded", report.get("error")
    assert_failed_over(stack, fenced=False)
    assert roles(stack)[cfg.regions.dr] == "PRIMARY"
    # the primary was asked only the probe's four calls: the datastore was failed over in DR
    asked = {k: during.get(k, 0) - before.get(k, 0) for k in during}
    assert sum(asked.values()) == 4, asked
    calls = stack.control.stats()["requests"]
    assert calls.get(f"{cfg.regions.dr} elasticache:FailoverGlobalReplicationGroup") == 1
    assert "readiness dr-cache: pass" in " ".join(report["notes"])


def test_switchover_moves_the_cache_with_the_database_and_failback_returns_it(
    built: tuple[Stack, str, Ops],
) -> None:
    stack, path, _ = built
    cfg = stack.cfg
    report = switchover(config=path, approved=True, reason="planned")
    assert report["outcome"] == "succeeded", report.get("error")
    assert report["metrics"]["rpo_seconds"] == 0
    assert roles(stack) == {cfg.regions.primary: "SECONDARY", cfg.regions.dr: "PRIMARY"}
    steps = {s["step"]: s["outcome"] for s in report["steps"]}
    assert steps["promote session cache in dr"] == "changed"
    back = failback(config=path, approved=True, reason="home")
    assert back["outcome"] == "succeeded", back.get("error")
    assert roles(stack) == {cfg.regions.primary: "PRIMARY", cfg.regions.dr: "SECONDARY"}


def test_destroying_the_primary_alone_deletes_the_datastore_and_leaves_dr_a_regional_cache(
    built: tuple[Stack, str, Ops],
) -> None:
    stack, path, _ = built
    gone = destroy(config=path, region="primary", yes=True, disable_deletion_protection=True)
    assert gone["outcome"] == "succeeded", gone.get("error")
    assert datastores(stack, "dr") == []
    assert cache_groups(stack, "primary") == []
    (member,) = stack.client("elasticache", "dr").describe_replication_groups()["ReplicationGroups"]
    assert member["Status"] == "available" and not member.get("GlobalReplicationGroupInfo")


def test_an_existing_datastore_named_in_the_config_is_adopted_and_converged(
    tmp_path: Path, aws_endpoint: str, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack provisioned with a regional cache, a datastore made by hand from its primary
    group (another name, another description); the config names it under
    ``names.global_cache``: provision adopts it (makes no other), gives it tierbook's
    description, adds the DR member; a second run changes nothing."""
    regional = yaml.safe_load(global_config(tmp_path).read_text())
    regional["cache"]["global_datastore"] = False
    first = tmp_path / "regional.yaml"
    first.write_text(yaml.safe_dump(regional))
    cfg = fresh_account(aws_endpoint, monkeypatch, str(first))
    report = provision(config=str(first))
    assert report["outcome"] == "succeeded", report.get("error")
    stack = Stack(cfg=cfg, control=SandboxControl(aws_endpoint))
    east = stack.client("elasticache", "primary")
    made = east.create_global_replication_group(
        GlobalReplicationGroupIdSuffix="legacy-sessions",
        GlobalReplicationGroupDescription="made by hand",
        PrimaryReplicationGroupId=names_for(cfg, "primary").cache,
    )["GlobalReplicationGroup"]["GlobalReplicationGroupId"]
    adopting = {**regional, "cache": {**regional["cache"], "global_datastore": True}}
    adopting["names"] = {**(adopting.get("names") or {}), "global_cache": made}
    second = tmp_path / "adopting.yaml"
    second.write_text(yaml.safe_dump(adopting))

    report = provision(config=str(second))
    assert report["outcome"] == "succeeded", report.get("error")
    (group,) = datastores(stack, "dr")
    assert group["GlobalReplicationGroupId"] == made
    assert group["GlobalReplicationGroupDescription"] == f"{cfg.stack} sessions"
    assert roles(stack) == {"us-east-1": "PRIMARY", "us-west-2": "SECONDARY"}
    assert [g["GlobalReplicationGroupId"] for g in datastores(stack, "primary")] == [made]
    again = provision(config=str(second), plan=True)
    assert again["outcome"] == "planned" and again["changes"] == [], again["changes"]
