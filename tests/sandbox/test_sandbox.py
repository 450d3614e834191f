"""The embedded AWS behaves like AWS where runbooks wait on it, and injects faults on demand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from sandbox.testing import ROOT, Sandbox, free_port

REGIONS = ("us-east-1", "us-west-2")


def client(endpoint: str, service: str, region: str = "us-east-1", **cfg: Any) -> Any:
    return boto3.client(  # type: ignore[call-overload]  # service is a plain str
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=Config(retries={"total_max_attempts": 1}, **cfg),
    )


def until(probe: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


Make = Callable[[Any, str], Any]
Names = Callable[[Any], set[str]]


def _tail(arns: list[str]) -> set[str]:
    return {a.rsplit("/", 1)[-1] for a in arns}


# Regional services: how to make a named thing, and the names of such things a region lists.
REGIONAL: dict[str, tuple[Make, Names]] = {
    "ec2": (
        lambda c, n: c.create_security_group(GroupName=n, Description=n),
        lambda c: {g["GroupName"] for g in c.describe_security_groups()["SecurityGroups"]},
    ),
    "elbv2": (
        lambda c, n: c.create_target_group(Name=n, TargetType="lambda"),
        lambda c: {g["TargetGroupName"] for g in c.describe_target_groups()["TargetGroups"]},
    ),
    "ecs": (
        lambda c, n: c.create_cluster(clusterName=n),
        lambda c: _tail(c.list_clusters()["clusterArns"]),
    ),
    "ecr": (
        lambda c, n: c.create_repository(repositoryName=n),
        lambda c: {r["repositoryName"] for r in c.describe_repositories()["repositories"]},
    ),
    "rds": (
        lambda c, n: c.create_db_parameter_group(
            DBParameterGroupName=n, DBParameterGroupFamily="postgres16", Description=n
        ),
        lambda c: {
            g["DBParameterGroupName"] for g in c.describe_db_parameter_groups()["DBParameterGroups"]
        },
    ),
    "sqs": (
        lambda c, n: c.create_queue(QueueName=n),
        lambda c: _tail(c.list_queues().get("QueueUrls", [])),
    ),
    "wafv2": (
        lambda c, n: c.create_ip_set(
            Name=n, Scope="REGIONAL", IPAddressVersion="IPV4", Addresses=[]
        ),
        lambda c: {s["Name"] for s in c.list_ip_sets(Scope="REGIONAL")["IPSets"]},
    ),
    "secretsmanager": (
        lambda c, n: c.create_secret(Name=n, SecretString="probe"),
        lambda c: {s["Name"] for s in c.list_secrets()["SecretList"]},
    ),
    "kms": (
        lambda c, n: c.create_alias(
            AliasName=f"alias/{n}", TargetKeyId=c.create_key()["KeyMetadata"]["KeyId"]
        ),
        lambda c: {a["AliasName"].removeprefix("alias/") for a in c.list_aliases()["Aliases"]},
    ),
    "logs": (
        lambda c, n: c.create_log_group(logGroupName=n),
        lambda c: {g["logGroupName"] for g in c.describe_log_groups()["logGroups"]},
    ),
    "cloudwatch": (
        lambda c, n: c.put_metric_alarm(
            AlarmName=n,
            MetricName="CPUUtilization",
            Namespace="AWS/ECS",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=90.0,
            ComparisonOperator="GreaterThanThreshold",
        ),
        lambda c: {a["AlarmName"] for a in c.describe_alarms()["MetricAlarms"]},
    ),
    "dynamodb": (
        lambda c, n: c.create_table(
            TableName=n,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        ),
        lambda c: set(c.list_tables()["TableNames"]),
    ),
}


@pytest.mark.parametrize("region", REGIONS)
def test_every_service_answers_in_both_regions(clean_aws: str, region: str) -> None:
    """Every service the runbooks use answers when signed for either region, and a regional
    service answers from that region's own state (the sandbox routes by the signature's
    credential scope): what is made in one region is listed there and not in the other."""
    calls = {
        "ec2": lambda c: c.describe_vpcs(),
        "elbv2": lambda c: c.describe_load_balancers(),
        "ecs": lambda c: c.list_clusters(),
        "ecr": lambda c: c.describe_repositories(),
        "rds": lambda c: c.describe_db_instances(),
        "elasticache": lambda c: c.describe_replication_groups(),
        "sqs": lambda c: c.list_queues(),
        "s3": lambda c: c.list_buckets(),
        "route53": lambda c: c.list_hosted_zones(),
        "cloudfront": lambda c: c.list_distributions(),
        "wafv2": lambda c: c.list_web_acls(Scope="REGIONAL"),
        "secretsmanager": lambda c: c.list_secrets(),
        "kms": lambda c: c.list_keys(),
        "iam": lambda c: c.list_roles(),
        "sts": lambda c: c.get_caller_identity(),
        "logs": lambda c: c.describe_log_groups(),
        "cloudwatch": lambda c: c.describe_alarms(),
        "application-autoscaling": lambda c: c.describe_scalable_targets(ServiceNamespace="ecs"),
        "codebuild": lambda c: c.list_projects(),
        "dynamodb": lambda c: c.list_tables(),
    }
    for service, call in calls.items():
        answer = call(client(clean_aws, service, region))
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200, service
    other = next(r for r in REGIONS if r != region)
    for service, (make, names) in REGIONAL.items():
        marker = f"probe-{service}-{region}"
        make(client(clean_aws, service, region), marker)
        assert marker in names(client(clean_aws, service, region)), service
        assert marker not in names(client(clean_aws, service, other)), service


def _network(endpoint: str, region: str = "us-east-1") -> tuple[list[str], str, str]:
    ec2 = client(endpoint, "ec2", region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    return subnets, sg, vpc


def _service(endpoint: str, desired: int = 4, region: str = "us-east-1") -> dict[str, Any]:
    subnets, sg, vpc = _network(endpoint, region)
    elb = client(endpoint, "elbv2", region)
    tg = elb.create_target_group(
        Name="web", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    ecs = client(endpoint, "ecs", region)
    ecs.create_cluster(clusterName="c")
    tds = [
        ecs.register_task_definition(
            family="web",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {"name": "web", "image": f"web:{v}", "portMappings": [{"containerPort": 8080}]}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        for v in (1, 2)
    ]
    ecs.create_service(
        cluster="c",
        serviceName="web",
        taskDefinition=tds[0],
        desiredCount=desired,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}},
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}],
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
    )
    return {"ecs": ecs, "elb": elb, "tg": tg, "tds": tds}


def _describe(ecs: Any) -> dict[str, Any]:
    return dict(ecs.describe_services(cluster="c", services=["web"])["services"][0])


def test_ecs_deployment_completes_after_its_time_with_tasks_over_azs(
    sandbox: Sandbox, clean_aws: str
) -> None:
    sandbox.control.timings(ecs_deployment_seconds=1.0)
    s = _service(clean_aws)
    first = _describe(s["ecs"])
    assert first["deployments"][0]["rolloutState"] == "IN_PROGRESS" and first["runningCount"] == 0
    done = until(
        lambda: _describe(s["ecs"]), lambda d: d["deployments"][0]["rolloutState"] == "COMPLETED"
    )
    assert done["runningCount"] == done["desiredCount"] == 4
    arns = s["ecs"].list_tasks(cluster="c", serviceName="web")["taskArns"]
    tasks = s["ecs"].describe_tasks(cluster="c", tasks=arns)["tasks"]
    assert {t["availabilityZone"] for t in tasks} == {"us-east-1a", "us-east-1b"}
    health = s["elb"].describe_target_health(TargetGroupArn=s["tg"])["TargetHealthDescriptions"]
    assert len(health) == 4 and {h["TargetHealth"]["State"] for h in health} == {"healthy"}


def test_failed_deployment_rolls_back_to_the_previous_revision(
    sandbox: Sandbox, clean_aws: str
) -> None:
    s = _service(clean_aws, desired=2)
    until(lambda: _describe(s["ecs"]), lambda d: d["deployments"][0]["rolloutState"] == "COMPLETED")
    sandbox.control.fail_next_deployment("us-east-1", "web")
    new = s["ecs"].update_service(cluster="c", service="web", taskDefinition=s["tds"][1])["service"]
    failing = new["deployments"][0]["id"]
    end = until(
        lambda: _describe(s["ecs"]),
        lambda d: (
            len(d["deployments"]) == 1
            and d["deployments"][0]["rolloutState"] == "COMPLETED"
            and d["deployments"][0]["id"] != failing
        ),
    )
    assert end["taskDefinition"] == s["tds"][0]
    assert any("rolling back" in e["message"] for e in end["events"])


def test_stalled_deployment_never_completes(sandbox: Sandbox, clean_aws: str) -> None:
    s = _service(clean_aws, desired=2)
    until(lambda: _describe(s["ecs"]), lambda d: d["deployments"][0]["rolloutState"] == "COMPLETED")
    sandbox.control.fail_next_deployment("us-east-1", "web", mode="stall")
    s["ecs"].update_service(cluster="c", service="web", taskDefinition=s["tds"][1])
    time.sleep(1.0)  # three deployment times: a stalled one is still in progress
    assert _describe(s["ecs"])["deployments"][0]["rolloutState"] == "IN_PROGRESS"


def test_stopped_tasks_are_replaced(sandbox: Sandbox, clean_aws: str) -> None:
    s = _service(clean_aws, desired=2)
    until(lambda: _describe(s["ecs"]), lambda d: d["runningCount"] == 2)
    sandbox.control.timings(ecs_task_replace_seconds=1.0)
    arn = s["ecs"].list_tasks(cluster="c", serviceName="web")["taskArns"][0]
    s["ecs"].stop_task(cluster="c", task=arn)
    assert _describe(s["ecs"])["runningCount"] == 1
    assert until(lambda: _describe(s["ecs"]), lambda d: d["runningCount"] == 2)["runningCount"] == 2


def test_rds_promote_stays_modifying_for_its_time(sandbox: Sandbox, clean_aws: str) -> None:
    east, west = client(clean_aws, "rds", "us-east-1"), client(clean_aws, "rds", "us-west-2")
    src = east.create_db_instance(
        DBInstanceIdentifier="db",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        MasterUsername="u",
        MasterUserPassword="password1",
        AllocatedStorage=20,
        BackupRetentionPeriod=1,
    )["DBInstance"]
    assert src["DBInstanceStatus"] == "creating"
    west.create_db_instance_read_replica(
        DBInstanceIdentifier="db-dr",
        SourceDBInstanceIdentifier=src["DBInstanceArn"],
        DBInstanceClass="db.t4g.micro",
    )
    status = lambda: west.describe_db_instances(DBInstanceIdentifier="db-dr")["DBInstances"][0][
        "DBInstanceStatus"
    ]
    assert until(status, lambda s: s == "available") == "available"
    sandbox.control.timings(rds_modify_seconds=1.0)
    west.promote_read_replica(DBInstanceIdentifier="db-dr")
    started = time.monotonic()
    assert status() == "modifying"
    assert until(status, lambda s: s == "available") == "available"
    assert time.monotonic() - started >= 0.9


def test_aurora_failover_swaps_the_writer_and_is_failing_over_for_its_time(
    sandbox: Sandbox, clean_aws: str
) -> None:
    ec2, rds = client(clean_aws, "ec2"), client(clean_aws, "rds")
    group = ec2.create_security_group(GroupName="data", Description="data")["GroupId"]
    rds.create_db_cluster(
        DBClusterIdentifier="c",
        Engine="aurora-postgresql",
        MasterUsername="u",
        MasterUserPassword="password1",
        VpcSecurityGroupIds=[group],
    )
    for ident, az in (("c-1", "us-east-1a"), ("c-2", "us-east-1b")):
        rds.create_db_instance(
            DBInstanceIdentifier=ident,
            DBClusterIdentifier="c",
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
            AvailabilityZone=az,
        )

    def cluster() -> dict[str, Any]:
        return dict(rds.describe_db_clusters(DBClusterIdentifier="c")["DBClusters"][0])

    def writer(c: dict[str, Any]) -> str:
        return next(
            m["DBInstanceIdentifier"] for m in c["DBClusterMembers"] if m["IsClusterWriter"]
        )

    assert until(cluster, lambda c: c["Status"] == "available")["Status"] == "available"
    before = writer(cluster())
    sandbox.control.timings(rds_modify_seconds=1.0)
    answer = rds.failover_db_cluster(DBClusterIdentifier="C")["DBCluster"]  # any case, as AWS
    started = time.monotonic()
    assert answer["Status"] == "failing-over"
    now = cluster()
    assert now["Status"] == "failing-over"
    # only the cluster's own status: its security groups stay active
    assert [g["Status"] for g in now["VpcSecurityGroups"]] == ["active"]
    assert writer(now) == ({"c-1", "c-2"} - {before}).pop()
    assert until(cluster, lambda c: c["Status"] == "available")["Status"] == "available"
    assert time.monotonic() - started >= 0.9


def test_replica_lag_metric_is_published_and_settable(sandbox: Sandbox, clean_aws: str) -> None:
    east, west = client(clean_aws, "rds", "us-east-1"), client(clean_aws, "rds", "us-west-2")
    src = east.create_db_instance(
        DBInstanceIdentifier="db",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        MasterUsername="u",
        MasterUserPassword="password1",
        AllocatedStorage=20,
        BackupRetentionPeriod=1,
    )["DBInstance"]
    west.create_db_instance_read_replica(
        DBInstanceIdentifier="db-dr", SourceDBInstanceIdentifier=src["DBInstanceArn"]
    )
    sandbox.control.set_replica_lag(42.0, "db-dr")
    west.describe_db_instances()
    from datetime import UTC, datetime, timedelta

    stats = client(clean_aws, "cloudwatch", "us-west-2").get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="ReplicaLag",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "db-dr"}],
        StartTime=datetime.now(UTC) - timedelta(minutes=5),
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )
    assert max(p["Maximum"] for p in stats["Datapoints"]) == 42.0


def test_route53_change_is_pending_then_insync(sandbox: Sandbox, clean_aws: str) -> None:
    sandbox.control.timings(route53_sync_seconds=1.0)
    r53 = client(clean_aws, "route53")
    zone = r53.create_hosted_zone(Name="example.com", CallerReference="x")["HostedZone"]["Id"]
    change = r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "a.example.com",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "1.2.3.4"}],
                    },
                }
            ]
        },
    )["ChangeInfo"]
    assert change["Status"] == "PENDING"
    assert r53.get_change(Id=change["Id"])["ChangeInfo"]["Status"] == "PENDING"
    assert (
        until(
            lambda: r53.get_change(Id=change["Id"])["ChangeInfo"]["Status"], lambda s: s == "INSYNC"
        )
        == "INSYNC"
    )


def test_codebuild_pushes_its_image_to_ecr(sandbox: Sandbox, clean_aws: str) -> None:
    ecr, cb = client(clean_aws, "ecr"), client(clean_aws, "codebuild")
    ecr.create_repository(repositoryName="shop/web")
    cb.create_project(
        name="build",
        source={"type": "S3", "location": "src-bucket/app.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole="arn:aws:iam::123456789012:role/cb",
    )
    build = cb.start_build(
        projectName="build",
        environmentVariablesOverride=[
            {"name": "IMAGE_REPO_NAME", "value": "shop/web"},
            {"name": "IMAGE_TAG", "value": "2.0.0"},
        ],
    )["build"]
    assert build["buildStatus"] == "IN_PROGRESS"
    done = until(
        lambda: cb.batch_get_builds(ids=[build["id"]])["builds"][0],
        lambda b: b["buildStatus"] != "IN_PROGRESS",
    )
    assert done["buildStatus"] == "SUCCEEDED" and done["currentPhase"] == "COMPLETED"
    image = ecr.describe_images(repositoryName="shop/web", imageIds=[{"imageTag": "2.0.0"}])[
        "imageDetails"
    ][0]
    assert image["imageDigest"].startswith("sha256:")
    sandbox.control.fail_next_build()
    failed = cb.start_build(
        projectName="build",
        environmentVariablesOverride=[
            {"name": "IMAGE_REPO_NAME", "value": "shop/web"},
            {"name": "IMAGE_TAG", "value": "2.0.1"},
        ],
    )["build"]
    assert (
        until(
            lambda: cb.batch_get_builds(ids=[failed["id"]])["builds"][0]["buildStatus"],
            lambda s: s != "IN_PROGRESS",
        )
        == "FAILED"
    )


def test_certificates_are_issued_each_its_own_and_an_imported_key_is_still_checked(
    clean_aws: str,
) -> None:
    """The sandbox signs the certificates it issues with one key of its own (no key made per
    request): each is still a certificate of its own, for its names, issued at once; an
    imported certificate with a key that is not a key is refused, as AWS does."""
    acm = client(clean_aws, "acm")
    arns = [
        acm.request_certificate(
            DomainName=name, SubjectAlternativeNames=[f"www.{name}"], ValidationMethod="DNS"
        )["CertificateArn"]
        for name in ("shop.example.com", "admin.example.com")
    ]
    issued = [acm.describe_certificate(CertificateArn=a)["Certificate"] for a in arns]
    assert [c["DomainName"] for c in issued] == ["shop.example.com", "admin.example.com"]
    assert sorted(issued[1]["SubjectAlternativeNames"]) == [
        "admin.example.com",
        "www.admin.example.com",
    ]
    assert {c["Status"] for c in issued} == {"ISSUED"}
    assert issued[0]["Serial"] != issued[1]["Serial"]
    pem = acm.get_certificate(CertificateArn=arns[0])["Certificate"]
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    with pytest.raises(ClientError) as refused:
        acm.import_certificate(Certificate=pem.encode(), PrivateKey=b"not a key")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert len(acm.list_certificates()["CertificateSummaryList"]) == 2


def test_kms_keys_are_each_their_own_and_an_asymmetric_key_signs_with_its_own_pair(
    clean_aws: str,
) -> None:
    """Symmetric keys share one unused key pair in the sandbox (none made per key): each
    still encrypts for itself alone; each asymmetric key has a pair of its own and signs."""
    kms = client(clean_aws, "kms")
    first, second = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    sealed = kms.encrypt(KeyId=first, Plaintext=b"orders")["CiphertextBlob"]
    opened = kms.decrypt(CiphertextBlob=sealed)
    assert opened["Plaintext"] == b"orders" and opened["KeyId"].endswith(first)
    with pytest.raises(ClientError):
        kms.decrypt(CiphertextBlob=sealed, KeyId=second)
    signing = [
        kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        for _ in range(2)
    ]
    publics = {kms.get_public_key(KeyId=k)["PublicKey"] for k in signing}
    assert len(publics) == 2
    signed = kms.sign(KeyId=signing[0], Message=b"m", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")[
        "Signature"
    ]
    assert kms.verify(
        KeyId=signing[0],
        Message=b"m",
        Signature=signed,
        SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
    )["SignatureValid"]


def test_the_services_the_sandbox_serves_are_listed_once_and_all() -> None:
    """The sandbox lists moto's service packages once (moto lists its directory on every
    request): the list it keeps is the whole of it."""
    import os

    import moto
    from moto import backends

    from sandbox import moto_fixes

    moto_fixes.apply()
    folder = os.path.dirname(moto.__file__)
    on_disk = {
        d
        for d in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, d)) and not d.startswith("__")
    }
    assert set(backends.list_of_moto_modules()) == on_disk
    assert {"ec2", "s3", "kms"} <= on_disk
    assert backends.list_of_moto_modules() is backends.list_of_moto_modules()


def test_throttling_fault_answers_in_protocol_and_changes_nothing(
    sandbox: Sandbox, clean_aws: str
) -> None:
    sandbox.control.set_faults({"kind": "throttle", "rate": 1.0, "services": ["sqs"]}, seed=1)
    sqs = client(clean_aws, "sqs")
    with pytest.raises(ClientError) as err:
        sqs.create_queue(QueueName="never")
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(ClientError) as err:
        client(clean_aws, "ec2").describe_vpcs() if False else None
        sandbox.control.set_faults({"kind": "throttle", "rate": 1.0, "services": ["ec2"]})
        client(clean_aws, "ec2").create_vpc(CidrBlock="10.9.0.0/16")
    assert err.value.response["Error"]["Code"] == "RequestLimitExceeded"
    sandbox.control.clear_faults()
    assert "QueueUrls" not in sqs.list_queues()
    assert all(
        v["CidrBlock"] != "10.9.0.0/16" for v in client(clean_aws, "ec2").describe_vpcs()["Vpcs"]
    )
    assert sum(sandbox.control.stats()["faults"].values()) == 2


def test_region_that_does_not_answer(sandbox: Sandbox, clean_aws: str) -> None:
    sandbox.control.set_faults({"kind": "down", "regions": ["us-east-1"], "hang_seconds": 3})
    dead = client(clean_aws, "ecs", "us-east-1", read_timeout=1, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        dead.list_clusters()
    assert time.monotonic() - started < 2.5
    client(clean_aws, "ecs", "us-west-2").list_clusters()  # the other region answers


def test_cli_start_status_stop_leaves_no_process(tmp_path: Any) -> None:
    port = free_port()
    env = {**os.environ, "TIERBOOK_HOME": str(tmp_path)}
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "cli", "sandbox", *a],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    started = run("start", "--port", str(port), "--timings", "fast", "-o", "json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["endpoint"] == f"http://127.0.0.1:{port}" and info["started"]
    client(info["endpoint"], "sts").get_caller_identity()
    again = run("start", "--port", str(port), "-o", "json")
    assert (
        json.loads(again.stdout)["pid"] == info["pid"] and not json.loads(again.stdout)["started"]
    )
    assert run("status").returncode == 0
    assert run("stop").returncode == 0
    assert run("status").returncode == 1
    from sandbox.process import alive

    assert not alive(info["pid"])


def test_importing_the_test_support_changes_nothing() -> None:
    """``sandbox.testing`` is a library: importing it sets no variable and pulls in neither
    tierbook's tasks nor its flows (sandbox/ sits below them)."""
    probe = (
        "import os, sys, json; before = dict(os.environ); import sandbox.testing; "
        "print(json.dumps({'same': before == dict(os.environ), 'layers': sorted({m.split('.')[0] "
        "for m in sys.modules} & {'tasks', 'flows', 'cli', 'deployments', 'prefect'})}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERBOOK_", "MOTO_"))}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"same": True, "layers": []}


def test_sandbox_process_serves_and_is_gone_after() -> None:
    from sandbox.testing import cpu_seconds, listening_pid, sandbox_process

    with sandbox_process({"route53_sync_seconds": 0.1}) as running:
        assert running.control.timings()["route53_sync_seconds"] == 0.1
        assert client(running.endpoint, "sts").get_caller_identity()["Account"]
        # what a benchmark reads of an emulator it did not start: the process on the port
        port = int(running.endpoint.rsplit(":", 1)[1])
        assert running.pid is not None and listening_pid(port) == running.pid
        assert (cpu_seconds(running.pid) or 0.0) > 0.0
    assert not running.control.healthy()
    assert listening_pid(port) is None
