"""Demo helpers: make a DLQ fill up the way it does in production, by consumers that fail.

Used only by the demo against the sandbox: the queues come from provision when it ran,
otherwise a minimal source + DLQ pair with a RedrivePolicy is made here.
"""

from __future__ import annotations

import json

from configs.models import Config, Queue
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.retry import absent, wait_for
from tasks.core.steps import step


def _url(sqs: object, name: str) -> str | None:
    url = absent(
        lambda: sqs.get_queue_url(QueueName=name)["QueueUrl"],  # type: ignore[attr-defined]
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    )
    return None if url is None else str(url)


@step("ensure demo queues for {queue.name}")
def ensure_demo_queues(cfg: Config, queue: Queue) -> tuple[str, str]:
    """(source URL, DLQ URL), creating the pair only when it is missing."""
    names = names_for(cfg, "primary")
    sqs = connect(cfg).client("sqs", cfg.regions.primary)
    fifo = {"FifoQueue": "true"} if queue.fifo else {}
    dlq_name, src_name = (
        names.dlq(queue.name, fifo=queue.fifo),
        names.queue(queue.name, fifo=queue.fifo),
    )
    dlq = _url(sqs, dlq_name) or sqs.create_queue(QueueName=dlq_name, Attributes=fifo)["QueueUrl"]
    src = _url(sqs, src_name)
    if src is None:
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
        policy = {
            "deadLetterTargetArn": arn["QueueArn"],
            "maxReceiveCount": queue.max_receive_count,
        }
        src = sqs.create_queue(
            QueueName=src_name, Attributes={**fifo, "RedrivePolicy": json.dumps(policy)}
        )["QueueUrl"]
    return src, dlq


@step("fill the DLQ: {count} messages a failing consumer cannot process")
def fill_dlq_by_failing(cfg: Config, queue: Queue, count: int) -> int:
    """Send ``count`` orders to the source queue and receive them without ever deleting,
    until SQS dead-letters them after ``max_receive_count`` receives."""
    src, dlq = ensure_demo_queues.fn(cfg, queue)
    sqs = connect(cfg).client("sqs", cfg.regions.primary)
    for start in range(0, count, 10):
        entries = []
        for i in range(start, min(count, start + 10)):
            entry = {
                "Id": str(i - start),
                "MessageBody": json.dumps({"order": {"id": i, "tier": ("gold", "silver")[i % 2]}}),
                "MessageAttributes": {
                    "kind": {"DataType": "String", "StringValue": ("refund", "charge")[i % 2]}
                },
            }
            if queue.fifo:
                entry |= {
                    "MessageGroupId": f"customer-{i % 3}",
                    "MessageDeduplicationId": f"demo-{i}",
                }
            entries.append(entry)
        sqs.send_message_batch(QueueUrl=src, Entries=entries)

    def dlq_depth() -> int:
        sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10, VisibilityTimeout=0)
        attrs = sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    return wait_for(
        dlq_depth,
        until=lambda n: n >= count,
        what=f"{count} messages dead-lettered",
        timeout_s=120,
        interval_s=0.05,
    )
