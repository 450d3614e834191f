"""Queues for redrive tests and benchmarks: the sandbox config's queues and DLQs made with plain
boto3, filled, drained and counted; messages of every shape a redrive must carry over."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from configs.models import Config
from configs.names import names_for


@dataclass
class Pair:
    source: str
    dlq: str
    fifo: bool


@dataclass
class SandboxQueues:
    sqs: Any
    pairs: dict[str, Pair]

    def url(self, name: str) -> str:
        return str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def fill(self, url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            entries = [{"Id": str(i), **m} for i, m in enumerate(messages[start : start + 10])]
            answer = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
            assert not answer.get("Failed"), answer["Failed"]

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Every message in ``url``, removed, in receive order."""
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=60,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                return out
            out.extend(got)
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )

    def count(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def visible(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])


def dlq_pair(sqs: Any, stem: str, *, max_receive: int = 5) -> tuple[str, str]:
    """A queue ``stem`` whose redrive policy names a new DLQ ``stem-dlq``: (DLQ URL, its URL)."""
    dlq = sqs.create_queue(QueueName=f"{stem}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    policy = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": max_receive})
    src = sqs.create_queue(QueueName=stem, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    return dlq, src


def make_queues(cfg: Config, endpoint: str, *, max_receive: int | None = None) -> SandboxQueues:
    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=cfg.regions.primary,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    names = names_for(cfg, "primary")
    pairs = {}
    for q in cfg.queues:
        fifo_attrs: Any = {"FifoQueue": "true"} if q.fifo else {}
        dlq = sqs.create_queue(QueueName=names.dlq(q.name, fifo=q.fifo), Attributes=fifo_attrs)
        arn = sqs.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])
        policy = {
            "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
            "maxReceiveCount": max_receive or q.max_receive_count,
        }
        src = sqs.create_queue(
            QueueName=names.queue(q.name, fifo=q.fifo),
            Attributes={**fifo_attrs, "RedrivePolicy": json.dumps(policy)},
        )
        pairs[q.name] = Pair(src["QueueUrl"], dlq["QueueUrl"], q.fifo)
    return SandboxQueues(sqs, pairs)


def standard_messages(n: int, *, start: int = 0) -> list[dict[str, Any]]:
    """Mixed messages: JSON bodies with a tier, string and number attributes, plain text."""
    out = []
    for i in range(start, start + n):
        tier = ("gold", "silver", "bronze")[i % 3]
        if i % 4 == 3:
            body = f"plain text message {i}"
        else:
            body = json.dumps({"order": {"id": i, "tier": tier}, "amount": i % 50})
        attrs: dict[str, Any] = {
            "kind": {"DataType": "String", "StringValue": ("refund", "charge")[i % 2]}
        }
        if i % 5 == 0:
            attrs["attempt"] = {"DataType": "Number", "StringValue": str(i % 7)}
        out.append({"MessageBody": body, "MessageAttributes": attrs})
    return out


def fifo_messages(n: int, groups: int = 6) -> list[dict[str, Any]]:
    return [
        {
            "MessageBody": json.dumps({"payment": i, "seq": i // groups}),
            "MessageGroupId": f"customer-{i % groups}",
            "MessageDeduplicationId": f"pay-{i}",
            "MessageAttributes": {"currency": {"DataType": "String", "StringValue": "EUR"}},
        }
        for i in range(n)
    ]


Shape = Callable[[dict[str, Any]], tuple[Any, ...]]


def shape(m: dict[str, Any]) -> tuple[Any, ...]:
    """What must survive a redrive: body, attributes, group."""
    attrs = {
        k: (v["DataType"], v.get("StringValue"))
        for k, v in (m.get("MessageAttributes") or {}).items()
    }
    return (
        m["Body"],
        json.dumps(attrs, sort_keys=True),
        (m.get("Attributes") or {}).get("MessageGroupId"),
    )


def sent_shape(m: dict[str, Any]) -> tuple[Any, ...]:
    attrs = {
        k: (v["DataType"], v.get("StringValue")) for k, v in m.get("MessageAttributes", {}).items()
    }
    return (m["MessageBody"], json.dumps(attrs, sort_keys=True), m.get("MessageGroupId"))
