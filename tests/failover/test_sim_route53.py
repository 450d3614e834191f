"""The sandbox's Route 53 data plane: health checks evaluated from what they watch, alarms from
the data put to them, and ``TestDNSAnswer`` from the records' routing and those health states.
Driven with plain boto3, as any client would."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from sandbox.control import SandboxControl

pytestmark = [pytest.mark.e2e]

ZONE = "switch.example"
EAST, WEST = "us-east-1", "us-west-2"


def client(endpoint: str, service: str, region: str = EAST) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


def alb_with_targets(endpoint: str, region: str, name: str, targets: int) -> dict[str, Any]:
    ec2, elb = client(endpoint, "ec2", region), client(endpoint, "elbv2", region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    lb = elb.create_load_balancer(Name=name, Subnets=subnets, Type="application")["LoadBalancers"][
        0
    ]
    tg = elb.create_target_group(
        Name=f"{name}-tg", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    if targets:
        elb.register_targets(
            TargetGroupArn=tg, Targets=[{"Id": f"10.0.0.{i + 10}"} for i in range(targets)]
        )
    return dict(lb)


def test_failover_records_follow_an_alarm_in_another_region(clean_aws: str) -> None:
    control = SandboxControl(clean_aws)
    east = alb_with_targets(clean_aws, EAST, "east", 2)
    west = alb_with_targets(clean_aws, WEST, "west", 1)
    cw = client(clean_aws, "cloudwatch", WEST)
    cw.put_metric_alarm(
        AlarmName="primary-out",
        Namespace="tierbook",
        MetricName="PrimaryActive",
        Dimensions=[{"Name": "Environment", "Value": "t"}],
        Statistic="Minimum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="ignore",
    )
    r53 = client(clean_aws, "route53")
    zone = r53.create_hosted_zone(Name=ZONE, CallerReference="z")["HostedZone"]["Id"]
    endpoint = r53.create_health_check(
        CallerReference="e",
        HealthCheckConfig={
            "Type": "HTTP",
            "FullyQualifiedDomainName": east["DNSName"],
            "Port": 80,
            "ResourcePath": "/healthz",
        },
    )["HealthCheck"]["Id"]
    alarm = r53.create_health_check(
        CallerReference="a",
        HealthCheckConfig={
            "Type": "CLOUDWATCH_METRIC",
            "AlarmIdentifier": {"Region": WEST, "Name": "primary-out"},
            "InsufficientDataHealthStatus": "Healthy",
        },
    )["HealthCheck"]
    assert alarm["HealthCheckConfig"]["AlarmIdentifier"] == {"Region": WEST, "Name": "primary-out"}
    calc = r53.create_health_check(
        CallerReference="c",
        HealthCheckConfig={
            "Type": "CALCULATED",
            "ChildHealthChecks": [endpoint, alarm["Id"]],
            "HealthThreshold": 2,
        },
    )["HealthCheck"]["Id"]
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"www.{ZONE}",
                        "Type": "A",
                        "SetIdentifier": role,
                        "Failover": role.upper(),
                        **({"HealthCheckId": calc} if role == "primary" else {}),
                        "AliasTarget": {
                            "HostedZoneId": lb["CanonicalHostedZoneId"],
                            "DNSName": lb["DNSName"],
                            "EvaluateTargetHealth": True,
                        },
                    },
                }
                for role, lb in (("primary", east), ("secondary", west))
            ]
        },
    )

    def answered() -> list[str]:
        got = r53.test_dns_answer(HostedZoneId=zone, RecordName=f"www.{ZONE}", RecordType="A")
        assert got["RecordData"] == control.dns_answer(f"www.{ZONE}")
        return list(got["RecordData"])

    assert answered() == [east["DNSName"].lower()]
    # The switch: the "primary out" value written in the DR region.
    put = {"Namespace": "tierbook", "MetricData": [{"MetricName": "PrimaryActive",
           "Dimensions": [{"Name": "Environment", "Value": "t"}], "Value": 0.0}]}  # fmt: skip
    cw.put_metric_data(**put)
    assert cw.describe_alarms(AlarmNames=["primary-out"])["MetricAlarms"][0]["StateValue"] == (
        "ALARM"
    )
    assert not control.health_check_healthy(calc) and control.health_check_healthy(endpoint)
    assert answered() == [west["DNSName"].lower()]
    status = r53.get_health_check_status(HealthCheckId=calc)["HealthCheckObservations"][0]
    assert status["StatusReport"]["Status"].startswith("Failure")

    # Written back: the primary answers again; inverted, the calculated check says otherwise.
    put["MetricData"][0]["Value"] = 1.0  # type: ignore[index]
    control.timings(alarm_period_seconds=0.0)  # the newest point alone makes the period
    cw.put_metric_data(**put)
    assert answered() == [east["DNSName"].lower()]
    r53.update_health_check(HealthCheckId=calc, HealthCheckVersion=1, Inverted=True)
    assert answered() == [west["DNSName"].lower()]
    r53.update_health_check(HealthCheckId=calc, HealthCheckVersion=2, Inverted=False)

    # A dark primary region fails its endpoint check, and Route 53 (us-east-1) is dark too,
    # but resolvers still answer: the DR load balancer.
    control.set_faults({"kind": "down", "regions": [EAST], "hang_seconds": 0.1})
    try:
        assert not control.health_check_healthy(endpoint)
        assert control.dns_answer(f"www.{ZONE}") == [west["DNSName"].lower()]
        dead = client(clean_aws, "route53", WEST)  # signed elsewhere, still us-east-1's
        with pytest.raises(Exception, match="504"):
            dead.list_hosted_zones()
    finally:
        control.clear_faults()


def test_weighted_records_answer_the_heaviest_healthy_one(clean_aws: str) -> None:
    control = SandboxControl(clean_aws)
    east = alb_with_targets(clean_aws, EAST, "east", 0)  # no targets: not answering
    west = alb_with_targets(clean_aws, WEST, "west", 1)
    r53 = client(clean_aws, "route53")
    zone = r53.create_hosted_zone(Name=ZONE, CallerReference="z")["HostedZone"]["Id"]
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"www.{ZONE}",
                        "Type": "A",
                        "SetIdentifier": name,
                        "Weight": weight,
                        "AliasTarget": {
                            "HostedZoneId": lb["CanonicalHostedZoneId"],
                            "DNSName": lb["DNSName"],
                            "EvaluateTargetHealth": True,
                        },
                    },
                }
                for name, weight, lb in (("east", 100, east), ("west", 0, west))
            ]
        },
    )
    assert control.dns_answer(f"www.{ZONE}") == [west["DNSName"].lower()]
