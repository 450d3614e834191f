"""The Global Datastore's calls checked against AWS's request and response shapes with
botocore's Stubber (the sandbox emulates them; this holds them to the real model), the pure
readiness rule, and the config's refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from configs.errors import BadInput
from configs.loader import parse_config
from configs.models import Config
from configs.names import names_for
from sandbox.testing import ROOT
from tasks.core import retry
from tasks.core.aws import install_retries
from tasks.core.tags import tag_list
from tasks.resources import cache_global
from tasks.resources.cache_global import (
    ensure_global_cache,
    ensure_global_cache_deleted,
    global_cache_findings,
    promote_session_cache,
)

EAST, WEST = "us-east-1", "us-west-2"
CACHE = "shop-sandbox-cache"
GID = "sgaui-shop-sandbox-cache"
KEY = "arn:aws:kms:us-west-2:123456789012:key/1234"


def config(**cache: Any) -> Config:
    data = yaml.safe_load((ROOT / "configs/sandbox.yaml").read_text())
    data["cache"].update(node_type="cache.r7g.large", global_datastore=True, **cache)
    return parse_config(data, source="test")


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Stubber]]:
    """A stubbed ElastiCache client per region, behind tierbook's retry layer."""
    clients: dict[str, Any] = {}
    stubbers: dict[str, Stubber] = {}
    for region in (EAST, WEST):
        client = boto3.client(
            "elasticache", region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
        )
        install_retries(
            client, policy=retry.RetryPolicy(max_attempts=1), before_mutation=lambda: None, env="t"
        )
        clients[region], stubbers[region] = client, Stubber(client)
    monkeypatch.setattr(cache_global, "_regional", lambda cfg, region: clients[region])
    for s in stubbers.values():
        s.activate()
    yield stubbers
    for s in stubbers.values():
        s.assert_no_pending_responses()
        s.deactivate()


def rg(role: str | None = None) -> dict[str, Any]:
    """A described replication group as the config wants it (``role``: its datastore's)."""
    group: dict[str, Any] = {
        "ReplicationGroupId": CACHE,
        "Status": "available",
        "AutomaticFailover": "enabled",
        "MultiAZ": "enabled",
        "SnapshotRetentionLimit": 7,
        "MemberClusters": [f"{CACHE}-001", f"{CACHE}-002"],
        "TransitEncryptionEnabled": True,
        "AtRestEncryptionEnabled": True,
    }
    if role:
        group["GlobalReplicationGroupInfo"] = {
            "GlobalReplicationGroupId": GID,
            "GlobalReplicationGroupMemberRole": role,
        }
    return {"ReplicationGroups": [group]}


def datastore(
    status: str = "available", description: str = "shop-sandbox sessions", **roles: str
) -> dict[str, Any]:
    """A described datastore; ``roles``: region (``us_east_1``) → role."""
    members = [
        {
            "ReplicationGroupId": CACHE,
            "ReplicationGroupRegion": region.replace("_", "-"),
            "Role": role,
            "Status": "associated",
        }
        for region, role in roles.items()
    ]
    return {
        "GlobalReplicationGroups": [
            {
                "GlobalReplicationGroupId": GID,
                "GlobalReplicationGroupDescription": description,
                "Status": status,
                "Members": members,
            }
        ]
    }


DESCRIBE = {"GlobalReplicationGroupId": GID, "ShowMemberInfo": True}
NOT_FOUND = "ReplicationGroupNotFoundFault"
# FailoverGlobalReplicationGroup making DR's member the primary, asked in DR
PROMOTE_DR = {
    "GlobalReplicationGroupId": GID,
    "PrimaryRegion": WEST,
    "PrimaryReplicationGroupId": CACHE,
}


