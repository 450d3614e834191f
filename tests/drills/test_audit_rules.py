"""The audit's rules on AWS-shaped payloads: each anti-pattern found, each good shape passes."""

from __future__ import annotations

import json

import pytest

from tasks.runbooks.audit import rules as audit

R = "us-east-1"
GOOD_DB = {
    "DBInstanceIdentifier": "db",
    "MultiAZ": True,
    "StorageEncrypted": True,
    "DeletionProtection": True,
    "BackupRetentionPeriod": 7,
}


def ids(findings: list[audit.Finding]) -> list[str]:
    return sorted(f.id for f in findings)


def test_good_database_has_no_findings() -> None:
    assert audit.database_findings(GOOD_DB, R) == []


def test_bad_database_has_one_finding_per_anti_pattern() -> None:
    bad = {**GOOD_DB, "MultiAZ": False, "StorageEncrypted": False, "DeletionProtection": False}
    bad["BackupRetentionPeriod"] = 0
    found = audit.database_findings(bad, R)
    assert ids(found) == [
        "db-no-backups",
        "db-no-deletion-protection",
        "db-single-az",
        "db-unencrypted",
    ]
    assert {f.resource for f in found} == {"rds:instance db"}


def test_acknowledged_single_az_is_low() -> None:
    (f,) = audit.database_findings({**GOOD_DB, "MultiAZ": False}, R, single_az_ok=True)
    assert (f.id, f.severity) == ("db-single-az", "low")
    assert "acknowledge" in f.message


AURORA = {
    "DBClusterIdentifier": "c",
    "DBClusterArn": "arn:aws:rds:us-east-1:123456789012:cluster:c",
    # where instances can be created: every Aurora cluster lists three, whatever it runs
    "AvailabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"],
    "StorageEncrypted": True,
    "DeletionProtection": True,
    "BackupRetentionPeriod": 1,
}


def test_aurora_cluster_with_instances_in_two_azs_is_multi_az() -> None:
    assert audit.database_findings({**AURORA, "MultiAZ": True}, R) == []


def test_aurora_writer_alone_is_single_az_whatever_its_availability_zones() -> None:
    (f,) = audit.database_findings({**AURORA, "MultiAZ": False}, R)
    assert (f.id, f.severity, f.resource) == ("db-single-az", "high", "rds:cluster c")


def test_dr_replica_found_by_source_arn_or_missing() -> None:
    arn = "arn:aws:rds:us-east-1:123456789012:db:db"
    replica = {"DBInstanceIdentifier": "db-dr", "ReadReplicaSourceDBInstanceIdentifier": arn}
    assert audit.dr_replica_findings(arn, "db", [replica], "us-west-2") == []
    other = {"DBInstanceIdentifier": "x", "ReadReplicaSourceDBInstanceIdentifier": "other"}
    (f,) = audit.dr_replica_findings(arn, "db", [other], "us-west-2")
    assert (f.id, f.severity, f.region) == ("dr-replica-missing", "high", "us-west-2")


def glob(*members: tuple[str, bool]) -> dict:
    return {
        "GlobalClusterIdentifier": "g",
        "GlobalClusterMembers": [{"DBClusterArn": a, "IsWriter": w} for a, w in members],
    }


def test_aurora_global_secondary_in_dr_is_the_dr_replica() -> None:
    primary = AURORA["DBClusterArn"]
    secondary = "arn:aws:rds:us-west-2:123456789012:cluster:c-dr"
    dr = [{"DBClusterIdentifier": "c-dr", "DBClusterArn": secondary}]  # no replication source
    found = audit.dr_replica_findings(
        primary, "c", dr, "us-west-2", [glob((primary, True), (secondary, False))]
    )
    assert found == []


