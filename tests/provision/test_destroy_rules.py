"""Destroy's pure decisions on AWS-shaped payloads, and the call moto lacks (Stubber)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from configs import load_config
from configs.names import names_for
from sandbox.testing import ROOT
from tasks.core.aws import connect, forget_connections
from tasks.core.errors import PermanentAwsError
from tasks.resources.cache import ensure_cache_deleted
from tasks.resources.database.lookup import database_identifiers
from tasks.resources.database.postgres import final_snapshot_id
from tasks.resources.dns import stack_records
from tasks.resources.network.vpc import once_released
from tasks.runbooks.destroy.protection import protected_resources

CFG = load_config(ROOT / "configs" / "sandbox.yaml")


def test_protection_names_each_protected_database_and_load_balancer() -> None:
    dbs = [
        {"DBInstanceIdentifier": "shop-sandbox-db", "DeletionProtection": True},
        {"DBInstanceIdentifier": "shop-sandbox-db-ro1", "DeletionProtection": False},
    ]
    albs = {
        "shop-sandbox (us-east-1)": {"deletion_protection.enabled": "true"},
        "shop-sandbox (us-west-2)": {"deletion_protection.enabled": "false"},
    }
    assert protected_resources(dbs, albs) == [
        "database shop-sandbox-db",
        "load balancer shop-sandbox (us-east-1)",
    ]
    assert protected_resources([], {}) == []


def test_replicas_go_before_their_writer_and_only_the_stack_s() -> None:
    primary = {"ReadReplicaDBInstanceIdentifiers": ["shop-sandbox-db-ro2", "someone-elses-ro"]}
    assert database_identifiers(CFG, "primary", primary) == [
        "shop-sandbox-db-ro1",
        "shop-sandbox-db-ro2",
        "shop-sandbox-db",
    ]
    assert database_identifiers(CFG, "dr", None) == ["shop-sandbox-db-dr"]


def test_final_snapshots_are_named_by_instance_and_sort_by_age() -> None:
    old = final_snapshot_id("shop-sandbox-db", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    new = final_snapshot_id("shop-sandbox-db", datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC))
    assert old == "shop-sandbox-db-final-20260102-030405"
    assert max(old, new) == new


def test_only_the_stack_s_records_are_deleted() -> None:
    app = [
        {"Name": "origin.shop.example.com.", "Type": "A", "SetIdentifier": "shop-sandbox-primary"},
        {"Name": "origin.shop.example.com.", "Type": "A", "SetIdentifier": "shop-sandbox-dr"},
        {"Name": "origin.shop.example.com.", "Type": "A", "SetIdentifier": "shop-staging-dr"},
    ]
    apex = [
        {
            "Name": "shop.example.com.",
            "Type": "A",
            "AliasTarget": {"DNSName": "d1.cloudfront.net."},
        },
        {
            "Name": "shop.example.com.",
            "Type": "A",
            "AliasTarget": {"DNSName": "d9.cloudfront.net."},
        },
    ]
    both = stack_records(CFG, ["primary", "dr"], app, apex, "d1.cloudfront.net")
    assert [r.get("SetIdentifier") for r in both] == [
        "shop-sandbox-primary",
        "shop-sandbox-dr",
        None,
    ]
    assert both[-1]["AliasTarget"]["DNSName"] == "d1.cloudfront.net."
    dr_only = stack_records(CFG, ["dr"], app, apex, "d1.cloudfront.net")
    assert [r["SetIdentifier"] for r in dr_only] == ["shop-sandbox-dr"]


def test_cache_subnet_group_deletion_against_the_real_api_model() -> None:
    """moto 5.2 has no DeleteCacheSubnetGroup (the sandbox adds it): the request is checked
    against botocore's model of the real API."""
    forget_connections()
    aws = connect(CFG)
    aws._verified_account = CFG.account_id  # no STS round trip in a unit test
    names = names_for(CFG)
    client = aws.client("elasticache", names.region)
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_replication_groups",
            service_error_code="ReplicationGroupNotFoundFault",
            http_status_code=404,
            expected_params={"ReplicationGroupId": names.cache},
        )
        stub.add_response(
            "describe_cache_subnet_groups",
            {"CacheSubnetGroups": [{"CacheSubnetGroupName": names.cache_subnet_group}]},
            {"CacheSubnetGroupName": names.cache_subnet_group},
        )
        stub.add_response(
            "delete_cache_subnet_group", {}, {"CacheSubnetGroupName": names.cache_subnet_group}
        )
        done = ensure_cache_deleted.fn(CFG, dry_run=False)
        stub.assert_no_pending_responses()
    assert [(c.resource, c.name) for c in done.changes] == [
        ("elasticache:subnet-group", "shop-sandbox-data")
    ]
    forget_connections()


def test_a_dependency_still_being_released_is_waited_for_and_others_fail_at_once() -> None:
    attempts: list[int] = []

    def delete_subnet() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise PermanentAwsError("DependencyViolation", "has dependencies", status=400)

    once_released(delete_subnet, "subnet deleted")
    assert len(attempts) == 3

    def denied() -> None:
        raise PermanentAwsError("UnauthorizedOperation", "no", status=403)

    with pytest.raises(PermanentAwsError):
        once_released(denied, "subnet deleted")
