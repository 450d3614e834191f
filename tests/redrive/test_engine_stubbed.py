"""The engine against exact SQS answers: duplicate deliveries never go out twice.

The pipeline's receives, sends and deletes overlap, so their order is not fixed: a fake SQS
client answers each call by what has happened so far, and records every call.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from configs import load_config
from tasks.core.aws import forget_connections
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


class SecondDelivery:
    """Delivers m-1, and once it was sent, delivers it again (SQS is at-least-once)."""

    def __init__(self) -> None:
        self.sent: list[list[dict[str, Any]]] = []
        self.deleted: list[str] = []
        self.receives = 0
        self._sent = threading.Event()
        self._lock = threading.Lock()

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["WaitTimeSeconds"] >= 1  # long poll: an empty answer means empty
        with self._lock:
            self.receives += 1
            n = self.receives
        if n == 1:
            return {"Messages": [msg("h1")]}
        if n == 2:
            self._sent.wait(5)
            return {"Messages": [msg("h2")]}
        return {}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        assert QueueUrl == SRC.url
        self.sent.append(Entries)
        self._sent.set()
        ok = [
            {"Id": e["Id"], "MessageId": f"n-{e['Id']}", "MD5OfMessageBody": "x"} for e in Entries
        ]
        return {"Successful": ok, "Failed": []}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        assert QueueUrl == DLQ.url
        with self._lock:
            self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}


def test_a_second_delivery_of_a_moved_message_is_deleted_not_sent() -> None:
    forget_connections()
    cfg = load_config(ROOT / "configs" / "sandbox.yaml")
    fake = SecondDelivery()
    engine = Engine(cfg, Route(DLQ, (SRC,)), EngineSettings(workers=1))
    engine.sqs = fake
    engine.aws = type("Clients", (), {"client": lambda self, *a, **k: fake})()

    tally = engine.run()

    forget_connections()
    assert len(fake.sent) == 1 and len(fake.sent[0]) == 1
    assert sorted(fake.deleted) == ["h1", "h2"]  # the copy with its own, newest handle
    assert (tally.moved, tally.copies_deleted, tally.received) == (1, 1, 1)
