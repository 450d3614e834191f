"""The backup drill's cache restore checked against AWS's request and response shapes with
botocore's Stubber: the sandbox emulates the export to S3 and the seeding from it (moto has
neither); this holds the calls to the real API model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from configs import resolve_config
from configs.errors import NotFound, Refused
from configs.models import Config
from sandbox.testing import CONFIG
from tasks.core import retry
from tasks.core.aws import install_retries
from tasks.core.changes import placeholder
from tasks.resources.buckets import ELASTICACHE_CANONICAL_ID
from tasks.resources.network.vpc import NetworkIds
from tasks.runbooks.drills import backup, cache_restore
from tasks.runbooks.drills.cache_restore import (
    copy_cache_export_to_dr,
    delete_temporary_cache,
    export_cache_snapshot,
    restore_temporary_cache,
    temporary_cache_id,
)

EAST, WEST = "us-east-1", "us-west-2"
DRILL = "shop-sandbox-drill-20261204120000-ab12"
RDB = f"{DRILL}-0001.rdb"
EAST_BUCKET = "shop-sandbox-drills-123456789012-us-east-1"
WEST_BUCKET = "shop-sandbox-drills-123456789012-us-west-2"
ARN = f"arn:aws:s3:::{WEST_BUCKET}/{RDB}"
OWNER = {"ID": "owner-canonical-id", "DisplayName": "owner"}


def network() -> NetworkIds:
    """DR's network as find_network reads it."""
    return NetworkIds(
        region=WEST,
        vpc_id="vpc-dr",
        subnets={"public": [], "app": [], "data": ["subnet-a", "subnet-b"]},
        security_groups={"data": "sg-data"},
    )


@pytest.fixture
def cfg() -> Config:
    return resolve_config(CONFIG)


class Clients:
    def __init__(self) -> None:
        self.clients: dict[tuple[str, str], Any] = {}
        self.stubs: dict[tuple[str, str], Stubber] = {}

    def client(self, service: str, region: str, **_: Any) -> Any:
        key = (service, region)
        if key not in self.clients:
            c = boto3.client(
                service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
            )
            install_retries(
                c, policy=retry.RetryPolicy(max_attempts=1), before_mutation=lambda: None, env="t"
            )
            self.clients[key], self.stubs[key] = c, Stubber(c)
            self.stubs[key].activate()
        return self.clients[key]

    def stub(self, service: str, region: str) -> Stubber:
        self.client(service, region)
        return self.stubs[(service, region)]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    clients = Clients()
    for module in (cache_restore, backup):
        monkeypatch.setattr(module, "connect", lambda cfg: clients)
    yield clients
    for s in clients.stubs.values():
        s.assert_no_pending_responses()


def test_export_copies_the_snapshot_to_the_primary_drill_bucket(cfg: Config, aws: Clients) -> None:
    s3, ec = aws.stub("s3", EAST), aws.stub("elasticache", EAST)
    head = {"Bucket": EAST_BUCKET, "Key": RDB}
    s3.add_client_error("head_object", "404", http_status_code=404, expected_params=head)
    ec.add_response(
        "copy_snapshot",
        {"Snapshot": {"SnapshotName": DRILL, "SnapshotStatus": "exporting"}},
        {"SourceSnapshotName": DRILL, "TargetSnapshotName": DRILL, "TargetBucket": EAST_BUCKET},
    )
    s3.add_response("head_object", {"ContentLength": 1024}, head)
    out = export_cache_snapshot.fn(cfg, DRILL)
    assert out.outputs["bytes"] == 1024


def test_the_copy_in_dr_is_readable_by_elasticache(cfg: Config, aws: Clients) -> None:
    source, target = aws.stub("s3", EAST), aws.stub("s3", WEST)
    # S3's managed copy: the source's size, then one CopyObject (under the multipart threshold)
    source.add_response("head_object", {"ContentLength": 1024}, {"Bucket": EAST_BUCKET, "Key": RDB})
    target.add_response(
        "copy_object",
        {},
        {"Bucket": WEST_BUCKET, "Key": RDB, "CopySource": {"Bucket": EAST_BUCKET, "Key": RDB}},
    )
    target.add_response(
        "get_object_acl", {"Owner": OWNER, "Grants": []}, {"Bucket": WEST_BUCKET, "Key": RDB}
    )
    target.add_response(
        "put_object_acl",
        {},
        {
            "Bucket": WEST_BUCKET,
            "Key": RDB,
            "AccessControlPolicy": {
                "Owner": OWNER,
                "Grants": [
                    {
                        "Grantee": {"Type": "CanonicalUser", "ID": OWNER["ID"]},
                        "Permission": "FULL_CONTROL",
                    },
                    {
                        "Grantee": {"Type": "CanonicalUser", "ID": ELASTICACHE_CANONICAL_ID},
                        "Permission": "READ",
                    },
                ],
            },
        },
    )
    out = copy_cache_export_to_dr.fn(cfg, DRILL)
    assert out.outputs["arn"] == ARN


