"""What a redrive did (:class:`Tally`) and its copy of what it moved (:class:`Archive`)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from configs.models import Config
from tasks.core.aws import connect
from tasks.runbooks.redrive.routes import QueueRef

SAMPLES = 20


FAILURES_KEPT = 100


@dataclass
class Tally:
    """What the run did, per message. Thread-safe through :meth:`add`.

    ``sent_ids`` (the destination's ids, for the canary) are kept only when the run is capped
    (``--max``, as the canary is): an uncapped run's memory must not grow with the DLQ.
    """

    received: int = 0
    moved: int = 0
    would_move: int = 0
    filtered_out: int = 0
    failed: int = 0
    archived: int = 0
    delete_failed: int = 0
    dedup_rewritten: int = 0
    released: int = 0
    copies_deleted: int = 0
    interrupted: bool = False
    failures: list[dict[str, str]] = field(default_factory=list)
    samples: list[dict[str, str]] = field(default_factory=list)
    sent_ids: list[str] = field(default_factory=list)
    keep_sent_ids: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, n in counts.items():
                setattr(self, key, getattr(self, key) + n)

    def fail(self, message_id: str, reason: str) -> None:
        with self._lock:
            self.failed += 1
            if len(self.failures) < FAILURES_KEPT:
                self.failures.append({"message_id": message_id, "reason": reason})

    def sent(self, destination_ids: list[str]) -> None:
        with self._lock:
            self.moved += len(destination_ids)
            if self.keep_sent_ids:
                self.sent_ids.extend(destination_ids)

    def sample(self, entries: list[dict[str, str]]) -> None:
        with self._lock:
            self.samples.extend(entries[: max(0, SAMPLES - len(self.samples))])

    def counts(self) -> dict[str, Any]:
        """The numbers only: cheap enough to hand to a progress bar after every batch."""
        with self._lock:
            return {k: v for k, v in vars(self).items() if isinstance(v, int | bool)}

    def report(self) -> dict[str, Any]:
        with self._lock:
            data = {
                k: v
                for k, v in vars(self).items()
                if k[0] != "_" and k not in ("sent_ids", "keep_sent_ids")
            }
            return {k: (list(v) if isinstance(v, list) else v) for k, v in data.items()}


class Archive:
    """Every moved message as one JSON line in S3, written before the DLQ copy is deleted."""

    def __init__(self, cfg: Config, region: str, bucket: str, prefix: str) -> None:
        self.s3 = connect(cfg).client("s3", region)
        self.bucket = bucket
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.prefix = "/".join(p for p in (prefix, f"{stamp}-{uuid.uuid4().hex[:8]}") if p)

    def put(self, key: str, records: list[dict[str, Any]]) -> None:
        body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{self.prefix}/{key}.jsonl",
            Body=body.encode(),
            ContentType="application/x-ndjson",
        )


def archive_record(message: dict[str, Any], dlq: QueueRef, dest: QueueRef, new_id: str) -> dict:
    attrs = {}
    for name, attr in (message.get("MessageAttributes") or {}).items():
        value = dict(attr)
        if isinstance(value.get("BinaryValue"), bytes):
            value["BinaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        attrs[name] = {k: v for k, v in value.items() if not k.endswith("ListValues")}
    return {
        "message_id": message["MessageId"],
        "body": message["Body"],
        "message_attributes": attrs,
        "attributes": message.get("Attributes") or {},
        "dlq": dlq.arn,
        "destination": dest.arn,
        "destination_message_id": new_id,
        "moved_at": datetime.now(UTC).isoformat(),
    }
