"""Redrive against LocalStack's SQS: native mode (a real implementation of message move
tasks) and a whole engine-mode redrive through the flow, lock included.

LocalStack's DynamoDB needs a download (DynamoDB Local and a JDK) that an offline machine
cannot make, so the run lock's table is on the session's sandbox: ``aws.service_endpoints``
(``TIERBOOK_AWS_ENDPOINT_URL_DYNAMODB``) points DynamoDB there while SQS stays on LocalStack.

Optional: runs when ``TIERBOOK_LOCALSTACK_URL`` names a LocalStack that answers (see
docs/runbooks/redrive.md), skipped otherwise.
"""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from configs import parse_config
from configs.names import names_for
from flows.redrive import redrive
from sandbox.testing import dlq_pair
from tasks.core.aws import forget_connections
from tasks.core.errors import LockHeld
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


def _config(tmp_path: Path, lock_endpoint: str | None = None) -> Path:
    """The sandbox config on LocalStack (its account), the lock table elsewhere if given."""
    data = yaml.safe_load((ROOT / "configs" / "sandbox.yaml").read_text())
    data["account_id"] = "000000000000"  # LocalStack's default account
    data["aws"]["endpoint_url"] = LOCALSTACK
    if lock_endpoint:
        data["aws"]["service_endpoints"] = {"dynamodb": lock_endpoint}
    path = tmp_path / "localstack.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


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
    dlq, src = dlq_pair(sqs, stem, max_receive=1)
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


@pytest.mark.usefixtures("prefect_harness")
def test_a_locked_engine_redrive_moves_every_message(tmp_path: Path, clean_aws: str) -> None:
    """The whole runbook on LocalStack's SQS: the lock is taken (and released) in the sandbox's
    DynamoDB, 1,200 messages go back whole, the DLQ ends empty."""
    forget_connections()
    config = _config(tmp_path, lock_endpoint=clean_aws)
    sqs = _client("sqs", LOCALSTACK)
    stem = f"locked-{os.getpid()}"
    dlq, src = dlq_pair(sqs, stem, max_receive=1)
    bodies = [f"m{i}" for i in range(1200)]
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=dlq, Entries=entries)

    report = redrive(config=str(config), queue=f"{stem}-dlq", workers=4)

    assert report["metrics"]["moved"] == 1200 and report["metrics"]["failed"] == 0
    assert _depth(sqs, dlq) == "0" and _depth(sqs, src) == "1200"
    got: set[str] = set()
    while len(got) < 1200:
        answer = sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not answer.get("Messages"):
            break
        got |= {m["Body"] for m in answer["Messages"]}
    assert got == set(bodies)
    # The lock was kept in the sandbox's table, and is released.
    cfg = parse_config(yaml.safe_load(config.read_text()))
    ddb = _client("dynamodb", clean_aws)
    items = ddb.scan(TableName=names_for(cfg).lock_table)["Items"]
    assert [i for i in items if i.get("kind", {}).get("S") == "lock"] == []
    forget_connections()


@pytest.mark.usefixtures("prefect_harness")
def test_a_lock_held_in_the_sandbox_refuses_the_redrive(tmp_path: Path, clean_aws: str) -> None:
    forget_connections()
    config = _config(tmp_path, lock_endpoint=clean_aws)
    cfg = parse_config(yaml.safe_load(config.read_text()))
    sqs = _client("sqs", LOCALSTACK)
    stem = f"held-{os.getpid()}"
    dlq, _src = dlq_pair(sqs, stem, max_receive=1)
    sqs.send_message(QueueUrl=dlq, MessageBody="stays")
    ddb = _client("dynamodb", clean_aws)
    table = names_for(cfg).lock_table
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "lock_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "lock_id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(
        TableName=table,
        Item={
            "lock_id": {"S": f"{cfg.stack}/redrive-{stem}-dlq"},
            "kind": {"S": "lock"},
            "owner": {"S": "someone-else"},
            "expires_at": {"N": str(time.time() + 600)},
        },
    )

    with pytest.raises(LockHeld):
        redrive(config=str(config), queue=f"{stem}-dlq")

    assert _depth(sqs, dlq) == "1"
    forget_connections()
