"""Redrive end to end against the session's moto server: state asserted on the queues."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from configs.errors import Refused, StepFailed
from flows.redrive import redrive
from sandbox.testing import SandboxQueues, fifo_messages, sent_shape, shape, standard_messages

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "sandbox.yaml")
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]


def run(queue: str, **params):  # type: ignore[no-untyped-def]
    return redrive(config=CONFIG, queue=queue, visibility_timeout_s=30, **params)


@pytest.mark.slow
def test_mixed_messages_return_whole_and_the_dlqs_end_empty(queues: SandboxQueues) -> None:
    orders, payments = queues.pairs["orders"], queues.pairs["payments"]
    # Enough for many batches per worker and several per FIFO group; moto's SQS is slow
    # with thousands (the LocalStack tests and benchmarks/redrive.py take the large counts).
    std = standard_messages(240)
    fifo = fifo_messages(120, groups=6)
    queues.fill(orders.dlq, std)
    queues.fill(payments.dlq, fifo)

    first = run("orders", workers=4)
    # One worker: moto's receive takes no lock, so two concurrent receives can both take
    # messages of one group (SQS never does); the engine relies on SQS for group order.
    second = run("payments", workers=1)

    assert first["metrics"]["moved"] == 240 and second["metrics"]["moved"] == 120
    assert queues.count(orders.dlq) == 0 and queues.count(payments.dlq) == 0
    back = queues.drain(orders.source)
    assert sorted(map(shape, back)) == sorted(map(sent_shape, std))
    back_fifo = queues.drain(payments.source)
    assert sorted(map(shape, back_fifo)) == sorted(map(sent_shape, fifo))
    # Within each group, the order survives.
    seqs: dict[str, list[int]] = defaultdict(list)
    for m in back_fifo:
        seqs[m["Attributes"]["MessageGroupId"]].append(json.loads(m["Body"])["seq"])
    assert all(s == sorted(s) for s in seqs.values()) and len(seqs) == 6


def test_a_filter_moves_exactly_the_matching_subset(queues: SandboxQueues) -> None:
    orders = queues.pairs["orders"]
    msgs = standard_messages(90)
    queues.fill(orders.dlq, msgs)

    report = run("orders", filters=["body.order.tier=gold", "attr.kind=refund"])

    wanted = [
        m
        for m in msgs
        if m["MessageBody"].startswith("{")
        and json.loads(m["MessageBody"])["order"]["tier"] == "gold"
        and m["MessageAttributes"]["kind"]["StringValue"] == "refund"
    ]
    assert report["metrics"]["moved"] == len(wanted) > 0
    assert report["metrics"]["filtered_out"] == 90 - len(wanted)
    assert sorted(m["Body"] for m in queues.drain(orders.source)) == sorted(
        m["MessageBody"] for m in wanted
    )
    # The rest is back in the DLQ and visible at once, not after the visibility timeout.
    assert queues.visible(orders.dlq) == 90 - len(wanted)


def test_a_dry_run_changes_nothing(queues: SandboxQueues) -> None:
    orders = queues.pairs["orders"]
    queues.fill(orders.dlq, standard_messages(40))

    report = run("orders", dry_run=True, filters=["attr.kind=charge"])

    assert report["outcome"] == "succeeded"
    assert report["metrics"]["would_move"] == 20 and report["metrics"]["moved"] == 0
    assert queues.count(orders.source) == 0
    assert queues.visible(orders.dlq) == 40  # all visible again at once
    assert any(n.startswith("would move") for n in report["notes"])


def test_the_archive_holds_one_line_per_moved_message(
    queues: SandboxQueues, clean_aws: str
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=clean_aws,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    s3.create_bucket(Bucket="dlq-archive")
    orders = queues.pairs["orders"]
    msgs = standard_messages(55)
    queues.fill(orders.dlq, msgs)

    report = run("orders", archive="s3://dlq-archive/orders", filters=["attr.kind=refund"])

    lines = []
    for obj in s3.list_objects_v2(Bucket="dlq-archive", Prefix="orders/").get("Contents", []):
        body = s3.get_object(Bucket="dlq-archive", Key=obj["Key"])["Body"].read().decode()
        lines += [json.loads(line) for line in body.splitlines()]
    moved = report["metrics"]["moved"]
    assert moved == report["metrics"]["archived"] == len(lines) == 28
    assert sorted(rec["body"] for rec in lines) == sorted(
        m["Body"] for m in queues.drain(orders.source)
    )
    assert len({rec["message_id"] for rec in lines}) == moved


def test_a_queue_that_is_no_dlq_is_refused_and_nothing_changes(queues: SandboxQueues) -> None:
    orders = queues.pairs["orders"]
    queues.fill(orders.source, standard_messages(5))

    with pytest.raises(Refused, match="not a dead-letter queue"):
        run("shop-sandbox-orders")
    assert queues.count(orders.source) == 5


def test_fifo_into_standard_is_refused(queues: SandboxQueues) -> None:
    payments = queues.pairs["payments"]
    queues.fill(payments.dlq, fifo_messages(4))
    with pytest.raises(Refused, match="FIFO"):
        run("payments", to="shop-sandbox-orders")
    assert queues.count(payments.dlq) == 4


def test_to_moves_into_another_queue_and_max_caps_the_count(queues: SandboxQueues) -> None:
    orders = queues.pairs["orders"]
    other = queues.sqs.create_queue(QueueName="replay")["QueueUrl"]
    queues.fill(orders.dlq, standard_messages(35))

    report = run("orders", to=other, max_messages=12, workers=3)

    assert report["metrics"]["moved"] == 12
    assert queues.count(other) == 12 and queues.count(orders.dlq) == 23
    assert queues.count(orders.source) == 0


def test_protected_environment_needs_approval_but_not_for_a_dry_run(
    queues: SandboxQueues, tmp_path: Path
) -> None:
    import yaml

    data = yaml.safe_load(Path(CONFIG).read_text())
    data["protected"] = True
    cfg = tmp_path / "protected.yaml"
    cfg.write_text(yaml.safe_dump(data))
    orders = queues.pairs["orders"]
    queues.fill(orders.dlq, standard_messages(6))

    assert redrive(config=str(cfg), queue="orders", dry_run=True)["metrics"]["would_move"] == 6
    with pytest.raises(Refused, match="protected"):
        redrive(config=str(cfg), queue="orders")
    assert queues.visible(orders.dlq) == 6
    assert redrive(config=str(cfg), queue="orders", approved=True)["metrics"]["moved"] == 6


def test_failed_entries_are_retried_then_left_in_the_dlq_and_reported(
    queues: SandboxQueues, sandbox_cfg
) -> None:
    from tasks.core.aws import connect

    orders = queues.pairs["orders"]
    msgs = standard_messages(40)
    msgs[7]["MessageBody"] = "poison-7"
    msgs[23]["MessageBody"] = "poison-23"
    msgs[31]["MessageBody"] = "flaky-31"
    queues.fill(orders.dlq, msgs)
    flaky_seen: list[str] = []

    def drop(params, context, **_):  # type: ignore[no-untyped-def]
        """Take the failing entries out of the request; an all-failing batch is not sent."""
        kept, dropped = [], []
        for e in params["Entries"]:
            first_flaky = e["MessageBody"].startswith("flaky") and not flaky_seen
            if e["MessageBody"].startswith("poison") or first_flaky:
                dropped.append(e["Id"])
                flaky_seen.extend([e["Id"]] if first_flaky else [])
            else:
                kept.append(e)
        context["injected"] = dropped
        context["short_circuit"] = not kept
        if kept:
            params["Entries"] = kept

    def skip(context, **_):  # type: ignore[no-untyped-def]
        if context.get("short_circuit"):
            return AWSResponse("http://sandbox", 200, HTTPHeaders(), None), {"Successful": []}
        return None

    def fail(parsed, context, **_):  # type: ignore[no-untyped-def]
        for entry_id in context.get("injected", []):
            parsed.setdefault("Failed", []).append(
                {
                    "Id": entry_id,
                    "SenderFault": False,
                    "Code": "InternalError",
                    "Message": "injected",
                }
            )

    hooks: list[tuple[str, Callable[..., Any]]] = [
        ("provide-client-params.sqs.SendMessageBatch", drop),
        ("before-call.sqs.SendMessageBatch", skip),
        ("after-call.sqs.SendMessageBatch", fail),
    ]
    events = connect(sandbox_cfg).session.events
    for name, hook in hooks:
        events.register(name, hook)
    try:
        with pytest.raises(StepFailed, match="2 message\\(s\\) could not be moved") as err:
            run("orders")
    finally:
        for name, hook in hooks:
            events.unregister(name, hook)

    report = err.value.timeline  # type: ignore[attr-defined]
    assert report.metrics["moved"] == 38 and report.metrics["failed"] == 2
    assert sorted(m["Body"] for m in queues.drain(orders.dlq)) == ["poison-23", "poison-7"]
    assert "flaky-31" in {m["Body"] for m in queues.drain(orders.source)}
    assert any("InternalError" in n for n in report.notes)