def test_ensure_creates_the_datastore_then_the_encrypted_dr_member(
    stubs: dict[str, Stubber],
) -> None:
    cfg = config()
    east, west = stubs[EAST], stubs[WEST]
    east.add_response("describe_replication_groups", rg(), {"ReplicationGroupId": CACHE})
    east.add_response(
        "describe_global_replication_groups",
        {"GlobalReplicationGroups": []},
        {"ShowMemberInfo": True},
    )
    east.add_response(
        "create_global_replication_group",
        {"GlobalReplicationGroup": {"GlobalReplicationGroupId": GID, "Status": "creating"}},
        {
            "GlobalReplicationGroupIdSuffix": CACHE,
            "GlobalReplicationGroupDescription": "shop-sandbox sessions",
            "PrimaryReplicationGroupId": CACHE,
        },
    )
    east.add_response(
        "describe_global_replication_groups", datastore(us_east_1="PRIMARY"), DESCRIBE
    )
    west.add_client_error(
        "describe_replication_groups", NOT_FOUND, expected_params={"ReplicationGroupId": CACHE}
    )
    west.add_response(
        "create_replication_group",
        {"ReplicationGroup": {"ReplicationGroupId": CACHE, "Status": "creating"}},
        {
            "ReplicationGroupId": CACHE,
            "ReplicationGroupDescription": f"shop-sandbox cache (DR member of {GID})",
            "GlobalReplicationGroupId": GID,
            "NumCacheClusters": 2,
            "PreferredCacheClusterAZs": ["us-west-2a", "us-west-2b"],
            "CacheSubnetGroupName": "shop-sandbox-data",
            "KmsKeyId": KEY,
            "Tags": _tags(cfg),
            "AutomaticFailoverEnabled": True,
            "MultiAZEnabled": True,
            "SnapshotRetentionLimit": 7,
            "SecurityGroupIds": ["sg-data"],
        },
    )
    west.add_response(
        "describe_global_replication_groups",
        datastore(us_east_1="PRIMARY", us_west_2="SECONDARY"),
        DESCRIBE,
    )
    out = ensure_global_cache.fn(cfg, KEY, "sg-data")
    assert [(c.resource, c.action) for c in out.changes] == [
        ("elasticache:global-replication-group", "create"),
        ("elasticache:replication-group", "create"),
    ]
    assert out.outputs == {"global_cache": GID}


def _tags(cfg: Config) -> list[dict[str, str]]:
    return tag_list(names_for(cfg, "dr").tags("data"))


def primary_found(stubs: dict[str, Stubber], group: dict[str, Any]) -> None:
    """The primary's group names the datastore, described as ``group``."""
    stubs[EAST].add_response(
        "describe_replication_groups", rg("PRIMARY"), {"ReplicationGroupId": CACHE}
    )
    stubs[EAST].add_response("describe_global_replication_groups", group, DESCRIBE)


def members_found(stubs: dict[str, Stubber], dr_member: dict[str, Any]) -> None:
    """Both members exist: the primary's names the datastore, DR's is ``dr_member``."""
    primary_found(stubs, datastore(us_east_1="PRIMARY", us_west_2="SECONDARY"))
    stubs[WEST].add_response(
        "describe_replication_groups", dr_member, {"ReplicationGroupId": CACHE}
    )
    stubs[WEST].add_response(
        "describe_cache_clusters",
        {"CacheClusters": [{"SecurityGroups": [{"SecurityGroupId": "sg-data"}]}]},
        {"CacheClusterId": f"{CACHE}-001"},
    )


def test_ensure_adopts_the_datastore_a_member_names_and_changes_nothing(
    stubs: dict[str, Stubber],
) -> None:
    members_found(stubs, rg("SECONDARY"))
    out = ensure_global_cache.fn(config(), KEY, "sg-data")
    assert out.changes == [] and out.outputs == {"global_cache": GID}


def test_ensure_gives_an_adopted_datastore_tierbooks_description_and_waits(
    stubs: dict[str, Stubber],
) -> None:
    primary_found(stubs, datastore(description="made by hand", us_east_1="PRIMARY"))
    stubs[EAST].add_response(
        "modify_global_replication_group",
        {"GlobalReplicationGroup": {"GlobalReplicationGroupId": GID, "Status": "modifying"}},
        {
            "GlobalReplicationGroupId": GID,
            "ApplyImmediately": True,
            "GlobalReplicationGroupDescription": "shop-sandbox sessions",
        },
    )
    stubs[EAST].add_response(
        "describe_global_replication_groups", datastore(us_east_1="PRIMARY"), DESCRIBE
    )
    group, changes = cache_global._ensure_group(config(), dry_run=False)
    assert group is not None and group["GlobalReplicationGroupId"] == GID
    assert [(c.action.value, c.after) for c in changes] == [
        ("update", {"description": "shop-sandbox sessions"})
    ]


