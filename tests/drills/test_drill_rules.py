"""Pure parts of the drills, and ``TestFailover`` against the real API shape (Stubber).

moto has no ``TestFailover``: the call is checked here against botocore's model of the real
API, through tierbook's own retry layer, with a stubbed client.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from botocore.stub import Stubber

from tasks.core import retry
from tasks.core.aws import install_retries
from tasks.core.errors import PermanentAwsError
from tasks.runbooks.drills import backup
from tasks.runbooks.drills import game_day as gameday

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


# -- backup --------------------------------------------------------------------------------
def test_drill_ids_are_valid_unique_and_carry_their_time(sandbox_cfg: Any) -> None:
    a, b = backup.drill_id(sandbox_cfg, NOW), backup.drill_id(sandbox_cfg, NOW)
    assert a != b
    assert a.startswith("shop-sandbox-drill-20260501120000-") and len(a) <= 63
    assert backup.stamp_of(a, backup.drill_prefix(sandbox_cfg)) == NOW
    assert backup.stamp_of("shop-sandbox-db-1", backup.drill_prefix(sandbox_cfg)) is None


def test_expired_keeps_recent_others_and_this_drills_own() -> None:
    snaps = [
        {"DBSnapshotIdentifier": "s-drill-old", "SnapshotCreateTime": NOW - timedelta(days=9)},
        {"DBSnapshotIdentifier": "s-drill-mine", "SnapshotCreateTime": NOW - timedelta(days=9)},
        {"DBSnapshotIdentifier": "s-drill-new", "SnapshotCreateTime": NOW - timedelta(days=2)},
        {"DBSnapshotIdentifier": "manual-old", "SnapshotCreateTime": NOW - timedelta(days=90)},
        {"DBSnapshotIdentifier": "s-drill-creating"},
    ]
    got = backup.expired(
        snaps,
        prefix="s-drill-",
        now=NOW,
        keep_days=7,
        created_key="SnapshotCreateTime",
        id_key="DBSnapshotIdentifier",
        keep=frozenset({"s-drill-mine"}),
    )
    assert got == ["s-drill-old"]


def test_latest_automated_takes_the_newest_available() -> None:
    snaps = [
        {"DBSnapshotIdentifier": "a", "Status": "available", "SnapshotCreateTime": NOW},
        {
            "DBSnapshotIdentifier": "b",
            "Status": "creating",
            "SnapshotCreateTime": NOW + timedelta(hours=1),
        },
        {
            "DBSnapshotIdentifier": "c",
            "Status": "available",
            "SnapshotCreateTime": NOW - timedelta(days=1),
        },
    ]
    assert backup.latest_automated(snaps)["DBSnapshotIdentifier"] == "a"  # type: ignore[index]
    assert backup.latest_automated([]) is None


def test_delete_refuses_anything_not_named_like_a_drill(sandbox_cfg: Any) -> None:
    from configs.errors import Refused

    with pytest.raises(Refused, match="not a drill instance"):
        backup.delete_temporary_instance.fn(sandbox_cfg, "shop-sandbox-db")


# -- game day ------------------------------------------------------------------------------
def test_game_day_rules() -> None:
    alarms = [
        {"AlarmName": "a", "StateValue": "OK"},
        {"AlarmName": "b", "StateValue": "ALARM"},
    ]
    assert gameday.firing(alarms) == ["b"]
    assert gameday.missing(alarms, ["a", "c"]) == ["c"]
    tasks = [
        {"taskArn": "t1", "availabilityZone": "us-east-1a", "lastStatus": "RUNNING"},
        {"taskArn": "t2", "availabilityZone": "us-east-1b", "lastStatus": "RUNNING"},
        {"taskArn": "t3", "availabilityZone": "us-east-1a", "lastStatus": "STOPPED"},
    ]
    assert gameday.tasks_in_az(tasks, "us-east-1a") == ["t1"]
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert gameday.busiest_az(tasks, zones) == "us-east-1a"  # t3 is stopped: a tie, a first
    assert gameday.busiest_az(tasks[1:2], zones) == "us-east-1b"
    assert gameday.busiest_az([], zones) == "us-east-1a"
    assert gameday.service_recovered({"runningCount": 2, "desiredCount": 2})
    assert not gameday.service_recovered({"runningCount": 1, "desiredCount": 2})


def stubbed_elasticache() -> tuple[Any, Stubber]:
    client = boto3.client(
        "elasticache",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    install_retries(
        client, policy=retry.RetryPolicy(max_attempts=1), before_mutation=lambda: None, env="t"
    )
    return client, Stubber(client)


GROUP = {
    "ReplicationGroupId": "shop-sandbox-cache",
    "Status": "available",
    "NodeGroups": [{"NodeGroupId": "0001", "Status": "available"}],
}


def test_test_failover_is_called_on_the_primary_node_group() -> None:
    client, stub = stubbed_elasticache()
    stub.add_response(
        "describe_replication_groups",
        {"ReplicationGroups": [GROUP]},
        {"ReplicationGroupId": "shop-sandbox-cache"},
    )
    stub.add_response(
        "test_failover",
        {"ReplicationGroup": {**GROUP, "Status": "modifying"}},
        {"ReplicationGroupId": "shop-sandbox-cache", "NodeGroupId": "0001"},
    )
    with stub:
        answer = gameday.request_cache_failover(client, "shop-sandbox-cache")
    stub.assert_no_pending_responses()
    assert answer["Status"] == "modifying"


def test_test_failover_errors_from_aws_are_not_excused() -> None:
    client, stub = stubbed_elasticache()
    stub.add_response("describe_replication_groups", {"ReplicationGroups": [GROUP]})
    stub.add_client_error(
        "test_failover", service_error_code="TestFailoverNotAvailableFault", http_status_code=400
    )
    with stub, pytest.raises(PermanentAwsError) as caught:
        gameday.request_cache_failover(client, "shop-sandbox-cache")
    assert caught.value.code == "TestFailoverNotAvailableFault"
    # against AWS (no endpoint) nothing counts as "not supported"; against an emulator it does
    assert not gameday.unsupported_by_endpoint(caught.value, None)
    assert not gameday.unsupported_by_endpoint(caught.value, "http://127.0.0.1:5055")
    parser = retry.translate(
        ResponseParserError("invalid XML received")
    )  # as the retry layer raises it
    assert gameday.unsupported_by_endpoint(parser, "http://127.0.0.1:5055")
    assert not gameday.unsupported_by_endpoint(parser, None)
    invalid = retry.translate(
        ClientError({"Error": {"Code": "InvalidAction", "Message": "no"}}, "TestFailover")
    )
    assert gameday.unsupported_by_endpoint(invalid, "http://127.0.0.1:5055")


def test_a_cache_without_node_groups_is_a_step_failure() -> None:
    from configs.errors import StepFailed

    with pytest.raises(StepFailed):
        gameday.primary_node_group({"ReplicationGroupId": "x", "NodeGroups": []})


def test_a_throttled_test_failover_is_retried_and_the_failover_starts(sandbox_cfg: Any) -> None:
    """Throttling is transient, never "unsupported by the endpoint": retried like any call."""
    from tasks.core.aws import connect

    client = connect(sandbox_cfg).client("elasticache", sandbox_cfg.regions.primary)
    stub = Stubber(client)
    stub.add_response("describe_replication_groups", {"ReplicationGroups": [GROUP]})
    stub.add_client_error(
        "test_failover",
        service_error_code="Throttling",
        service_message="Rate exceeded",
        http_status_code=400,
    )
    stub.add_response(
        "test_failover",
        {"ReplicationGroup": {**GROUP, "Status": "modifying"}},
        {"ReplicationGroupId": "shop-sandbox-cache", "NodeGroupId": "0001"},
    )
    with stub:
        done = gameday.start_cache_failover.fn(sandbox_cfg)
    stub.assert_no_pending_responses()
    assert done.status == "ok" and "TestFailover on shop-sandbox-cache" in (done.detail or "")
    throttled = retry.translate(
        ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "TestFailover")
    )
    assert not gameday.unsupported_by_endpoint(throttled, sandbox_cfg.aws.endpoint_url)
