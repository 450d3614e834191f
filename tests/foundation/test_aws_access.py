"""One client factory, one retry layer, an account guard that changes nothing when wrong."""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import threading
from collections import Counter
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from configs.errors import DeadlineExceeded, StepFailed
from tasks.core.aws import Aws, connect, is_mutating
from tasks.core.errors import AccountMismatch, PermanentAwsError, TransientAwsError
from tasks.core.retry import wait_for

THROTTLE = "Throttling"
DENIED = "AccessDenied"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        yield self.body


def fake(request: Any, status: int, code: str) -> AWSResponse:
    """An AWS error answer in the protocol the request speaks (JSON or query/XML)."""
    if request.headers.get("X-Amz-Target"):
        body = json.dumps({"__type": code, "message": "injected"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            "<Message>injected</Message></Error><RequestId>x</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    return AWSResponse("http://fault", status, HTTPHeaders.from_dict(headers), _Raw(body))


class WireCounter:
    """Counts what reaches the wire, and optionally answers some requests with a fault."""

    def __init__(
        self,
        session: Any,
        *,
        fault: tuple[int, str] | None = None,
        rate: float = 0.0,
        only: str = "",
    ) -> None:
        self.sent: Counter[str] = Counter()
        self.faulted = 0
        self.rng = random.Random(7)
        self.fault, self.rate, self.only = fault, rate, only
        session.events.register("before-send", self)

    def __call__(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        op = kwargs.get("event_name", "").split(".")[-1]
        op = request.context.get("operation_name") or op  # type: ignore[union-attr]
        self.sent[op] += 1
        if self.fault and (not self.only or op == self.only) and self.rng.random() < self.rate:
            self.faulted += 1
            return fake(request, *self.fault)
        return None


def fast_retries(cfg: Any) -> Any:
    retry = cfg.aws.retry.model_copy(
        update={"initial_backoff_seconds": 0.01, "max_backoff_seconds": 0.05}
    )
    return cfg.model_copy(update={"aws": cfg.aws.model_copy(update={"retry": retry})})


def test_throttling_30_percent_calls_succeed_with_bounded_logged_retries(
    sandbox_cfg: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox_cfg = fast_retries(sandbox_cfg)
    aws = connect(sandbox_cfg)
    wire = WireCounter(aws.session, fault=(400, THROTTLE), rate=0.3)
    sqs = aws.client("sqs", sandbox_cfg.regions.primary)
    with caplog.at_level(logging.WARNING, logger="tierbook"):
        for i in range(20):
            url = sqs.create_queue(QueueName=f"q{i}")["QueueUrl"]
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert len(sqs.list_queues()["QueueUrls"]) == 20
    retries = [r for r in caplog.records if "retrying after" in r.getMessage()]
    assert wire.faulted > 5
    assert len(retries) == wire.faulted  # every retry logged, exactly once
    calls = 20 * 2 + 1 + 1  # the calls above + STS account check + list_queues
    assert sum(wire.sent.values()) == calls + wire.faulted  # one retry layer: no multiplication
    attempts = [int(re.search(r"attempt (\d+)", r.getMessage()).group(1)) for r in retries]  # type: ignore[union-attr]
    assert max(attempts) < sandbox_cfg.aws.retry.max_attempts


def test_throttling_forever_gives_up_after_max_attempts(sandbox_cfg: Any) -> None:
    sandbox_cfg = fast_retries(sandbox_cfg)
    aws = connect(sandbox_cfg)
    wire = WireCounter(aws.session, fault=(400, THROTTLE), rate=1.0, only="ListQueues")
    with pytest.raises(TransientAwsError) as err:
        aws.client("sqs", sandbox_cfg.regions.primary).list_queues()
    assert err.value.code == "Throttling"
    assert wire.sent["ListQueues"] == sandbox_cfg.aws.retry.max_attempts


def test_access_denied_fails_on_first_attempt_with_code(sandbox_cfg: Any) -> None:
    aws = connect(sandbox_cfg)
    wire = WireCounter(aws.session, fault=(403, DENIED), rate=1.0, only="DescribeVpcs")
    with pytest.raises(PermanentAwsError, match="AccessDenied") as err:
        aws.client("ec2", sandbox_cfg.regions.primary).describe_vpcs()
    assert err.value.code == "AccessDenied" and wire.sent["DescribeVpcs"] == 1


def test_validation_error_fails_on_first_attempt(sandbox_cfg: Any) -> None:
    aws = connect(sandbox_cfg)
    wire = WireCounter(aws.session)
    with pytest.raises(PermanentAwsError) as err:
        aws.client("ec2", sandbox_cfg.regions.primary).create_vpc(CidrBlock="not-a-cidr")
    assert err.value.code.startswith("Invalid") and wire.sent["CreateVpc"] == 1


def test_wrong_account_is_refused_with_zero_mutating_calls(sandbox_cfg: Any) -> None:
    wrong = sandbox_cfg.model_copy(update={"account_id": "999999999999"})
    aws = connect(wrong)
    wire = WireCounter(aws.session)
    with pytest.raises(AccountMismatch, match="999999999999"):
        aws.client("sqs", wrong.regions.primary).create_queue(QueueName="never")
    assert sum(n for op, n in wire.sent.items() if is_mutating(op)) == 0
    assert wire.sent["GetCallerIdentity"] == 1
    right = connect(sandbox_cfg).client("sqs", sandbox_cfg.regions.primary)
    assert "QueueUrls" not in right.list_queues()  # nothing was created


def test_a_slow_account_check_does_not_hold_back_other_clients(sandbox_cfg: Any) -> None:
    """The account check's STS call (seconds, against a region going dark) must not keep
    other steps from making their clients and calling AWS meanwhile."""
    aws = Aws(sandbox_cfg)  # its own: the shared one may have checked the account already
    in_sts, let_go = threading.Event(), threading.Event()

    def hold_sts(**kwargs: Any) -> None:
        in_sts.set()
        let_go.wait(30)

    aws.session.events.register("before-send.sts.GetCallerIdentity", hold_sts)
    checked: list[str] = []
    checker = threading.Thread(target=lambda: checked.append(aws.verify_account()))
    checker.start()
    try:
        assert in_sts.wait(10), "the account check never called STS"
        read = threading.Thread(
            target=lambda: aws.client("s3", sandbox_cfg.regions.dr).list_buckets()
        )
        read.start()
        read.join(10)
        assert not read.is_alive(), "a new client waited for the account check"
        assert not checked  # the check is still out
    finally:
        let_go.set()
        checker.join(10)
    assert checked == [sandbox_cfg.account_id]


def test_wait_for_deadline_and_early_failure() -> None:
    seen = itertools.count()
    with pytest.raises(DeadlineExceeded, match="counter reaches a million"):
        wait_for(
            lambda: next(seen),
            until=lambda v: v >= 10**6,
            what="counter reaches a million",
            timeout_s=0.3,
            interval_s=0.01,
        )
    states = iter(["IN_PROGRESS", "FAILED"])
    with pytest.raises(StepFailed, match="rollout: went FAILED"):
        wait_for(
            lambda: next(states),
            until=lambda s: s == "COMPLETED",
            failed=lambda s: "went FAILED" if s == "FAILED" else None,
            what="rollout",
            timeout_s=5,
            interval_s=0.01,
        )
    assert (
        wait_for(lambda: "COMPLETED", until=lambda s: s == "COMPLETED", what="x", timeout_s=1)
        == "COMPLETED"
    )


def test_sandbox_throttling_30_percent_every_call_lands_once(
    sandbox: Any, sandbox_cfg: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The same under the sandbox's own fault injection, counted on the server side."""
    sandbox.control.set_faults({"kind": "throttle", "rate": 0.3}, seed=11)
    cfg = fast_retries(sandbox_cfg)
    ec2 = connect(cfg).client("ec2", cfg.regions.primary)
    with caplog.at_level(logging.WARNING, logger="tierbook"):
        vpcs = [ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")["Vpc"]["VpcId"] for i in range(15)]
        for vpc in vpcs:
            ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": vpc}])
    sandbox.control.clear_faults()
    stats = sandbox.control.stats()
    injected = sum(stats["faults"].values())
    retries = [r for r in caplog.records if "retrying after" in r.getMessage()]
    assert injected > 3 and len(retries) == injected
    created = [v for v in ec2.describe_vpcs()["Vpcs"] if v["VpcId"] in vpcs]
    assert len(created) == 15 and all(v.get("Tags") for v in created)  # nothing done twice or lost


def test_sessions_share_one_loader_and_each_reaches_its_own_account(sandbox_cfg: Any) -> None:
    """Another environment's session reuses the service models already parsed (one loader per
    process), and boto3's data directory is listed once however many sessions wrap it; the
    clients still answer for their own session's account and region."""
    other = sandbox_cfg.model_copy(update={"app": "other"})
    first, second = connect(sandbox_cfg), connect(other)
    assert first.session is not second.session
    loaders = {id(a.session._session.get_component("data_loader")) for a in (first, second)}
    assert len(loaders) == 1
    paths = first.session._session.get_component("data_loader").search_paths
    assert len(paths) == len(set(paths))
    for aws in (first, second):
        ec2 = aws.client("ec2", sandbox_cfg.regions.dr)
        assert ec2.meta.region_name == sandbox_cfg.regions.dr
        assert aws.client("ec2", sandbox_cfg.regions.dr) is ec2
        ec2.describe_vpcs()
        assert aws.caller_account() == sandbox_cfg.account_id