def test_ensure_converges_the_dr_member_like_the_primary(stubs: dict[str, Stubber]) -> None:
    drifted = rg("SECONDARY")
    drifted["ReplicationGroups"][0]["SnapshotRetentionLimit"] = 1
    members_found(stubs, drifted)
    stubs[WEST].add_response(
        "modify_replication_group",
        {"ReplicationGroup": {"ReplicationGroupId": CACHE}},
        {"ReplicationGroupId": CACHE, "ApplyImmediately": True, "SnapshotRetentionLimit": 7},
    )
    (change,) = ensure_global_cache.fn(config(), KEY, "sg-data").changes
    assert (change.region, change.before, change.after) == (
        WEST,
        {"SnapshotRetentionLimit": 1},
        {"SnapshotRetentionLimit": 7},
    )


def test_promotion_is_called_in_the_promoted_members_region_only(
    stubs: dict[str, Stubber],
) -> None:
    west = stubs[WEST]
    west.add_response("describe_replication_groups", rg("SECONDARY"), {"ReplicationGroupId": CACHE})
    west.add_response(
        "describe_global_replication_groups",
        datastore(us_east_1="PRIMARY", us_west_2="SECONDARY"),
        DESCRIBE,
    )
    west.add_response(
        "failover_global_replication_group",
        {"GlobalReplicationGroup": {"GlobalReplicationGroupId": GID, "Status": "modifying"}},
        PROMOTE_DR,
    )
    west.add_response(
        "describe_global_replication_groups",
        datastore(us_east_1="SECONDARY", us_west_2="PRIMARY"),
        DESCRIBE,
    )
    out = promote_session_cache.fn(config(), "dr")
    assert out.changes[0].after == {"role": "PRIMARY"}


def test_a_promotion_already_under_way_is_waited_for(stubs: dict[str, Stubber]) -> None:
    west = stubs[WEST]
    west.add_response("describe_replication_groups", rg("SECONDARY"), {"ReplicationGroupId": CACHE})
    west.add_response(
        "describe_global_replication_groups",
        datastore("modifying", us_east_1="PRIMARY", us_west_2="SECONDARY"),
        DESCRIBE,
    )
    west.add_client_error(
        "failover_global_replication_group",
        "InvalidGlobalReplicationGroupState",
        expected_params=PROMOTE_DR,
    )
    west.add_response(
        "describe_global_replication_groups",
        datastore(us_east_1="SECONDARY", us_west_2="PRIMARY"),
        DESCRIBE,
    )
    assert promote_session_cache.fn(config(), "dr").changes[0].region == WEST


