"""The engine against exact SQS answers (Stubber): duplicate deliveries never go out twice."""

from __future__ import annotations

from pathlib import Path

from botocore.stub import ANY, Stubber

from configs import load_config
from tasks.core.aws import connect, forget_connections
from tasks.runbooks.redrive.engine import Engine, EngineSettings
from tasks.runbooks.redrive.routes import QueueRef, Route

ROOT = Path(__file__).resolve().parents[2]
DLQ = QueueRef(
    "http://x/123456789012/o-dlq",
    "arn:aws:sqs:us-east-1:123456789012:o-dlq",
    "o-dlq",
    "us-east-1",
    False,
)
SRC = QueueRef(
    "http://x/123456789012/o", "arn:aws:sqs:us-east-1:123456789012:o", "o", "us-east-1", False
)


def msg(handle: str) -> dict:
    return {
        "MessageId": "m-1",
        "ReceiptHandle": handle,
        "Body": "hello",
        "MD5OfBody": "x",
        "Attributes": {"SentTimestamp": "1", "ApproximateReceiveCount": "2"},
    }


def test_a_second_delivery_of_a_moved_message_is_deleted_not_sent() -> None:
    forget_connections()
    cfg = load_config(ROOT / "configs" / "sandbox.yaml")
    aws = connect(cfg)
    aws._verified_account = cfg.account_id
    receive = {
        "QueueUrl": DLQ.url,
        "MaxNumberOfMessages": 10,
        "VisibilityTimeout": 300,
        "WaitTimeSeconds": 1,
        "MessageSystemAttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
    }
    with Stubber(aws.client("sqs", "us-east-1")) as stub:
        stub.add_response("receive_message", {"Messages": [msg("h1")]}, receive)
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": "0", "MessageId": "n-1", "MD5OfMessageBody": "x"}],
                "Failed": [],
            },
            {"QueueUrl": SRC.url, "Entries": ANY},
        )
        stub.add_response(
            "delete_message_batch",
            {"Successful": [{"Id": "0"}], "Failed": []},
            {"QueueUrl": DLQ.url, "Entries": [{"Id": "0", "ReceiptHandle": "h1"}]},
        )
        # SQS delivers the same message again (at-least-once): delete with the new handle.
        stub.add_response("receive_message", {"Messages": [msg("h2")]}, receive)
        stub.add_response(
            "delete_message_batch",
            {"Successful": [{"Id": "0"}], "Failed": []},
            {"QueueUrl": DLQ.url, "Entries": [{"Id": "0", "ReceiptHandle": "h2"}]},
        )
        stub.add_response("receive_message", {}, receive)  # second round with nothing new

        tally = Engine(cfg, Route(DLQ, (SRC,)), EngineSettings(workers=1)).run()
        stub.assert_no_pending_responses()
    forget_connections()
    assert (tally.moved, tally.copies_deleted, tally.received) == (1, 1, 1)
