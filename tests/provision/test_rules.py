"""Pure decisions of the network and data steps, on AWS-shaped payloads."""

from __future__ import annotations

from configs import load_config
from configs.names import names_for
from sandbox.testing import ROOT
from tasks.resources.database.postgres import instance_drift, instance_settings
from tasks.resources.database.replicas import reader_azs
from tasks.resources.network.endpoints import endpoint_drift
from tasks.resources.network.routes import route_drift
from tasks.resources.network.security_groups import Rule, desired_rules, permission, rules_of
from tasks.resources.network.vpc import match_subnets

CFG = load_config(ROOT / "configs" / "sandbox.yaml")
IDS = {"alb": "sg-a", "app": "sg-b", "data": "sg-c", "endpoints": "sg-d"}


def test_data_tier_default_route_is_removed_and_app_route_follows_its_nat() -> None:
    routes = [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "active"}]
    assert route_drift(routes, None) == ("delete", routes[0])
    assert route_drift(routes, ("nat", "nat-1")) is None
    assert route_drift(routes, ("nat", "nat-2")) == ("replace", routes[0])
    assert route_drift([], ("igw", "igw-1")) == ("create", None)
    blackhole = [{**routes[0], "State": "blackhole"}]
    assert route_drift(blackhole, ("nat", "nat-1")) == ("replace", blackhole[0])


def test_security_group_chain() -> None:
    want = desired_rules(CFG, IDS, "pl-cf")
    assert Rule(False, "tcp", 8080, 8080, "sg:sg-a") in want["app"]
    assert {r.peer for r in want["data"]} == {"sg:sg-b"}
    assert all(not r.egress for r in want["data"])
    assert {r.peer for r in want["alb"] if not r.egress} == {"pl:pl-cf"}
    open_alb = desired_rules(CFG, IDS, None)["alb"]
    assert Rule(False, "tcp", 443, 443, "cidr:0.0.0.0/0") in open_alb


def test_rules_round_trip_through_ip_permissions() -> None:
    group = {
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": "sg-b"}],
                "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
            },
        ],
        "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    }
    rules = rules_of(group)
    assert rules == {
        Rule(False, "tcp", 5432, 5432, "sg:sg-b"),
        Rule(False, "tcp", 5432, 5432, "cidr:10.0.0.0/8"),
        Rule(True, "-1", -1, -1, "cidr:0.0.0.0/0"),
    }
    assert permission(Rule(True, "-1", -1, -1, "cidr:0.0.0.0/0")) == {
        "IpProtocol": "-1",
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
    }


def test_subnets_adopted_by_cidr_and_az_when_names_differ() -> None:
    names = names_for(CFG)
    plan = {("app", "us-east-1a"): "10.10.64.0/21", ("data", "us-east-1a"): "10.10.128.0/21"}
    found = [
        {
            "SubnetId": "subnet-1",
            "CidrBlock": "10.10.64.0/21",
            "AvailabilityZone": "us-east-1a",
            "Tags": [{"Key": "Name", "Value": "legacy-private-a"}],
        },
        {
            "SubnetId": "subnet-2",
            "CidrBlock": "10.99.0.0/24",
            "AvailabilityZone": "us-east-1a",
            "Tags": [{"Key": "Name", "Value": names.subnet("data", "us-east-1a")}],
        },
    ]
    matched = match_subnets(plan, found, names)  # type: ignore[arg-type]
    assert matched[("app", "us-east-1a")]["SubnetId"] == "subnet-1"
    assert matched[("data", "us-east-1a")]["SubnetId"] == "subnet-2"


def test_database_drift_is_modifiable_or_reported() -> None:
    desired = instance_settings(CFG, "sg-c")
    db = {
        "DBInstanceClass": CFG.database.instance_class,
        "MultiAZ": False,
        "DeletionProtection": CFG.database.deletion_protection,
        "PerformanceInsightsEnabled": True,
        "IAMDatabaseAuthenticationEnabled": True,
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-c", "Status": "active"}],
        "PubliclyAccessible": False,
        "CopyTagsToSnapshot": True,
        "BackupRetentionPeriod": CFG.database.backup_retention_days,
        "StorageEncrypted": False,
    }
    before, after, cannot = instance_drift(desired, db, managed_secret=True)
    assert after == {"MultiAZ": True, "ManageMasterUserPassword": True}
    assert before == {"MultiAZ": False, "ManageMasterUserPassword": False}
    assert cannot == ["StorageEncrypted"]


def test_readers_avoid_the_writer_az() -> None:
    assert reader_azs(["a", "b", "c"], "a", 3) == ["b", "c", "b"]
    assert reader_azs(["a"], "a", 1) == ["a"]


def test_endpoint_placement_drift() -> None:
    ep = {"VpcEndpointType": "Interface", "SubnetIds": ["s1"], "Groups": [{"GroupId": "sg-x"}]}
    assert endpoint_drift(ep, subnets=["s1", "s2"], groups=["sg-d"], tables=[]) == {
        "SubnetIds": (["s2"], []),
        "SecurityGroupIds": (["sg-d"], ["sg-x"]),
    }
    gw = {"VpcEndpointType": "Gateway", "RouteTableIds": ["rt-1", "rt-2"]}
    assert endpoint_drift(gw, subnets=[], groups=[], tables=["rt-1", "rt-2"]) == {}