def test_destroy_disassociates_then_deletes_keeping_the_primary(
    stubs: dict[str, Stubber],
) -> None:
    east, west = stubs[EAST], stubs[WEST]
    both = datastore(us_east_1="PRIMARY", us_west_2="SECONDARY")
    west.add_response("describe_replication_groups", rg("SECONDARY"), {"ReplicationGroupId": CACHE})
    west.add_response("describe_global_replication_groups", both, DESCRIBE)
    east.add_response("describe_global_replication_groups", both, DESCRIBE)
    east.add_response(
        "disassociate_global_replication_group",
        {"GlobalReplicationGroup": {"GlobalReplicationGroupId": GID}},
        {
            "GlobalReplicationGroupId": GID,
            "ReplicationGroupId": CACHE,
            "ReplicationGroupRegion": WEST,
        },
    )
    east.add_response(
        "describe_global_replication_groups", datastore(us_east_1="PRIMARY"), DESCRIBE
    )
    east.add_response(
        "delete_global_replication_group",
        {"GlobalReplicationGroup": {"GlobalReplicationGroupId": GID, "Status": "deleting"}},
        {"GlobalReplicationGroupId": GID, "RetainPrimaryReplicationGroup": True},
    )
    east.add_client_error(
        "describe_global_replication_groups",
        "GlobalReplicationGroupNotFoundFault",
        expected_params=DESCRIBE,
    )
    west.add_response("describe_replication_groups", rg(), {"ReplicationGroupId": CACHE})
    west.add_response(
        "delete_replication_group",
        {"ReplicationGroup": {"ReplicationGroupId": CACHE, "Status": "deleting"}},
        {"ReplicationGroupId": CACHE, "RetainPrimaryCluster": False},
    )
    west.add_client_error(
        "describe_replication_groups", NOT_FOUND, expected_params={"ReplicationGroupId": CACHE}
    )
    west.add_client_error(
        "describe_cache_subnet_groups",
        "CacheSubnetGroupNotFoundFault",
        expected_params={"CacheSubnetGroupName": "shop-sandbox-data"},
    )
    out = ensure_global_cache_deleted.fn(config())
    assert [(c.resource, c.name) for c in out.changes] == [
        ("elasticache:global-member", CACHE),
        ("elasticache:global-replication-group", GID),
        ("elasticache:replication-group", CACHE),
    ]


def test_a_dr_group_outside_the_datastore_is_reported_not_replaced(
    stubs: dict[str, Stubber],
) -> None:
    stubs[EAST].add_response(
        "describe_replication_groups", rg("PRIMARY"), {"ReplicationGroupId": CACHE}
    )
    stubs[EAST].add_response(
        "describe_global_replication_groups", datastore(us_east_1="PRIMARY"), DESCRIBE
    )
    stubs[WEST].add_response("describe_replication_groups", rg(), {"ReplicationGroupId": CACHE})
    (change,) = ensure_global_cache.fn(config(), KEY, "sg-data").changes
    assert (change.action, change.region) == ("replace", WEST)
    assert "cannot join" in change.detail and "dr_names.cache" in change.detail


def test_promotion_without_a_datastore_names_the_fix(stubs: dict[str, Stubber]) -> None:
    stubs[WEST].add_response("describe_replication_groups", rg(), {"ReplicationGroupId": CACHE})
    with pytest.raises(BadInput, match="tierbook provision"):
        promote_session_cache.fn(config(), "dr")


# -- pure: readiness -------------------------------------------------------------------------
def test_readiness_passes_an_associated_member_and_names_the_fix_otherwise() -> None:
    both = datastore(us_east_1="PRIMARY", us_west_2="SECONDARY")["GlobalReplicationGroups"][0]
    assert global_cache_findings(both, CACHE, WEST)[0] == "pass"
    assert global_cache_findings({**both, "Status": "modifying"}, CACHE, WEST)[0] == "warn"
    alone = datastore(us_east_1="PRIMARY")["GlobalReplicationGroups"][0]
    status, detail = global_cache_findings(alone, CACHE, WEST)
    assert status == "fail" and "provision adds it" in detail
    joining = {**both, "Members": [{**m, "Status": "associating"} for m in both["Members"]]}
    assert global_cache_findings(joining, CACHE, WEST)[0] == "fail"
    assert "provision creates it" in global_cache_findings(None, CACHE, WEST)[1]


# -- config ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"dr": {"posture": "pilot_light"}}, ["cache.global_datastore", "warm_standby"]),
        ({"cache": {"node_type": "cache.t4g.small"}}, ["global_datastore", "M or R node type"]),
        ({"cache": {"global_datstore": True}}, ["global_datstore"]),
        ({"dr_names": {"global_cache": "sgaui-x"}}, ["names.global_cache"]),
    ],
)
def test_bad_input_names_the_field_and_the_fix(change: dict[str, Any], words: list[str]) -> None:
    data = yaml.safe_load((ROOT / "configs/sandbox.yaml").read_text())
    data["cache"].update(node_type="cache.r7g.large", global_datastore=True)
    for block, values in change.items():
        data.setdefault(block, {}).update(values)
    with pytest.raises(BadInput) as err:
        parse_config(data, source="test")
    for word in words:
        assert word in str(err.value)
