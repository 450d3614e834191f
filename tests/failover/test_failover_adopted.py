"""Failover of a stack tierbook did not build: made here with plain boto3 under other names (as
Terraform might have left it), named in the config's ``names:`` / ``dr_names:``, then failed
over. The state is read back with plain boto3; no resource may carry a derived name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from configs import load_config
from configs.errors import NotFound, Refused
from configs.layout import subnet_plan
from configs.models import Config
from configs.names import Role
from flows.failover import failover
from sandbox.control import SandboxControl
from sandbox.testing import CONFIG, ROOT, Stack, plain, push_images, web_target_group
from tasks.core.retry import wait_for
from tasks.runbooks.failover.traffic_switch import flip_dns
from tests.failover.test_failover_e2e import assert_failed_over, assert_records_rewritten
from tests.support import reset_aws

pytestmark = [pytest.mark.e2e]

ZONE = "legacy-shop.example"
NAMES = {
    "vpc": "tf-east",
    "cluster": "tf-east-apps",
    "web_service": "storefront",
    "worker_service": "jobs",
    "web_task_family": "tf-storefront",
    "worker_task_family": "tf-jobs",
    "web_repository": "tf/storefront",
    "worker_repository": "tf/jobs",
    "alb": "tf-east-public",
    "target_group": "tf-east-storefront",
    "db_instance": "tf-orders-pg",
    "lock_table": "tf-runbook-locks",
    "health_check": "tf-east-alb-check",
    "record_set_id": "east",
}
DR_NAMES = {
    "vpc": "tf-west",
    "cluster": "tf-west-apps",
    "web_service": "storefront-standby",
    "worker_service": "jobs-standby",
    "alb": "tf-west-public",
    "target_group": "tf-west-storefront",
    "db_instance": "tf-orders-pg-west",
    "health_check": "tf-west-alb-check",
    "record_set_id": "west",
}
# The builder reads these, never configs/names.py: the names are the test's, not the code's.
NAMED: dict[Role, dict[str, str]] = {"primary": NAMES, "dr": {**NAMES, **DR_NAMES}}
# What the Terraform stack runs: the primary at its own counts (not the config's), DR warm.
RUNNING: dict[Role, dict[str, int]] = {
    "primary": {"web": 3, "worker": 1},
    "dr": {"web": 1, "worker": 0},
}


def adopted_config(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / CONFIG).read_text())
    data["edge"] = {"domain": f"www.{ZONE}", "hosted_zone": ZONE, "cloudfront": False}
    data["names"], data["dr_names"] = NAMES, DR_NAMES
    path = tmp_path / "adopted.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def region(cfg: Config, role: Role) -> str:
    return str(getattr(cfg.regions, role))


def _available(cfg: Config, role: Role, ident: str) -> dict[str, Any]:
    rds = plain(cfg, "rds", region(cfg, role))
    return wait_for(  # type: ignore[no-any-return]
        lambda: rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0],
        until=lambda d: d["DBInstanceStatus"] == "available",
        what=f"{ident} available",
        timeout_s=30,
    )


def placement(cfg: Config, role: Role) -> dict[str, Any]:
    """Where the Terraform stack keeps ``role``'s database: its own subnet group, security
    group and KMS key (names tierbook could not derive)."""
    where, vpc = region(cfg, role), NAMED[role]["vpc"]
    ec2 = plain(cfg, "ec2", where)
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{vpc}-db"]}])[
        "SecurityGroups"
    ][0]["GroupId"]
    key = plain(cfg, "kms", where).describe_key(KeyId=f"alias/{vpc}-db")["KeyMetadata"]["Arn"]
    return {"DBSubnetGroupName": f"{vpc}-db", "VpcSecurityGroupIds": [group], "KmsKeyId": key}


def placed(db: dict[str, Any]) -> dict[str, Any]:
    """``db``'s placement, as :func:`placement` gives it."""
    return {
        "DBSubnetGroupName": db["DBSubnetGroup"]["DBSubnetGroupName"],
        "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]],
        "KmsKeyId": db["KmsKeyId"],
    }