@pytest.mark.parametrize(
    "members",
    [
        # the DR cluster left the global database: it no longer follows the primary
        ((AURORA["DBClusterArn"], True),),
        # the DR cluster writes (a failover promoted it): the primary is no longer the source
        (
            (AURORA["DBClusterArn"], False),
            ("arn:aws:rds:us-west-2:123456789012:cluster:c-dr", True),
        ),
        # a global database of other clusters
        (("arn:aws:rds:us-east-1:1:cluster:x", True), ("arn:aws:rds:us-west-2:1:cluster:y", False)),
    ],
)
def test_aurora_without_a_following_dr_cluster_is_missing_its_replica(members: tuple) -> None:
    dr = [{"DBClusterArn": "arn:aws:rds:us-west-2:123456789012:cluster:c-dr"}]
    (f,) = audit.dr_replica_findings(AURORA["DBClusterArn"], "c", dr, "us-west-2", [glob(*members)])
    assert f.id == "dr-replica-missing"


def sg(*perms: dict) -> dict:
    return {"GroupId": "sg-1", "GroupName": "data", "IpPermissions": list(perms)}


def tcp(port: int, *cidrs: str, to: int | None = None) -> dict:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": to or port,
        "IpRanges": [{"CidrIp": c} for c in cidrs],
    }


PORTS = {5432: "database", 6379: "cache"}


def test_data_port_open_to_world_and_broad_cidr() -> None:
    found = audit.security_group_findings(
        sg(tcp(5432, "0.0.0.0/0"), tcp(6379, "10.0.0.0/8")), PORTS, R
    )
    assert ids(found) == ["data-port-broad-cidr", "data-port-open-world"]
    assert all(f.severity == "high" for f in found)


def test_port_ranges_all_traffic_and_ipv6_count() -> None:
    assert ids(audit.security_group_findings(sg(tcp(5000, "0.0.0.0/0", to=6000)), PORTS, R)) == [
        "data-port-open-world"
    ]
    everything = {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
    assert ids(audit.security_group_findings(sg(everything), PORTS, R)) == ["data-port-open-world"]


def test_group_references_small_ranges_and_allowed_cidrs_pass() -> None:
    by_ref = {
        "IpProtocol": "tcp",
        "FromPort": 5432,
        "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": "sg-app"}],
    }
    web = tcp(443, "0.0.0.0/0")
    bastion = tcp(5432, "10.0.5.0/28")
    vpn = tcp(5432, "172.16.0.0/12")
    assert (
        audit.security_group_findings(
            sg(by_ref, web, bastion, vpn), PORTS, R, allowed_cidrs=["172.16.0.0/12"]
        )
        == []
    )


def subnet(sid: str, az: str) -> dict:
    return {"SubnetId": sid, "AvailabilityZone": az}


