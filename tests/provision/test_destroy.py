"""End to end: provision both regions → the refusals → ``--plan`` → a destroy that a fault
stops midway → the re-run that finishes → a destroy of nothing.

One stack is built for the module (the slow part); every step's outcome is kept and the
assertions read the emulator's state with plain boto3. Resources the stack does not own, made
with plain boto3 (some with the stack's name as a prefix), must survive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs.errors import Refused
from configs.models import Config
from configs.names import names_for
from flows.destroy import destroy
from flows.provision import provision
from sandbox.testing import ROOT, ZONE, Sandbox, plain
from tests.support import fresh_account, watch

CONFIG = "configs/sandbox.yaml"
FOREIGN = "someone-else"


def _foreign(cfg: Config) -> dict[str, Any]:
    """What others keep in the same account, some of it named like the stack."""
    out: dict[str, Any] = {}
    for role in ("primary", "dr"):
        region = names_for(cfg, role).region  # type: ignore[arg-type]
        ec2 = plain(cfg, "ec2", region)
        vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": FOREIGN}])
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24")
        ec2.create_security_group(GroupName=f"{cfg.stack}-app", Description="x", VpcId=vpc)
        plain(cfg, "sqs", region).create_queue(QueueName=f"{cfg.stack}-orders-archive")
        plain(cfg, "logs", region).create_log_group(logGroupName=f"/ecs/{cfg.stack}/web-old")
        out[role] = {"vpc": vpc}
    plain(cfg, "s3").create_bucket(Bucket=f"{cfg.stack}-assets-archive")
    plain(cfg, "iam").create_role(RoleName=f"{cfg.stack}-ci", AssumeRolePolicyDocument="{}")
    plain(cfg, "dynamodb").create_table(
        TableName=f"{cfg.stack}-sessions",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    zone = plain(cfg, "route53").list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"][0]["Id"]
    plain(cfg, "route53").change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"www.{ZONE}",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.1"}],
                    },
                }
            ]
        },
    )
    out["zone"] = zone
    return out


def _requests(sandbox: Sandbox) -> int:
    return sum(sandbox.control.stats()["requests"].values())


@pytest.fixture(scope="module")
def run(
    aws_endpoint: str,
    moto_as_aws: pytest.MonkeyPatch,
    prefect_harness: None,
    sandbox: Sandbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    cfg = fresh_account(aws_endpoint, moto_as_aws)
    assert provision(config=CONFIG)["outcome"] == "succeeded"
    foreign = _foreign(cfg)
    out: dict[str, Any] = {"cfg": cfg, "foreign": foreign}

    data = yaml.safe_load((ROOT / CONFIG).read_text()) | {"protected": True}
    protected_cfg = tmp_path_factory.mktemp("destroy") / "protected.yaml"
    protected_cfg.write_text(yaml.safe_dump(data))
    before = _requests(sandbox)
    with pytest.raises(Refused) as refused:
        destroy(config=str(protected_cfg), yes=True)
    out["protected"] = (str(refused.value), _requests(sandbox) - before)

    calls = watch(cfg)
    out["plan"] = destroy(config=CONFIG, plan=True)
    out["plan_calls"] = list(calls.seen)

    plain(cfg, "rds").modify_db_instance(
        DBInstanceIdentifier=names_for(cfg).db_instance,
        DeletionProtection=True,
        ApplyImmediately=True,
    )  # provision turns the load balancers' on; the sandbox config leaves the database's off
    calls.reset()
    with pytest.raises(Refused) as refused:
        destroy(config=CONFIG, yes=True)
    out["deletion_protection"] = (str(refused.value), list(calls.seen))
    with pytest.raises(Refused) as refused:
        destroy(config=CONFIG, disable_deletion_protection=True)
    out["unapproved"] = (str(refused.value), list(calls.seen))

    # A fault in the primary region, once the DR region is gone and the primary half-way.
    sandbox.control.set_faults(
        {
            "kind": "error",
            "services": ["rds"],
            "regions": [cfg.regions.primary],
            "operations": ["DeleteDBSubnetGroup"],
            "code": "AccessDenied",
            "status": 403,
        }
    )
    try:
        with pytest.raises(Exception) as failed:
            destroy(config=CONFIG, yes=True, disable_deletion_protection=True)
    finally:
        sandbox.control.clear_faults()
    out["faulted"] = str(failed.value)
    out["after_fault"] = {
        "dr_vpcs": _stack_vpcs(cfg, "dr"),
        "primary_subnet_group": _subnet_groups(cfg, "primary"),
    }

    calls.reset()
    started = time.monotonic()
    out["rerun"] = destroy(config=CONFIG, yes=True, disable_deletion_protection=True)
    out["rerun_seconds"] = time.monotonic() - started
    out["rerun_calls"] = list(calls.seen)
    calls.reset()
    out["again"] = destroy(config=CONFIG, yes=True)
    out["again_calls"] = list(calls.seen)
    out["again_plan"] = destroy(config=CONFIG, plan=True)
    yield out


def _stack_vpcs(cfg: Config, role: str) -> list[str]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    vpcs = plain(cfg, "ec2", names.region).describe_vpcs(
        Filters=[{"Name": "tag:Name", "Values": [names.vpc]}]
    )["Vpcs"]
    return [v["VpcId"] for v in vpcs]


def _subnet_groups(cfg: Config, role: str) -> list[str]:
    rds = plain(cfg, "rds", names_for(cfg, role).region)  # type: ignore[arg-type]
    return [g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]]


# -- refusals ---------------------------------------------------------------------------------
def test_protected_environment_is_refused_before_any_call(run: dict) -> None:
    message, requests = run["protected"]
    assert "shop-sandbox is protected" in message
    assert requests == 0


def test_deletion_protection_refuses_before_anything_is_deleted(run: dict) -> None:
    message, mutating = run["deletion_protection"]
    assert mutating == []
    assert "database shop-sandbox-db," in message
    assert "load balancer shop-sandbox (us-east-1)" in message
    assert "load balancer shop-sandbox (us-west-2)" in message
    assert "--disable-deletion-protection" in message


def test_no_approval_no_destroy(run: dict) -> None:
    message, mutating = run["unapproved"]
    assert mutating == []
    assert "needs approval (--yes" in message


# -- plan ---------------------------------------------------------------------------------------
def test_plan_lists_every_resource_and_mutates_nothing(run: dict) -> None:
    assert run["plan_calls"] == []
    plan = run["plan"]
    assert plan["outcome"] == "planned"
    kinds = {c["resource"] for c in plan["changes"] if c["action"] == "delete"}
    for kind in (
        "route53:record", "route53:health-check", "cloudfront:distribution",
        "cloudfront:origin-access-control", "wafv2:web-acl", "wafv2:association",
        "cloudwatch:alarm", "appautoscaling:target", "appautoscaling:policy", "ecs:service",
        "ecs:task-definition", "ecs:cluster", "elbv2:listener", "elbv2:load-balancer",
        "elbv2:target-group", "sqs:queue", "ecr:repository", "logs:log-group", "s3:bucket",
        "acm:certificate", "iam:role", "elasticache:replication-group",
        "elasticache:subnet-group", "rds:instance", "rds:subnet-group",
        "secretsmanager:replica", "kms:key", "kms:alias", "ec2:vpc-endpoint",
        "ec2:nat-gateway", "ec2:elastic-ip", "ec2:flow-log", "ec2:internet-gateway",
        "ec2:route-table", "ec2:subnet", "ec2:security-group", "ec2:vpc",
    ):  # fmt: skip
        assert kind in kinds, kind
    assert any("refused without --disable-deletion-protection" in n for n in plan["notes"])
    dbs = [c for c in plan["changes"] if c["resource"] == "rds:instance"]
    assert {c["name"] for c in dbs} == {
        "shop-sandbox-db",
        "shop-sandbox-db-ro1",
        "shop-sandbox-db-dr",
    }


# -- a fault, then the re-run -------------------------------------------------------------------
def test_a_fault_midway_stops_the_run_and_a_rerun_finishes(run: dict) -> None:
    assert "AccessDenied" in run["faulted"]
    assert run["after_fault"]["dr_vpcs"] == []  # the DR region went first
    assert run["after_fault"]["primary_subnet_group"] == ["shop-sandbox-data"]
    rerun = run["rerun"]
    assert rerun["outcome"] == "succeeded"
    done = {(c["resource"], c["name"]) for c in rerun["changes"]}
    assert ("rds:subnet-group", "shop-sandbox-data") in done
    assert ("ec2:vpc", "shop-sandbox") in done
    assert ("dynamodb:table", "shop-sandbox-tierbook-locks") in done  # the lock's, last
    assert rerun["metrics"]["deleted"] == len(rerun["changes"]) - sum(
        c["action"] != "delete" for c in rerun["changes"]
    )


def test_a_second_destroy_finds_nothing_and_changes_nothing(run: dict) -> None:
    assert "ec2:DeleteVpc" in run["rerun_calls"]  # the counter sees what a real run does
    assert run["again_calls"] == []
    assert run["again"]["outcome"] == "succeeded"
    assert run["again"]["changes"] == []
    assert any("nothing to delete" in n for n in run["again"]["notes"])
    assert run["again_plan"]["changes"] == []


# -- the emulator's state -----------------------------------------------------------------------
@pytest.mark.parametrize("role", ["primary", "dr"])
def test_network_is_gone_and_a_foreign_vpc_stays(run: dict, role: str) -> None:
    cfg = run["cfg"]
    ec2 = plain(cfg, "ec2", names_for(cfg, role).region)  # type: ignore[arg-type]
    assert _stack_vpcs(cfg, role) == []
    assert [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")] == [
        run["foreign"][role]["vpc"]
    ]
    nats = ec2.describe_nat_gateways()["NatGateways"]
    assert all(n["State"] in ("deleted", "deleting") for n in nats)
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_flow_logs()["FlowLogs"] == []
    assert [
        e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() != "deleted"
    ] == []
    groups = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert f"{cfg.stack}-app" in groups  # the foreign VPC's group of the same name
    assert {f"{cfg.stack}-alb", f"{cfg.stack}-data", f"{cfg.stack}-endpoints"} & groups == set()


@pytest.mark.parametrize("role", ["primary", "dr"])
def test_app_tier_is_gone(run: dict, role: str) -> None:
    cfg = run["cfg"]
    names = names_for(cfg, role)  # type: ignore[arg-type]
    region = names.region
    ecs = plain(cfg, "ecs", region)
    assert [
        c for c in ecs.describe_clusters(clusters=[names.cluster])["clusters"]
        if c["status"] == "ACTIVE"
    ] == []  # fmt: skip
    assert ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"] == []
    elb = plain(cfg, "elbv2", region)
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    assert elb.describe_target_groups()["TargetGroups"] == []
    queues = plain(cfg, "sqs", region).list_queues().get("QueueUrls", [])
    assert [q.rsplit("/", 1)[-1] for q in queues] == [f"{cfg.stack}-orders-archive"]
    assert plain(cfg, "ecr", region).describe_repositories()["repositories"] == []
    groups = [
        g["logGroupName"] for g in plain(cfg, "logs", region).describe_log_groups()["logGroups"]
    ]
    assert groups == [f"/ecs/{cfg.stack}/web-old"]
    assert plain(cfg, "cloudwatch", region).describe_alarms()["MetricAlarms"] == []
    aas = plain(cfg, "application-autoscaling", region)
    assert aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    assert plain(cfg, "wafv2", region).list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    assert plain(cfg, "acm", region).list_certificates()["CertificateSummaryList"] == []
    assert plain(cfg, "dynamodb", region).list_tables()["TableNames"] == (
        [f"{cfg.stack}-sessions"] if role == "primary" else []
    )


def test_data_tier_is_gone_with_a_final_snapshot(run: dict) -> None:
    cfg = run["cfg"]
    for role in ("primary", "dr"):
        region = names_for(cfg, role).region  # type: ignore[arg-type]
        rds = plain(cfg, "rds", region)
        assert rds.describe_db_instances()["DBInstances"] == []
        assert _subnet_groups(cfg, role) == []
        kms = plain(cfg, "kms", region)
        aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
        assert names_for(cfg, role).kms_alias not in aliases  # type: ignore[arg-type]
        for key in kms.list_keys()["Keys"]:
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") == "CUSTOMER":
                assert meta["KeyState"] == "PendingDeletion"
    ec = plain(cfg, "elasticache")
    assert ec.describe_replication_groups()["ReplicationGroups"] == []
    assert [
        g for g in ec.describe_cache_subnet_groups()["CacheSubnetGroups"]
        if g["CacheSubnetGroupName"] != "default"
    ] == []  # fmt: skip
    snapshot = run["rerun"]["metrics"]["final_snapshot"]
    assert snapshot.startswith("shop-sandbox-db-final-")
    snaps = plain(cfg, "rds").describe_db_snapshots(DBSnapshotIdentifier=snapshot)["DBSnapshots"]
    assert snaps[0]["Status"] == "available"
    assert any(snapshot in n for n in run["rerun"]["notes"])


def test_edge_and_global_resources_are_gone_and_foreign_ones_stay(run: dict) -> None:
    cfg = run["cfg"]
    r53 = plain(cfg, "route53")
    records = r53.list_resource_record_sets(HostedZoneId=run["foreign"]["zone"])
    names = {(r["Name"], r["Type"]) for r in records["ResourceRecordSets"]}
    assert names == {(f"{ZONE}.", "NS"), (f"{ZONE}.", "SOA"), (f"www.{ZONE}.", "A")}
    assert r53.list_health_checks()["HealthChecks"] == []
    cf = plain(cfg, "cloudfront")
    assert (cf.list_distributions()["DistributionList"].get("Items") or []) == []
    assert (cf.list_origin_access_controls()["OriginAccessControlList"].get("Items") or []) == []
    assert plain(cfg, "wafv2", "us-east-1").list_web_acls(Scope="CLOUDFRONT")["WebACLs"] == []
    assert [b["Name"] for b in plain(cfg, "s3").list_buckets()["Buckets"]] == [
        f"{cfg.stack}-assets-archive"
    ]
    roles = [r["RoleName"] for r in plain(cfg, "iam").list_roles()["Roles"]]
    assert [r for r in roles if r.startswith(cfg.stack)] == [f"{cfg.stack}-ci"]


def test_report_lists_deletions_per_region_and_durations(run: dict) -> None:
    rerun = run["rerun"]
    metrics = rerun["metrics"]
    assert metrics["deleted in us-east-1"] > 0
    assert metrics["primary seconds"] >= 0
    assert Path(rerun["report_path"]).exists()
    assert {s["step"] for s in rerun["steps"]} >= {"approval", "delete primary VPC"}