def test_the_temporary_cache_is_seeded_from_the_file_in_the_dr_data_subnets(
    cfg: Config, aws: Clients
) -> None:
    ec = aws.stub("elasticache", WEST)
    one = {"ReplicationGroupId": DRILL}
    ec.add_client_error(
        "describe_replication_groups", "ReplicationGroupNotFoundFault", expected_params=one
    )
    ec.add_response(
        "create_cache_subnet_group",
        {"CacheSubnetGroup": {"CacheSubnetGroupName": DRILL}},
        {
            "CacheSubnetGroupName": DRILL,
            "CacheSubnetGroupDescription": ANY,
            "SubnetIds": ["subnet-a", "subnet-b"],
            "Tags": ANY,
        },
    )
    assert cfg.cache is not None
    ec.add_response(
        "create_replication_group",
        {"ReplicationGroup": {"ReplicationGroupId": DRILL, "Status": "creating"}},
        {
            "ReplicationGroupId": DRILL,
            "ReplicationGroupDescription": ANY,
            "Engine": cfg.cache.engine,
            "EngineVersion": cfg.cache.engine_version,
            "CacheNodeType": cfg.cache.node_type,
            "NumCacheClusters": 1,
            "CacheSubnetGroupName": DRILL,
            "Port": cfg.cache.port,
            "TransitEncryptionEnabled": True,
            "AtRestEncryptionEnabled": True,
            "SnapshotArns": [ARN],
            "SecurityGroupIds": ["sg-data"],
            "Tags": ANY,
        },
    )
    ec.add_response(
        "describe_replication_groups",
        {"ReplicationGroups": [{"ReplicationGroupId": DRILL, "Status": "available"}]},
        one,
    )
    out = restore_temporary_cache.fn(cfg, DRILL, ARN, network())
    assert out.outputs["cache"] == DRILL


def test_the_temporary_cache_waits_for_a_dr_network(cfg: Config, aws: Clients) -> None:
    """A DR region provision has not built (placeholders in its network) is refused first."""
    subnet = placeholder("ec2:subnet", "shop-sandbox-data-us-west-2a")
    missing = network().model_copy(update={"subnets": {"data": [subnet]}})
    with pytest.raises(NotFound, match="provision DR first"):
        restore_temporary_cache.fn(cfg, DRILL, ARN, missing)
    assert aws.clients == {}


def test_the_delete_takes_the_group_then_its_subnet_group_then_both_files(
    cfg: Config, aws: Clients
) -> None:
    ec = aws.stub("elasticache", WEST)
    one = {"ReplicationGroupId": DRILL}
    up = {"ReplicationGroups": [{"ReplicationGroupId": DRILL, "Status": "available"}]}
    ec.add_response("describe_replication_groups", up, one)
    ec.add_response("describe_replication_groups", up, one)
    ec.add_response("delete_replication_group", {"ReplicationGroup": {}}, one)
    ec.add_client_error(
        "describe_replication_groups", "ReplicationGroupNotFoundFault", expected_params=one
    )
    ec.add_response("delete_cache_subnet_group", {}, {"CacheSubnetGroupName": DRILL})
    for region, bucket in ((EAST, EAST_BUCKET), (WEST, WEST_BUCKET)):
        s3 = aws.stub("s3", region)
        s3.add_response("head_object", {}, {"Bucket": bucket, "Key": RDB})
        s3.add_response("delete_object", {}, {"Bucket": bucket, "Key": RDB})
    out = delete_temporary_cache.fn(cfg, DRILL)
    assert len(out.outputs["deleted"]) == 4


def test_a_group_not_named_like_a_drill_is_never_deleted(cfg: Config, aws: Clients) -> None:
    with pytest.raises(Refused, match="not a drill cache"):
        delete_temporary_cache.fn(cfg, "shop-sandbox-cache")
    assert aws.clients == {}


def test_a_long_drill_id_is_shortened_to_what_elasticache_takes(cfg: Config) -> None:
    long = f"{cfg.stack}-drill-20261204120000-ab12" + "x" * 10
    short = temporary_cache_id(cfg, long)
    assert len(short) <= 40 and short.startswith(f"{cfg.stack}-drill-")
    assert temporary_cache_id(cfg, DRILL) == DRILL