def table(nat: str | None, *subnets: str, main: bool = False) -> dict:
    routes = [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"}]
    if nat:
        routes.append({"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": nat})
    assoc = [{"SubnetId": s} for s in subnets] + ([{"Main": True}] if main else [])
    return {"Routes": routes, "Associations": assoc}


def test_one_nat_for_two_azs_is_found_once() -> None:
    subnets = [subnet("a", "us-east-1a"), subnet("b", "us-east-1b"), subnet("p", "us-east-1a")]
    found = audit.nat_findings(subnets, [table("nat-1", "a", "b"), table(None, "p")], R)
    assert ids(found) == ["nat-shared"]
    assert "nat-1" in found[0].resource


def test_main_table_counts_for_unassociated_subnets_and_per_az_nat_passes() -> None:
    subnets = [subnet("a", "us-east-1a"), subnet("b", "us-east-1b")]
    shared_by_main = [table("nat-1", main=True)]
    assert ids(audit.nat_findings(subnets, shared_by_main, R)) == ["nat-shared"]
    per_az = [table("nat-1", "a"), table("nat-2", "b")]
    assert audit.nat_findings(subnets, per_az, R) == []


def test_stickiness_and_http_listener() -> None:
    tg = {"TargetGroupName": "web"}
    assert ids(
        audit.target_group_findings(tg, [{"Key": "stickiness.enabled", "Value": "true"}], R)
    ) == ["alb-stickiness"]
    assert (
        audit.target_group_findings(tg, [{"Key": "stickiness.enabled", "Value": "false"}], R) == []
    )
    forward = {"Protocol": "HTTP", "Port": 80, "DefaultActions": [{"Type": "forward"}]}
    assert ids(audit.listener_findings(forward, R)) == ["http-no-redirect"]
    redirect = {
        "Protocol": "HTTP",
        "DefaultActions": [{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS"}}],
    }
    assert audit.listener_findings(redirect, R) == []
    assert audit.listener_findings({"Protocol": "HTTPS", "DefaultActions": []}, R) == []


def test_plain_env_secret_but_not_secrets_or_harmless_env() -> None:
    td = {
        "family": "web",
        "revision": 3,
        "containerDefinitions": [
            {
                "name": "app",
                "environment": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "DB_PASSWORD", "value": "hunter2"},
                ],
                "secrets": [{"name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:..."}],
            }
        ],
    }
    (f,) = audit.task_definition_findings(td, R)
    assert (f.id, f.severity, f.resource) == (
        "plain-env-secret",
        "high",
        "ecs:task-definition web:3",
    )
    assert "DB_PASSWORD" in f.message and "hunter2" not in f.message
    (ack,) = audit.task_definition_findings(td, R, accepted=["DB_PASSWORD"])
    assert ack.severity == "low"


GOOD_CACHE = {
    "ReplicationGroupId": "c",
    "AutomaticFailover": "enabled",
    "MemberClusters": ["c-001", "c-002"],
    "AtRestEncryptionEnabled": True,
}


def test_cache_rules() -> None:
    good = GOOD_CACHE
    assert audit.cache_findings(good, R) == []
    single = {**good, "AutomaticFailover": "disabled", "MemberClusters": ["c-001"]}
    assert ids(audit.cache_findings(single, R)) == ["cache-no-failover"]
    assert ids(audit.cache_findings({**good, "AtRestEncryptionEnabled": False}, R)) == [
        "cache-unencrypted"
    ]


def test_a_warm_standbys_session_cache_not_global_is_flagged() -> None:
    regional = GOOD_CACHE
    member = {
        **regional,
        "GlobalReplicationGroupInfo": {
            "GlobalReplicationGroupId": "sgaui-c",
            "GlobalReplicationGroupMemberRole": "PRIMARY",
        },
    }
    (found,) = audit.cache_findings(regional, R, warm_standby=True)
    assert (found.id, found.severity) == ("cache-not-global", "medium")
    assert "cache.global_datastore: true" in found.message
    (asked,) = audit.cache_findings(regional, R, warm_standby=True, wants_global=True)
    assert (asked.id, asked.severity) == ("cache-not-global", "high")
    assert audit.cache_findings(member, R, warm_standby=True, wants_global=True) == []
    assert audit.cache_findings(regional, R, warm_standby=False) == []  # pilot light: no DR cache


def test_queue_rules() -> None:
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:q-dlq"})
    src = {"MessageRetentionPeriod": "345600", "RedrivePolicy": policy}
    assert audit.queue_findings("q", src, {"MessageRetentionPeriod": "1209600"}, R) == []
    assert ids(audit.queue_findings("q", {"MessageRetentionPeriod": "60"}, None, R)) == [
        "queue-no-dlq"
    ]
    assert ids(audit.queue_findings("q", src, None, R)) == ["queue-no-dlq"]
    assert ids(audit.queue_findings("q", src, {"MessageRetentionPeriod": "345600"}, R)) == [
        "dlq-retention-short"
    ]


def test_ordered_puts_high_first() -> None:
    low = audit.finding("b", "low", "r", R, "m")
    high = audit.finding("z", "high", "r", R, "m")
    assert audit.ordered([low, high]) == [high, low]
