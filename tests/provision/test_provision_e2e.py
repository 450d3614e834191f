"""End to end: an empty account → ``--plan`` → provision both regions → a second run.

One stack is built for the module; the assertions read the emulator's state with plain boto3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from configs.layout import subnet_plan
from configs.models import Config
from configs.names import names_for
from sandbox.testing import plain
from tests.support import fresh_account, plan_build_rerun

CONFIG = "configs/sandbox.yaml"


@pytest.fixture(scope="module")
def stack(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[dict[str, Any]]:
    cfg = fresh_account(aws_endpoint, moto_as_aws)
    yield plan_build_rerun(cfg, CONFIG)


def ec2(cfg: Config, role: str = "primary") -> Any:
    return plain(cfg, "ec2", names_for(cfg, role).region)  # type: ignore[arg-type]


def vpc_id(cfg: Config, role: str = "primary") -> str:
    vpcs = ec2(cfg, role).describe_vpcs(
        Filters=[{"Name": "tag:Name", "Values": [names_for(cfg, role).vpc]}]  # type: ignore[arg-type]
    )["Vpcs"]
    assert len(vpcs) == 1
    return str(vpcs[0]["VpcId"])


def groups(cfg: Config, role: str = "primary") -> dict[str, dict[str, Any]]:
    found = ec2(cfg, role).describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id(cfg, role)]}]
    )["SecurityGroups"]
    return {g["GroupName"].removeprefix(f"{cfg.stack}-"): g for g in found}


# -- plan and convergence ---------------------------------------------------------------------
def test_plan_on_empty_account_lists_every_resource_and_mutates_nothing(stack: dict) -> None:
    assert stack["plan_calls"] == []
    assert stack["plan"]["outcome"] == "planned"
    kinds = {c["resource"] for c in stack["plan"]["changes"]}
    for kind in (
        "ec2:vpc", "ec2:subnet", "ec2:nat-gateway", "ec2:route-table", "ec2:security-group",
        "ec2:security-group-rule", "ec2:vpc-endpoint", "ec2:flow-log", "kms:key",
        "rds:instance", "rds:cross-region-replica", "rds:read-replica",
        "elasticache:replication-group", "secretsmanager:replica", "ecs:service",
        "elbv2:load-balancer", "wafv2:web-acl", "cloudfront:distribution",
    ):  # fmt: skip
        assert kind in kinds, kind
    subnets = [c for c in stack["plan"]["changes"] if c["resource"] == "ec2:subnet"]
    assert len(subnets) == 3 * (3 + 2)  # three tiers in 3 primary + 2 DR AZs


def test_first_run_creates_and_second_run_changes_nothing(stack: dict) -> None:
    assert stack["first"]["outcome"] == "succeeded"
    assert len(stack["first"]["changes"]) >= len(stack["plan"]["changes"]) - 5
    assert stack["second"]["changes"] == []
    assert stack["second_calls"] == []
    assert any("no changes" in n for n in stack["second"]["notes"])


# -- network ----------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["primary", "dr"])
def test_subnets_in_every_az_per_tier(stack: dict, role: str) -> None:
    cfg = stack["cfg"]
    net = getattr(cfg.network, role)
    found = ec2(cfg, role).describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id(cfg, role)]}]
    )["Subnets"]
    assert {(s["CidrBlock"], s["AvailabilityZone"]) for s in found} == {
        (cidr, az) for (_, az), cidr in subnet_plan(net).items()
    }
    public = {s["SubnetId"] for s in found if s["MapPublicIpOnLaunch"]}
    assert len(public) == len(net.azs)


def _tables(cfg: Config, role: str = "primary") -> dict[str, dict[str, Any]]:
    found = ec2(cfg, role).describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id(cfg, role)]}]
    )["RouteTables"]
    return {t["Tags"][0]["Value"] if t.get("Tags") else "main": t for t in found} | {
        next((x["Value"] for x in t.get("Tags", []) if x["Key"] == "Name"), "main"): t
        for t in found
    }


def test_one_nat_per_az_and_app_routes_stay_in_their_az(stack: dict) -> None:
    cfg = stack["cfg"]
    names = names_for(cfg)
    nats = ec2(cfg).describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id(cfg)]}])[
        "NatGateways"
    ]
    subnet_az = {
        s["SubnetId"]: s["AvailabilityZone"]
        for s in ec2(cfg).describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id(cfg)]}])[
            "Subnets"
        ]
    }
    nat_az = {n["NatGatewayId"]: subnet_az[n["SubnetId"]] for n in nats}
    assert sorted(nat_az.values()) == sorted(cfg.network.primary.azs)
    tables = _tables(cfg)
    for az in cfg.network.primary.azs:
        table = tables[names.route_table("app", az)]
        default = next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
        assert nat_az[default["NatGatewayId"]] == az
        assert [subnet_az[a["SubnetId"]] for a in table["Associations"] if a.get("SubnetId")] == [
            az
        ]
    public = tables[names.route_table("public")]
    assert any(r.get("GatewayId", "").startswith("igw-") for r in public["Routes"])


@pytest.mark.parametrize("role", ["primary", "dr"])
def test_data_subnets_have_no_route_to_the_internet(stack: dict, role: str) -> None:
    cfg = stack["cfg"]
    data = _tables(cfg, role)[names_for(cfg, role).route_table("data")]  # type: ignore[arg-type]
    assert len([a for a in data["Associations"] if a.get("SubnetId")]) == len(
        getattr(cfg.network, role).azs
    )
    assert all(r.get("DestinationCidrBlock") != "0.0.0.0/0" for r in data["Routes"])
    # local, and the S3 gateway endpoint (a prefix-list route to a vpce-): no igw, no NAT
    for r in data["Routes"]:
        assert r.get("GatewayId") in (None, "local") or r["GatewayId"].startswith("vpce-"), r
        assert "NatGatewayId" not in r


def test_security_groups_chain_alb_app_data_by_reference(stack: dict) -> None:
    cfg = stack["cfg"]
    g = groups(cfg)
    ids = {k: v["GroupId"] for k, v in g.items()}

    def sources(group: str, port: int) -> set[str]:
        out = set()
        for p in g[group]["IpPermissions"]:
            if p.get("FromPort") == port:
                out |= {x["GroupId"] for x in p.get("UserIdGroupPairs", [])}
                out |= {x["CidrIp"] for x in p.get("IpRanges", [])}
                out |= {x["PrefixListId"] for x in p.get("PrefixListIds", [])}
        return out

    assert sources("app", 8080) == {ids["alb"]}
    assert sources("data", cfg.database.port) == {ids["app"]}
    assert sources("data", cfg.cache.port) == {ids["app"]}
    assert sources("endpoints", 443) == {ids["app"]}
    (alb_source,) = sources("alb", 443)
    assert alb_source.startswith("pl-")  # CloudFront's origin-facing prefix list, not 0.0.0.0/0
    assert g["data"]["IpPermissionsEgress"] == []


def test_vpc_endpoints_and_flow_logs(stack: dict) -> None:
    cfg = stack["cfg"]
    eps = ec2(cfg).describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id(cfg)]}])[
        "VpcEndpoints"
    ]
    prefix = f"com.amazonaws.{cfg.regions.primary}."
    by_service = {e["ServiceName"].removeprefix(prefix): e for e in eps}  # fmt: skip
    assert set(by_service) == set(cfg.network.endpoints)
    assert by_service["s3"]["VpcEndpointType"] == "Gateway"
    assert len(by_service["s3"]["RouteTableIds"]) == len(cfg.network.primary.azs) + 1
    assert by_service["secretsmanager"]["VpcEndpointType"] == "Interface"
    logs = ec2(cfg).describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id(cfg)]}])
    assert logs["FlowLogs"][0]["TrafficType"] == "ALL"


def test_every_network_resource_is_tagged(stack: dict) -> None:
    cfg = stack["cfg"]
    found = ec2(cfg).describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id(cfg)]}])
    for s in found["Subnets"]:
        tags = {t["Key"]: t["Value"] for t in s["Tags"]}
        assert {"app", "env", "component", "managed-by"} <= set(tags)
        assert tags["managed-by"] == "tierbook"


# -- data -------------------------------------------------------------------------------------
def test_primary_database(stack: dict) -> None:
    cfg = stack["cfg"]
    rds = plain(cfg, "rds")
    db = rds.describe_db_instances(DBInstanceIdentifier=names_for(cfg).db_instance)["DBInstances"][
        0
    ]
    assert db["MultiAZ"] is True
    assert db["StorageEncrypted"] is True and "key/" in db["KmsKeyId"]
    assert db["MasterUserSecret"]["SecretArn"].startswith("arn:aws:secretsmanager:")
    assert db["BackupRetentionPeriod"] == cfg.database.backup_retention_days
    assert db["IAMDatabaseAuthenticationEnabled"] is True
    assert db["PubliclyAccessible"] is False
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == names_for(cfg).db_subnet_group
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [
        groups(cfg)["data"]["GroupId"]
    ]


def test_read_replica_in_another_az(stack: dict) -> None:
    cfg = stack["cfg"]
    rds = plain(cfg, "rds")
    names = names_for(cfg)
    writer = rds.describe_db_instances(DBInstanceIdentifier=names.db_instance)["DBInstances"][0]
    reader = rds.describe_db_instances(DBInstanceIdentifier=names.db_read_replica(0))[
        "DBInstances"
    ][0]
    assert reader["ReadReplicaSourceDBInstanceIdentifier"] == names.db_instance
    assert reader["AvailabilityZone"] != writer["AvailabilityZone"]


def test_cross_region_replica_and_secret_in_dr(stack: dict) -> None:
    cfg = stack["cfg"]
    dr = names_for(cfg, "dr")
    replica = plain(cfg, "rds", dr.region).describe_db_instances(
        DBInstanceIdentifier=dr.db_instance
    )["DBInstances"][0]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"].startswith(
        f"arn:aws:rds:{cfg.regions.primary}:"
    )
    assert replica["DBSubnetGroup"]["DBSubnetGroupName"] == dr.db_subnet_group
    secret = plain(cfg, "rds").describe_db_instances(
        DBInstanceIdentifier=names_for(cfg).db_instance
    )["DBInstances"][0]["MasterUserSecret"]["SecretArn"]
    status = plain(cfg, "secretsmanager").describe_secret(SecretId=secret)["ReplicationStatus"]
    assert [r["Region"] for r in status] == [cfg.regions.dr]


def test_cache_replication_group(stack: dict) -> None:
    cfg = stack["cfg"]
    g = plain(cfg, "elasticache").describe_replication_groups(
        ReplicationGroupId=names_for(cfg).cache
    )["ReplicationGroups"][0]
    assert g["AutomaticFailover"] == "enabled" and g["MultiAZ"] == "enabled"
    assert g["TransitEncryptionEnabled"] is True and g["AtRestEncryptionEnabled"] is True
    members = g["NodeGroups"][0]["NodeGroupMembers"]
    assert len(members) == 1 + cfg.cache.replicas
    assert len({m["PreferredAvailabilityZone"] for m in members}) == len(members)


def test_kms_key_per_region_with_rotation(stack: dict) -> None:
    cfg = stack["cfg"]
    for role in ("primary", "dr"):
        names = names_for(cfg, role)
        kms = plain(cfg, "kms", names.region)
        key = kms.describe_key(KeyId=names.kms_alias)["KeyMetadata"]
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True


# -- app and edge, as wired by the flow --------------------------------------------------------
@pytest.mark.parametrize("role", ["primary", "dr"])
def test_services_run_in_app_subnets_without_public_ip(stack: dict, role: str) -> None:
    cfg = stack["cfg"]
    names = names_for(cfg, role)  # type: ignore[arg-type]
    ecs = plain(cfg, "ecs", names.region)
    svc = ecs.describe_services(cluster=names.cluster, services=[names.service("web")])["services"][
        0
    ]
    vpc = svc["networkConfiguration"]["awsvpcConfiguration"]
    app_subnets = {
        s["SubnetId"]
        for s in ec2(cfg, role).describe_subnets(
            Filters=[{"Name": "tag:component", "Values": ["network-app"]},
                     {"Name": "vpc-id", "Values": [vpc_id(cfg, role)]}]
        )["Subnets"]
    }  # fmt: skip
    assert set(vpc["subnets"]) == app_subnets
    assert vpc["assignPublicIp"] == "DISABLED"
    assert vpc["securityGroups"] == [groups(cfg, role)["app"]["GroupId"]]
    if role == "dr":
        assert svc["desiredCount"] == cfg.services.web.dr_warm_desired


def test_dr_task_definition_points_at_the_replica_and_reads_secrets_by_reference(
    stack: dict,
) -> None:
    cfg = stack["cfg"]
    dr = names_for(cfg, "dr")
    ecs = plain(cfg, "ecs", dr.region)
    td = ecs.describe_task_definition(taskDefinition=dr.task_family("web"))["taskDefinition"]
    c = td["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in c["environment"]}
    replica = plain(cfg, "rds", dr.region).describe_db_instances(
        DBInstanceIdentifier=dr.db_instance
    )["DBInstances"][0]
    assert env["DB_HOST"] == replica["Endpoint"]["Address"]
    secrets = {s["name"]: s["valueFrom"] for s in c["secrets"]}
    assert secrets["DB_PASSWORD"].startswith(f"arn:aws:secretsmanager:{dr.region}:")
    assert "DB_PASSWORD" not in env


def public_subnets(cfg: Config, role: str = "primary") -> dict[str, str]:
    """The VPC's public subnets (the ones that map a public IP on launch), by AZ."""
    found = ec2(cfg, role).describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id(cfg, role)]}]
    )["Subnets"]
    return {s["AvailabilityZone"]: s["SubnetId"] for s in found if s["MapPublicIpOnLaunch"]}