def build_database(cfg: Config) -> None:
    """The primary (Multi-AZ, managed secret replicated to DR) and its cross-region replica."""
    east, west = region(cfg, "primary"), region(cfg, "dr")
    ident, replica = NAMED["primary"]["db_instance"], NAMED["dr"]["db_instance"]
    plain(cfg, "rds", east).create_db_instance(
        **placement(cfg, "primary"),
        DBInstanceIdentifier=ident,
        Engine="postgres",
        DBInstanceClass="db.t4g.medium",
        AllocatedStorage=20,
        MasterUsername="orders",
        ManageMasterUserPassword=True,
        MultiAZ=True,
        BackupRetentionPeriod=7,
        StorageEncrypted=True,
    )
    db = _available(cfg, "primary", ident)
    plain(cfg, "secretsmanager", east).replicate_secret_to_regions(
        SecretId=db["MasterUserSecret"]["SecretArn"], AddReplicaRegions=[{"Region": west}]
    )
    plain(cfg, "rds", west).create_db_instance_read_replica(
        DBInstanceIdentifier=replica,
        SourceDBInstanceIdentifier=db["DBInstanceArn"],
        SourceRegion=east,
        DBInstanceClass="db.t4g.medium",
        **placement(cfg, "dr"),
    )
    _available(cfg, "dr", replica)


def build_region(cfg: Config, role: Role) -> dict[str, Any]:
    """Network, ALB + target group, cluster, task definitions, services and their
    autoscaling targets of one region; returns the ALB."""
    named, where = NAMED[role], region(cfg, role)
    ec2, elb = plain(cfg, "ec2", where), plain(cfg, "elbv2", where)
    net = getattr(cfg.network, role)
    vpc = ec2.create_vpc(CidrBlock=net.cidr)["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": named["vpc"]}])
    subnets = {
        tier: [
            ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
            for (t, az), cidr in subnet_plan(net).items()
            if t == tier
        ]
        for tier in ("public", "app", "data")
    }
    plain(cfg, "rds", where).create_db_subnet_group(
        DBSubnetGroupName=f"{named['vpc']}-db",
        DBSubnetGroupDescription="orders database",
        SubnetIds=subnets["data"],
    )
    ec2.create_security_group(GroupName=f"{named['vpc']}-db", Description="db", VpcId=vpc)
    kms = plain(cfg, "kms", where)
    key = kms.create_key(Description="orders database")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/{named['vpc']}-db", TargetKeyId=key)
    alb = elb.create_load_balancer(
        Name=named["alb"], Subnets=subnets["public"], Scheme="internet-facing", Type="application"
    )["LoadBalancers"][0]
    tg = web_target_group(cfg, named["target_group"], vpc, where)
    elb.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    ecs, ecr = plain(cfg, "ecs", where), plain(cfg, "ecr", where)
    aas = plain(cfg, "application-autoscaling", where)
    sg = ec2.create_security_group(GroupName="tf-app", Description="app", VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName=named["cluster"])["cluster"]["clusterName"]
    for svc, count in RUNNING[role].items():
        repo = ecr.create_repository(repositoryName=named[f"{svc}_repository"])["repository"]
        td = ecs.register_task_definition(
            family=named[f"{svc}_task_family"],
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="512",
            memory="1024",
            containerDefinitions=[
                {"name": "app", "image": f"{repo['repositoryUri']}:1.0.0", "essential": True}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=cluster,
            serviceName=named[f"{svc}_service"],
            taskDefinition=td,
            desiredCount=count,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": subnets["app"], "securityGroups": [sg]}
            },
            loadBalancers=(
                [{"targetGroupArn": tg, "containerName": "app", "containerPort": 8080}]
                if svc == "web"
                else []
            ),
        )
        aas.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{cluster}/{named[f'{svc}_service']}",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=count,
            MaxCapacity=8,
        )
    return dict(alb)


# The Terraform stack's listener is plain HTTP on 80, and so is its health check.
TERRAFORM_CHECK = {"Type": "HTTP", "ResourcePath": "/healthz", "Port": 80, "RequestInterval": 30,
                   "FailureThreshold": 2}  # fmt: skip


