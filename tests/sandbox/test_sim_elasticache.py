"""The sandbox's ElastiCache Global Datastore: per-region views, progressions, AWS's refusals."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.testing import Sandbox
from tests.sandbox.test_sandbox import client, until

EAST, WEST, EU = "us-east-1", "us-west-2", "eu-west-1"
CHANGE_S = 1.0  # how long a change takes here


@pytest.fixture
def aws(sandbox: Sandbox, clean_aws: str) -> str:
    """A clean account whose Global Datastore changes take ``CHANGE_S``: long enough that a
    state read right after a call (``modifying``) holds on a loaded machine."""
    sandbox.control.timings(cache_global_seconds=CHANGE_S)
    return clean_aws


def code(call: Any) -> str:
    with pytest.raises(ClientError) as err:
        call()
    return str(err.value.response["Error"]["Code"])


# The primary's replication group: what a secondary inherits, and encryption.
GROUP = {"ReplicationGroupId": "sessions", "ReplicationGroupDescription": "s"}
INHERITED = {"Engine": "valkey", "EngineVersion": "7.2", "CacheNodeType": "cache.r7g.large"}
ENCRYPTED = {"TransitEncryptionEnabled": True, "AtRestEncryptionEnabled": True}


def primary(endpoint: str) -> None:
    ec = client(endpoint, "elasticache", EAST)
    ec.create_replication_group(**GROUP, **INHERITED, **ENCRYPTED, NumCacheClusters=2)


def status(ec: Any, gid: str) -> str:
    found = ec.describe_global_replication_groups(GlobalReplicationGroupId=gid)
    return str(found["GlobalReplicationGroups"][0]["Status"])


def test_a_datastore_is_seen_from_its_members_regions_only_and_progresses(
    aws: str,
) -> None:
    east, west, eu = (client(aws, "elasticache", r) for r in (EAST, WEST, EU))
    primary(aws)
    made = east.create_global_replication_group(
        GlobalReplicationGroupIdSuffix="shop", PrimaryReplicationGroupId="sessions"
    )["GlobalReplicationGroup"]
    gid = made["GlobalReplicationGroupId"]
    assert (gid, made["Status"]) == ("sgaui-shop", "creating")
    assert code(lambda: east.create_global_replication_group(
        GlobalReplicationGroupIdSuffix="shop", PrimaryReplicationGroupId="sessions"
    )) == "GlobalReplicationGroupAlreadyExistsFault"  # fmt: skip
    # a secondary cannot join while the datastore is being created
    join = {
        "ReplicationGroupId": "sessions",
        "ReplicationGroupDescription": "s",
        "GlobalReplicationGroupId": gid,
        "NumCacheClusters": 2,
    }
    assert code(lambda: west.create_replication_group(**join)) == (
        "InvalidGlobalReplicationGroupState"
    )
    until(lambda: status(east, gid), lambda s: s == "available")
    assert code(lambda: west.create_replication_group(**join, CacheNodeType="cache.m7g.large")) == (
        "InvalidParameterCombination"
    )
    west.create_replication_group(**join)
    member = west.describe_replication_groups(ReplicationGroupId="sessions")["ReplicationGroups"][0]
    assert member["CacheNodeType"] == "cache.r7g.large" and member["AtRestEncryptionEnabled"]
    assert member["GlobalReplicationGroupInfo"]["GlobalReplicationGroupMemberRole"] == "SECONDARY"
    # both member regions see one datastore; another region does not
    assert status(west, gid) == "modifying"
    until(lambda: status(west, gid), lambda s: s == "available")
    assert code(lambda: eu.describe_global_replication_groups(GlobalReplicationGroupId=gid)) == (
        "GlobalReplicationGroupNotFoundFault"
    )
    assert eu.describe_global_replication_groups()["GlobalReplicationGroups"] == []
    # an associated member cannot be deleted; the datastore not while it has a secondary
    assert code(lambda: west.delete_replication_group(ReplicationGroupId="sessions")) == (
        "InvalidReplicationGroupState"
    )
    assert code(lambda: east.delete_global_replication_group(
        GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True
    )) == "InvalidGlobalReplicationGroupState"  # fmt: skip


def test_failover_swaps_the_roles_after_a_while_and_delete_leaves_regional_groups(
    aws: str,
) -> None:
    east, west = client(aws, "elasticache", EAST), client(aws, "elasticache", WEST)
    primary(aws)
    gid = east.create_global_replication_group(
        GlobalReplicationGroupIdSuffix="shop", PrimaryReplicationGroupId="sessions"
    )["GlobalReplicationGroup"]["GlobalReplicationGroupId"]
    until(lambda: status(east, gid), lambda s: s == "available")
    west.create_replication_group(
        ReplicationGroupId="sessions", ReplicationGroupDescription="s", GlobalReplicationGroupId=gid
    )
    until(lambda: status(west, gid), lambda s: s == "available")
    # a promotion is allowed while another change is in progress, not a second one at once;
    # the group stays modifying until the last of them ends (the change ends first here)
    east.modify_global_replication_group(
        GlobalReplicationGroupId=gid, ApplyImmediately=True, GlobalReplicationGroupDescription="x"
    )
    time.sleep(CHANGE_S / 2)  # the promotion starts while the change is half done
    promote = {"GlobalReplicationGroupId": gid, "PrimaryReplicationGroupId": "sessions"}
    west.failover_global_replication_group(**promote, PrimaryRegion=WEST)
    assert status(west, gid) == "modifying"
    assert code(lambda: west.failover_global_replication_group(**promote, PrimaryRegion=WEST)) == (
        "InvalidGlobalReplicationGroupState"
    )
    until(lambda: status(west, gid), lambda s: s == "available")
    info = east.describe_replication_groups(ReplicationGroupId="sessions")["ReplicationGroups"][0]
    assert info["GlobalReplicationGroupInfo"]["GlobalReplicationGroupMemberRole"] == "SECONDARY"
    west.disassociate_global_replication_group(
        GlobalReplicationGroupId=gid, ReplicationGroupId="sessions", ReplicationGroupRegion=EAST
    )
    until(lambda: status(west, gid), lambda s: s == "available")
    west.delete_global_replication_group(
        GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True
    )
    until(
        lambda: west.describe_global_replication_groups()["GlobalReplicationGroups"],
        lambda found: found == [],
    )
    for ec in (east, west):
        (group,) = ec.describe_replication_groups()["ReplicationGroups"]
        assert not group.get("GlobalReplicationGroupInfo")
