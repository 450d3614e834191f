"""Native mode against a real implementation of message move tasks: LocalStack's SQS.

Optional: runs when ``TIERBOOK_LOCALSTACK_URL`` names a LocalStack that answers (see README,
redrive), skipped otherwise.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml

from configs import parse_config
from tasks.core.aws import forget_connections
from tasks.runbooks.redrive.native import start_move_task, wait_for_move_task
from tasks.runbooks.redrive.routes import find_route

LOCALSTACK = os.environ.get("TIERBOOK_LOCALSTACK_URL", "")
ROOT = Path(__file__).resolve().parents[2]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/_localstack/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not LOCALSTACK or not _answers(LOCALSTACK), reason="no LocalStack"),
]


def _depth(sqs: object, url: str) -> str:
    attrs = sqs.get_queue_attributes(  # type: ignore[attr-defined]
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return str(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_native_move_task_empties_the_dlq_into_its_source() -> None:
    forget_connections()
    data = yaml.safe_load((ROOT / "configs" / "sandbox.yaml").read_text())
    data["account_id"] = "000000000000"  # LocalStack's default account
    data["aws"]["endpoint_url"] = LOCALSTACK
    cfg = parse_config(data)
    sqs = boto3.client(
        "sqs",
        endpoint_url=LOCALSTACK,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    stem = f"native-{os.getpid()}"
    dlq = sqs.create_queue(QueueName=f"{stem}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    policy = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": 1})
    src = sqs.create_queue(QueueName=stem, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    for start in range(0, 50, 10):
        sqs.send_message_batch(
            QueueUrl=src,
            Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)],
        )
    # Dead-letter them the way SQS does: receives beyond maxReceiveCount.
    for _ in range(20):
        sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert _depth(sqs, dlq) == "50"
    route = find_route.fn(cfg, f"{stem}-dlq")
    seen: list[dict] = []

    since = int(time.time() * 1000) - 5000
    handle = start_move_task.fn(cfg, route, 100)
    task = wait_for_move_task.fn(
        cfg, route, handle, since_ms=since, interval_s=25, on_progress=seen.append, timeout_s=60
    )

    assert task["Status"] == "COMPLETED" and seen
    assert _depth(sqs, src) == "50" and _depth(sqs, dlq) == "0"
    forget_connections()
