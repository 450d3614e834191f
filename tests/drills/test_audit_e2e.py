"""End to end: the audit on a stack built badly with plain boto3, and on a provisioned one.

The provisioned stack replaces the bad one (it starts from an empty account), so its test
comes last.

The bad stack carries the config's resource names but no tags at all (its VPC is found by
CIDR): the audit finds it the way it finds a stack Terraform built. Each anti-pattern is
planted once and found once.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from configs.layout import subnet_plan
from configs.models import Config
from configs.names import names_for
from flows.audit import audit
from sandbox.control import SandboxControl
from sandbox.testing import CONFIG, plain
from tests.support import fresh_account

PLANTED = {
    "db-single-az",
    "db-unencrypted",
    "db-no-deletion-protection",
    "db-no-backups",
    "data-port-open-world",
    "data-port-broad-cidr",
    "nat-shared",
    "alb-stickiness",
    "http-no-redirect",
    "plain-env-secret",
    "cache-no-failover",
    "cache-unencrypted",
    "cache-not-global",
    "queue-no-dlq",
    "dlq-retention-short",
    "dr-replica-missing",
}


def build_bad_stack(cfg: Config) -> dict[str, Any]:
    """A three-tier stack with every anti-pattern once, made without tierbook."""
    names = names_for(cfg, "primary")
    ec2 = plain(cfg, "ec2")
    vpc = ec2.create_vpc(CidrBlock=cfg.network.primary.cidr)["Vpc"]["VpcId"]
    # no Name tag: the audit finds the VPC by the config's CIDR
    subnets: dict[tuple[str, str], str] = {}
    for (tier, az), cidr in subnet_plan(cfg.network.primary).items():
        subnets[(tier, az)] = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)[
            "Subnet"
        ]["SubnetId"]
    azs = cfg.network.primary.azs
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnets[("public", azs[0])], AllocationId=eip)[
        "NatGateway"
    ]["NatGatewayId"]
    # one NAT, one app route table for every AZ
    rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    for az in azs:
        ec2.associate_route_table(RouteTableId=rt, SubnetId=subnets[("app", az)])
    db_sg = ec2.create_security_group(GroupName="legacy-db", Description="db", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=db_sg, IpProtocol="tcp", FromPort=5432, ToPort=5432, CidrIp="0.0.0.0/0"
    )
    cache_sg = ec2.create_security_group(GroupName="legacy-cache", Description="c", VpcId=vpc)[
        "GroupId"
    ]
    ec2.authorize_security_group_ingress(
        GroupId=cache_sg, IpProtocol="tcp", FromPort=6379, ToPort=6379, CidrIp="10.0.0.0/8"
    )
    web_sg = ec2.create_security_group(GroupName="legacy-web", Description="w", VpcId=vpc)[
        "GroupId"
    ]
    ec2.authorize_security_group_ingress(
        GroupId=web_sg, IpProtocol="tcp", FromPort=80, ToPort=80, CidrIp="0.0.0.0/0"
    )

    rds = plain(cfg, "rds")
    rds.create_db_subnet_group(
        DBSubnetGroupName="legacy-data",
        DBSubnetGroupDescription="data",
        SubnetIds=[subnets[("data", az)] for az in azs],
    )
    rds.create_db_instance(
        DBInstanceIdentifier=names.db_instance,
        Engine="postgres",
        DBInstanceClass="db.t4g.medium",
        AllocatedStorage=20,
        MasterUsername="app",
        MasterUserPassword="not-a-real-password",
        DBSubnetGroupName="legacy-data",
        VpcSecurityGroupIds=[db_sg],
        MultiAZ=False,
        StorageEncrypted=False,
        DeletionProtection=False,
        BackupRetentionPeriod=0,
    )

    ec = plain(cfg, "elasticache")
    ec.create_replication_group(
        ReplicationGroupId=names.cache,
        ReplicationGroupDescription="sessions",
        Engine="redis",
        CacheNodeType="cache.t4g.small",
        NumCacheClusters=1,
        AutomaticFailoverEnabled=False,
    )

    elb = plain(cfg, "elbv2")
    lb = elb.create_load_balancer(
        Name=names.alb,
        Subnets=[subnets[("public", az)] for az in azs],
        SecurityGroups=[web_sg],
        Type="application",
    )["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(
        Name=names.target_group, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(
        TargetGroupArn=tg,
        Attributes=[
            {"Key": "stickiness.enabled", "Value": "true"},
            {"Key": "stickiness.type", "Value": "lb_cookie"},
        ],
    )
    elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )

    ecs = plain(cfg, "ecs")
    ecs.create_cluster(clusterName=names.cluster)
    td = ecs.register_task_definition(
        family="legacy-web",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "web",
                "image": "nginx",
                "environment": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "DB_PASSWORD", "value": "not-a-real-password"},
                ],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=names.cluster,
        serviceName="legacy-web",
        taskDefinition=td,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [subnets[("app", azs[0])]],
                "securityGroups": [web_sg],
            }
        },
    )

    sqs = plain(cfg, "sqs")
    orders, payments = (q for q in cfg.queues)
    sqs.create_queue(QueueName=names.queue(orders.name, fifo=orders.fifo))  # no DLQ
    dlq = sqs.create_queue(
        QueueName=names.dlq(payments.name, fifo=True),
        Attributes={"FifoQueue": "true", "MessageRetentionPeriod": "345600"},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.create_queue(
        QueueName=names.queue(payments.name, fifo=True),
        Attributes={
            "FifoQueue": "true",
            "MessageRetentionPeriod": "345600",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
        },
    )
    return {"vpc": vpc, "nat": nat, "db_sg": db_sg, "cache_sg": cache_sg}


@pytest.fixture(scope="module")
def bad_stack(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> dict[str, Any]:
    cfg = fresh_account(aws_endpoint, moto_as_aws)
    built = build_bad_stack(cfg)
    return {"cfg": cfg, **built, "report": audit(config=CONFIG)}


def test_every_planted_anti_pattern_is_found_once(bad_stack: dict[str, Any]) -> None:
    found = [f["id"] for f in bad_stack["report"]["findings"]]
    assert sorted(found) == sorted(PLANTED)


def test_findings_name_the_resource_and_fail_the_run(bad_stack: dict[str, Any]) -> None:
    report = bad_stack["report"]
    by_id = {f["id"]: f for f in report["findings"]}
    assert bad_stack["nat"] in by_id["nat-shared"]["resource"]
    assert bad_stack["db_sg"] in by_id["data-port-open-world"]["resource"]
    assert bad_stack["cache_sg"] in by_id["data-port-broad-cidr"]["resource"]
    assert by_id["db-single-az"]["resource"] == "rds:instance shop-sandbox-db"
    assert by_id["dr-replica-missing"]["region"] == "us-west-2"
    assert report["outcome"] == "failed"
    assert report["metrics"]["high"] == sum(f["severity"] == "high" for f in report["findings"])
    assert "high-severity" in report["error"]


def test_cli_exits_1_on_high_findings(bad_stack: dict[str, Any]) -> None:
    out = CliRunner().invoke(app, ["audit", "-c", CONFIG, "-o", "json"])
    assert out.exit_code == 1, out.output
    payload = json.loads(out.output)
    assert {f["id"] for f in payload["findings"]} == PLANTED


def test_a_check_that_cannot_run_fails_the_audit_but_not_the_others(
    bad_stack: dict[str, Any], aws_endpoint: str
) -> None:
    control = SandboxControl(aws_endpoint)
    control.set_faults(
        {
            "kind": "error",
            "services": ["elasticache"],
            "operations": ["DescribeReplicationGroups"],
            "code": "AccessDenied",
            "status": 403,
        }
    )
    try:
        out = CliRunner().invoke(app, ["audit", "-c", CONFIG, "-o", "json"])
    finally:
        control.clear_faults()
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert {f["id"] for f in report["findings"]} == PLANTED - {
        "cache-no-failover",
        "cache-unencrypted",
        "cache-not-global",
    }
    assert report["metrics"]["checks_not_run"] == "cache"
    assert "AccessDenied" in " ".join(report["notes"])
    assert "incomplete: cache could not be checked" in report["error"]


def test_provisioned_stack_has_no_high_finding(provisioned: Config) -> None:
    report = audit(config=CONFIG)
    high = [f for f in report["findings"] if f["severity"] == "high"]
    assert high == []
    assert report["outcome"] == "succeeded"
    # the sandbox config turns deletion protection off on purpose: reported, not failed
    # and it keeps its sessions in one region (cache.global_datastore off): medium
    assert {f["id"] for f in report["findings"]} <= {
        "db-no-deletion-protection",
        "cache-not-global",
    }
    # both regions were looked at, not skipped
    steps = {s["step"]: s["outcome"] for s in report["steps"]}
    for role in ("primary", "dr"):
        for what in ("security groups", "NAT gateways", "load balancers", "task definitions"):
            assert steps[f"check {role} {what}"] == "passed", (role, what)
    assert steps["check DR replica"] == "passed"
    out = CliRunner().invoke(app, ["audit", "-c", CONFIG])
    assert out.exit_code == 0, out.output