@pytest.mark.parametrize("role", ["primary", "dr"])
def test_alb_in_public_subnets_with_waf(stack: dict, role: str) -> None:
    cfg = stack["cfg"]
    names = names_for(cfg, role)  # type: ignore[arg-type]
    elb = plain(cfg, "elbv2", names.region)
    lb = elb.describe_load_balancers(Names=[names.alb])["LoadBalancers"][0]
    assert lb["Scheme"] == "internet-facing"
    assert lb["VpcId"] == vpc_id(cfg, role)
    # one public subnet in every AZ of the region, and no app or data subnet
    public = public_subnets(cfg, role)
    assert sorted(public) == sorted(getattr(cfg.network, role).azs)
    assert {z["ZoneName"]: z["SubnetId"] for z in lb["AvailabilityZones"]} == public
    assert lb["SecurityGroups"] == [groups(cfg, role)["alb"]["GroupId"]]
    acl = plain(cfg, "wafv2", names.region).get_web_acl_for_resource(
        ResourceArn=lb["LoadBalancerArn"]
    )
    assert acl["WebACL"]["Name"] == names.web_acl


def alb(cfg: Config, role: str) -> dict[str, Any]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    return dict(
        plain(cfg, "elbv2", names.region).describe_load_balancers(Names=[names.alb])[
            "LoadBalancers"
        ][0]
    )