def build_dns(cfg: Config, albs: dict[Role, dict[str, Any]]) -> None:
    """The zone, a health check on the primary ALB and the failover pair, Terraform-style."""
    r53 = plain(cfg, "route53")
    zone = r53.create_hosted_zone(Name=ZONE, CallerReference="terraform")["HostedZone"]["Id"]
    hc = r53.create_health_check(
        CallerReference="terraform-east",
        HealthCheckConfig={
            **TERRAFORM_CHECK,
            "FullyQualifiedDomainName": albs["primary"]["DNSName"],
        },
    )["HealthCheck"]["Id"]
    r53.change_tags_for_resource(
        ResourceType="healthcheck",
        ResourceId=hc,
        AddTags=[{"Key": "Name", "Value": NAMES["health_check"]}],
    )
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"www.{ZONE}",
                        "Type": "A",
                        "SetIdentifier": NAMED[role]["record_set_id"],
                        "Failover": "PRIMARY" if role == "primary" else "SECONDARY",
                        **({"HealthCheckId": hc} if role == "primary" else {}),
                        "AliasTarget": {
                            "HostedZoneId": alb["CanonicalHostedZoneId"],
                            "DNSName": alb["DNSName"],
                            "EvaluateTargetHealth": False,
                        },
                    },
                }
                for role, alb in albs.items()
            ]
        },
    )


def scaling_ranges(cfg: Config, role: Role) -> dict[str, tuple[int, int]]:
    """Each ECS service's autoscaling (min, max), by service name."""
    aas = plain(cfg, "application-autoscaling", region(cfg, role))
    return {
        t["ResourceId"].split("/")[-1]: (t["MinCapacity"], t["MaxCapacity"])
        for t in aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    }


