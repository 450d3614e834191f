"""The pure parts of static stability: what counts as darkness, how readiness adds up, the RPO
window, the DR health check's shape; and the new AWS calls against botocore's request shapes
(Stubber), where the sandbox is not the proof."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import ANY, Stubber

from configs.loader import parse_config
from configs.models import Config
from tasks.core import retry
from tasks.core.errors import TransientAwsError
from tasks.resources.dns import health_check_config
from tasks.resources.dns_switch import (
    alarm_check_config,
    alarm_spec,
    dimensions,
    switch_check_config,
)
from tasks.runbooks.failover.readiness import Finding, Readiness, worst_lag

ROOT = Path(__file__).resolve().parents[2]


def cfg(**dns: Any) -> Config:
    data = yaml.safe_load((ROOT / "configs" / "sandbox.yaml").read_text())
    if dns:
        data["dns"] = {**data["dns"], **dns}
    return parse_config(data, source="test")


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "DescribeDBInstances",
    )


@pytest.mark.parametrize(
    ("exc", "dark"),
    [
        (client_error("Throttling", 400), False),
        (client_error("ThrottlingException", 400), False),
        (client_error("ServiceUnavailable", 503), False),
        (client_error("InternalError", 500), False),
        (client_error("504", 504), True),  # a gateway's page: nobody behind it answered
        (EndpointConnectionError(endpoint_url="https://rds.us-east-1.amazonaws.com"), True),
        (ReadTimeoutError(endpoint_url="https://rds.us-east-1.amazonaws.com"), True),
    ],
)
def test_only_connection_failures_and_timeouts_are_darkness(exc: Exception, dark: bool) -> None:
    translated = retry.translate(exc)
    assert isinstance(translated, TransientAwsError)  # all of them are retried normally
    assert retry.unreachable(translated) is dark


def test_a_probe_gives_up_at_the_first_hang_but_retries_throttling() -> None:
    fast = retry.RetryPolicy(
        max_attempts=5, deadline_s=5, initial_backoff_s=0, max_backoff_s=0, retry_unreachable=False
    )
    attempts: list[int] = []

    def hangs() -> None:
        attempts.append(1)
        raise ReadTimeoutError(endpoint_url="https://x")

    with pytest.raises(TransientAwsError):
        retry.call(hangs, policy=fast)
    assert len(attempts) == 1

    answers = iter([client_error("Throttling", 400), client_error("Throttling", 400), None])

    def busy() -> str:
        attempts.append(1)
        err = next(answers)
        if err is not None:
            raise err
        return "ok"

    attempts.clear()
    assert retry.call(busy, policy=fast) == "ok" and len(attempts) == 3


def test_unknown_checks_refuse_only_when_they_block() -> None:
    dark = Finding(check="secret", status="unknown", detail="primary dark", blocking=False)
    ok = Finding(check="dr-database", status="pass", detail="fine")
    ready = Readiness(findings=[ok, dark])
    assert ready.failed == [] and ready.status == "unknown"
    lost = Finding(check="dr-load-balancer", status="unknown", detail="no answer from DR")
    ready = Readiness(findings=[ok, dark, lost])
    assert ready.failed == [lost]
    bad = Finding(check="dns", status="fail", detail="no record")
    assert Readiness(findings=[bad, lost]).status == "fail"


def test_replica_lag_is_the_worst_of_the_window_and_unknown_without_data() -> None:
    now = datetime.now(UTC)
    points = [
        {"Timestamp": now, "Maximum": 1.0},  # the newest is small…
        {"Timestamp": now.replace(year=now.year - 1), "Maximum": 42.0},  # …the window's worst
    ]
    assert worst_lag(points) == 42.0
    assert worst_lag([]) is None  # unknown, not zero
    assert worst_lag([{"Timestamp": now, "Maximum": 2500.0}], aurora=True) == 2.5
    assert cfg().failover.rpo_window_seconds == 300


def test_the_dr_health_check_matches_the_stack_never_a_hard_coded_https_443() -> None:
    primary = {
        "Type": "HTTP",
        "Port": 8080,
        "ResourcePath": "/ping",
        "RequestInterval": 30,
        "FailureThreshold": 5,
    }
    copied = health_check_config(cfg(), "dr-alb.example", like=primary)
    assert {k: copied[k] for k in primary} == primary
    assert "EnableSNI" not in copied
    # Set in the config: the config wins over the primary's check.
    given = cfg(health_check={"protocol": "HTTPS", "port": 8443, "path": "/healthz"})
    made = health_check_config(given, "dr-alb.example", like=primary)
    assert (made["Type"], made["Port"], made["ResourcePath"]) == ("HTTPS", 8443, "/healthz")
    assert made["RequestInterval"] == 30  # not set in the config: the primary's
    # Neither: tierbook's own listener.
    own = health_check_config(cfg(), "alb.example")
    assert (own["Type"], own["Port"]) == ("HTTPS", 443)


def stubbed(service: str, region: str = "us-west-2") -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_the_switch_calls_match_aws_request_shapes() -> None:
    c = cfg()
    cw = stubbed("cloudwatch")
    with Stubber(cw) as stub:
        stub.add_response("put_metric_alarm", {}, alarm_spec(c))
        stub.add_response(
            "put_metric_data",
            {},
            {
                "Namespace": "tierbook",
                "MetricData": [
                    {
                        "MetricName": "PrimaryActive",
                        "Dimensions": dimensions(c),
                        "Timestamp": ANY,
                        "Value": 0.0,
                        "Unit": "Count",
                    }
                ],
            },
        )
        cw.put_metric_alarm(**alarm_spec(c))
        from tasks.resources import dns_switch

        original = dns_switch._cw
        dns_switch._cw = lambda _cfg: cw  # type: ignore[assignment]
        try:
            dns_switch.put_primary_active(c, False)
        finally:
            dns_switch._cw = original  # type: ignore[assignment]
        stub.assert_no_pending_responses()

    r53 = stubbed("route53", "us-east-1")
    answer = {"HealthCheck": {"Id": "hc", "CallerReference": "r", "HealthCheckVersion": 1,
              "HealthCheckConfig": {"Type": "CALCULATED"}},
              "Location": "https://route53.amazonaws.com/2013-04-01/healthcheck/hc"}  # fmt: skip
    with Stubber(r53) as stub:
        for config in (alarm_check_config(c), switch_check_config("hc-endpoint", "hc-alarm")):
            stub.add_response(
                "create_health_check",
                answer,
                {"CallerReference": "ref", "HealthCheckConfig": config},
            )
            r53.create_health_check(CallerReference="ref", HealthCheckConfig=config)
        stub.add_response(
            "test_dns_answer",
            {
                "Nameserver": "ns",
                "RecordName": "origin.shop.example.com",
                "RecordType": "A",
                "RecordData": ["192.0.2.1"],
                "ResponseCode": "NOERROR",
                "Protocol": "UDP",
            },
            {"HostedZoneId": "Z1", "RecordName": "origin.shop.example.com", "RecordType": "A"},
        )
        r53.test_dns_answer(HostedZoneId="Z1", RecordName="origin.shop.example.com", RecordType="A")
        alarm_fields = {k: alarm_check_config(c)[k] for k in alarm_check_config(c) if k != "Type"}
        calc = switch_check_config("hc-endpoint", "hc-alarm")
        for fields in (
            alarm_fields,
            {k: calc[k] for k in ("ChildHealthChecks", "HealthThreshold")},
        ):
            stub.add_response(
                "update_health_check",
                {"HealthCheck": answer["HealthCheck"]},
                {"HealthCheckId": "hc", "HealthCheckVersion": 1, **fields},
            )
            r53.update_health_check(HealthCheckId="hc", HealthCheckVersion=1, **fields)
        stub.assert_no_pending_responses()


def test_a_region_that_may_be_down_costs_few_hangs_but_throttling_is_retried_in_full() -> None:
    """Calls into the region being fenced or probed give up after a few hangs, never after a
    few throttled answers: throttling is not darkness."""
    from dataclasses import replace

    from botocore.exceptions import ClientError, EndpointConnectionError

    from tasks.core import retry
    from tasks.core.errors import TransientAwsError

    policy = replace(retry.IMPAIRED_REGION_POLICY, initial_backoff_s=0.001, max_backoff_s=0.001)
    attempts: list[str] = []

    def throttled_five_times() -> str:
        attempts.append("throttled")
        if len(attempts) <= 5:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "Op")
        return "answer"

    assert retry.call(throttled_five_times, policy=policy) == "answer"
    assert len(attempts) == 6

    hangs: list[str] = []

    def hangs_every_time() -> str:
        hangs.append("hang")
        raise EndpointConnectionError(endpoint_url="https://ecs.us-east-1.amazonaws.com")

    with pytest.raises(TransientAwsError) as caught:
        retry.call(hangs_every_time, policy=policy)
    assert retry.unreachable(caught.value)
    assert len(hangs) == policy.max_unreachable_attempts == 3