def test_failover_records_point_at_both_regions(stack: dict) -> None:
    cfg = stack["cfg"]
    r53 = plain(cfg, "route53")
    zone = r53.list_hosted_zones_by_name(DNSName="example.com")["HostedZones"][0]["Id"]
    records = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    failover = {r["Failover"]: r for r in records if r.get("Failover")}
    assert set(failover) == {"PRIMARY", "SECONDARY"}
    primary, secondary = failover["PRIMARY"], failover["SECONDARY"]
    # one name, answered by the primary region's ALB while healthy, else by DR's
    assert primary["Name"] == secondary["Name"]
    assert primary["Name"].rstrip(".").endswith("example.com")
    assert primary["AliasTarget"]["DNSName"].rstrip(".") == alb(cfg, "primary")["DNSName"]
    assert secondary["AliasTarget"]["DNSName"].rstrip(".") == alb(cfg, "dr")["DNSName"]
    assert primary["SetIdentifier"] != secondary["SetIdentifier"]
    # the primary answers only while its check passes: the DNS switch's calculated check,
    # healthy only while both the check on the primary ALB and the DR alarm's check are
    switch = r53.get_health_check(HealthCheckId=primary["HealthCheckId"])["HealthCheck"]
    assert switch["HealthCheckConfig"]["Type"] == "CALCULATED"
    children = [
        r53.get_health_check(HealthCheckId=c)["HealthCheck"]["HealthCheckConfig"]
        for c in switch["HealthCheckConfig"]["ChildHealthChecks"]
    ]
    assert switch["HealthCheckConfig"]["HealthThreshold"] == len(children) == 2
    assert {c["Type"] for c in children} == {"HTTPS", "CLOUDWATCH_METRIC"}
    alarm = next(c for c in children if c["Type"] == "CLOUDWATCH_METRIC")["AlarmIdentifier"]
    assert alarm["Region"] == cfg.regions.dr
    probe = next(c for c in children if c["Type"] == "HTTPS")
    assert probe["FullyQualifiedDomainName"] == alb(cfg, "primary")["DNSName"]
    assert probe["Type"] == "HTTPS" and probe["ResourcePath"] == cfg.dns.health_check.path
    assert probe["FailureThreshold"] == cfg.dns.health_check.failure_threshold


def test_report_is_written_as_json_on_disk(stack: dict) -> None:
    """Each run's timeline is a JSON file on disk (the CLI's report) matching what the flow
    returned: the second run's, with every step and no change."""
    for run in ("first", "second"):
        returned = stack[run]
        on_disk = json.loads(Path(returned["report_path"]).read_text())
        assert on_disk["runbook"] == "provision"
        assert on_disk["outcome"] == returned["outcome"] == "succeeded"
        assert on_disk["changes"] == json.loads(json.dumps(returned["changes"], default=str))
        assert [s["step"] for s in on_disk["steps"]] == [s["step"] for s in returned["steps"]]
        assert on_disk["steps"], run
        for step in on_disk["steps"]:
            assert {"step", "start", "end", "outcome", "detail"} <= set(step), step
            assert step["start"] <= step["end"], step
    second = json.loads(Path(stack["second"]["report_path"]).read_text())
    assert second["changes"] == []
    assert stack["first"]["report_path"] != stack["second"]["report_path"]