def every_name(cfg: Config) -> list[str]:
    """The names of everything in both regions that a failover reads or makes."""
    found: list[str] = []
    for where in (cfg.regions.primary, cfg.regions.dr):
        ecs, elb = plain(cfg, "ecs", where), plain(cfg, "elbv2", where)
        for cluster in ecs.list_clusters()["clusterArns"]:
            found += [cluster, *ecs.list_services(cluster=cluster)["serviceArns"]]
        found += ecs.list_task_definition_families()["families"]
        found += [
            d["DBInstanceIdentifier"]
            for d in plain(cfg, "rds", where).describe_db_instances()["DBInstances"]
        ]
        found += [lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancers"]]
        found += [tg["TargetGroupName"] for tg in elb.describe_target_groups()["TargetGroups"]]
        found += plain(cfg, "dynamodb", where).list_tables()["TableNames"]
        found += [
            r["repositoryName"]
            for r in plain(cfg, "ecr", where).describe_repositories()["repositories"]
        ]
        found += [
            t["ResourceId"]
            for t in plain(cfg, "application-autoscaling", where).describe_scalable_targets(
                ServiceNamespace="ecs"
            )["ScalableTargets"]
        ]
    r53 = plain(cfg, "route53")
    for zone in r53.list_hosted_zones()["HostedZones"]:
        records = r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
        found += [zone["Name"], *(r["SetIdentifier"] for r in records if "SetIdentifier" in r)]
    checks = [hc["Id"] for hc in r53.list_health_checks()["HealthChecks"]]
    found += [
        t["Value"]
        for ts in r53.list_tags_for_resources(ResourceType="healthcheck", ResourceIds=checks)[
            "ResourceTagSets"
        ]
        for t in ts["Tags"]
        if t["Key"] == "Name"
    ]
    return found


@pytest.fixture
def adopted(
    aws_endpoint: str, prefect_harness: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Stack:
    """An empty account, then a stack built with plain boto3 under the config's names."""
    path = adopted_config(tmp_path)
    reset_aws(aws_endpoint)
    monkeypatch.setenv("TIERBOOK_AWS_ENDPOINT_URL", aws_endpoint)
    cfg = load_config(path)
    albs: dict[Role, dict[str, Any]] = {role: build_region(cfg, role) for role in ("primary", "dr")}
    push_images(cfg)
    build_database(cfg)
    build_dns(cfg, albs)
    return Stack(cfg=cfg, control=SandboxControl(aws_endpoint))


def test_a_stack_built_elsewhere_fails_over_under_its_own_names(
    adopted: Stack, tmp_path: Path
) -> None:
    cfg = adopted.cfg
    before = sorted(every_name(cfg))
    report = failover(config=str(tmp_path / "adopted.yaml"), approved=True, reason="adopted")

    assert report["outcome"] == "succeeded", report.get("error")
    # Every check passes but one: the DNS switch was never prepared (failover --prepare).
    assert report["metrics"]["readiness"] == "warn", report["notes"]
    not_passed = [n for n in report["notes"] if n.startswith("readiness ") and ": pass" not in n]
    assert len(not_passed) == 1 and "readiness dns-switch: warn" in not_passed[0], not_passed
    assert report["metrics"]["rpo_seconds"] == 1.0 and report["metrics"]["rto_seconds"] > 0
    assert_failed_over(adopted, RUNNING["primary"])
    assert_records_rewritten(adopted)  # no switch prepared: the control-plane fallback
    fenced = {NAMES[f"{svc}_service"]: (0, 0) for svc in RUNNING["primary"]}
    assert scaling_ranges(cfg, "primary") == fenced  # autoscaling cannot bring it back
    dr_ranges = scaling_ranges(cfg, "dr")
    for svc, n in RUNNING["primary"].items():
        low, high = dr_ranges[DR_NAMES[f"{svc}_service"]]
        assert low <= n <= high, (svc, low, high)
    after = every_name(cfg)
    assert not [n for n in after if cfg.stack in n], after
    # All it made: the runbook lock table and a health check on the DR ALB, as named.
    made = [NAMES["lock_table"], DR_NAMES["health_check"]]
    assert sorted(after) == sorted([*before, *made]), set(after) ^ set(before)
    dr_record = adopted.records()["dr"]
    tags = plain(cfg, "route53").list_tags_for_resource(
        ResourceType="healthcheck", ResourceId=dr_record["HealthCheckId"]
    )["ResourceTagSet"]["Tags"]
    assert {"Key": "Name", "Value": DR_NAMES["health_check"]} in tags


def test_a_missing_dr_load_balancer_is_named_as_configured(adopted: Stack, tmp_path: Path) -> None:
    elb = adopted.client("elbv2", "dr")
    arn = elb.describe_load_balancers(Names=[DR_NAMES["alb"]])["LoadBalancers"][0]
    elb.delete_load_balancer(LoadBalancerArn=arn["LoadBalancerArn"])
    with pytest.raises(Refused, match=f"dr-load-balancer: {DR_NAMES['alb']} missing"):
        failover(config=str(tmp_path / "adopted.yaml"), plan=True)
    with pytest.raises(NotFound, match=f"load balancer {DR_NAMES['alb']} missing in us-west-2"):
        flip_dns.fn(adopted.cfg, "dr")
    assert adopted.records()["primary"]["Failover"] == "PRIMARY"  # nothing flipped


def test_a_stack_built_elsewhere_fails_back_into_its_own_placement(
    adopted: Stack, tmp_path: Path
) -> None:
    """The new replica in each region goes where the database it replaces was: its subnet
    group, security group and KMS key, none of which the config names."""
    from flows.failover import failback

    cfg, path = adopted.cfg, str(tmp_path / "adopted.yaml")
    home, away = placement(cfg, "primary"), placement(cfg, "dr")
    assert failover(config=path, approved=True)["outcome"] == "succeeded"
    report = failback(config=path, approved=True, reason="east healthy again")

    assert report["outcome"] == "succeeded", report.get("error")
    primary, dr = adopted.db("primary"), adopted.db("dr")
    assert primary["DBInstanceStatus"] == "available" and primary["MultiAZ"] is True
    assert not primary.get("ReadReplicaSourceDBInstanceIdentifier")
    assert dr["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]
    assert placed(primary) == home and placed(dr) == away
    records = adopted.records()
    assert records["primary"]["Failover"] == "PRIMARY" and records["dr"]["Failover"] == "SECONDARY"
    assert not [n for n in every_name(cfg) if cfg.stack in n]
