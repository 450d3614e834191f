"""The batch mover: receive from the DLQ, filter, send, archive, delete — in that order.

Nothing is lost whenever the process dies: a message leaves the DLQ only after the
destination confirmed it (``SendMessageBatch`` Successful) and, with ``--archive``, after its
line is in S3. A crash between send and delete leaves a duplicate, bounded by the batches in
flight (one per worker); the FIFO deduplication id (see :mod:`tasks.redrive_rules`) makes SQS
drop that duplicate when the re-run comes within 5 minutes.

Messages the run does not move (filtered out, dry run, refused by the destination) stay
invisible while the run lasts, so the scan ends, and are made visible again at its end (also
on Ctrl-C). A crash returns them after the visibility timeout.
"""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from configs.models import Config
from tasks.core.aws import connect
from tasks.runbooks.redrive.routes import QueueRef, Route
from tasks.runbooks.redrive.rules import (
    MAX_BATCH_ENTRIES,
    Budget,
    Filter,
    RateLimiter,
    batches,
    matches_all,
    now_ms,
    send_entry,
    sort_batch_answer,
)

DEFAULT_VISIBILITY_S = 300


DEFAULT_WORKERS = 4


RECEIVE_WAIT_S = 1  # long poll: an empty answer then means empty, not "this server had none"


EMPTY_ROUNDS = 2  # receives with nothing new before a worker decides the DLQ is drained


ENTRY_ATTEMPTS = 3  # tries per batch entry that failed on the server's side


ENTRY_BACKOFF_S = 0.2


SAMPLES = 20


FAILURES_KEPT = 100


PROGRESS_EVERY_S = 0.25


Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class EngineSettings:
    filters: tuple[Filter, ...] = ()
    dry_run: bool = False
    max_messages: int | None = None
    rate: float | None = None
    workers: int = DEFAULT_WORKERS
    visibility_s: int = DEFAULT_VISIBILITY_S
    archive: tuple[str, str] | None = None  # (bucket, prefix)


@dataclass
class Tally:
    """What the run did, per message. Thread-safe through :meth:`add`."""

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

    def counts(self) -> dict[str, Any]:
        """The numbers only: cheap enough to hand to a progress bar after every batch."""
        with self._lock:
            return {k: v for k, v in vars(self).items() if isinstance(v, int | bool)}

    def report(self) -> dict[str, Any]:
        with self._lock:
            data = {k: v for k, v in vars(self).items() if k[0] != "_" and k != "sent_ids"}
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


class Engine:
    """Moves (or, dry, inspects) the messages of one DLQ with parallel workers."""

    def __init__(
        self,
        cfg: Config,
        route: Route,
        settings: EngineSettings,
        *,
        on_progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.cfg = cfg
        self.route = route
        self.settings = settings
        self.aws = connect(cfg)
        self.sqs = self.aws.client("sqs", route.dlq.region)
        self.on_progress = on_progress or (lambda _snapshot: None)
        self.stop = stop or threading.Event()
        self.limiter = RateLimiter(settings.rate)
        self.budget = Budget(settings.max_messages)
        self.tally = Tally()
        self.archive = (
            Archive(cfg, route.dlq.region, *settings.archive) if settings.archive else None
        )
        # Every message this run has seen and not finished: its newest receipt handle (SQS
        # deletes only with the newest). Held ones are released at the end; moved ids stay
        # known so that a second delivery of one is deleted instead of sent again.
        self._handles: dict[str, str] = {}
        self._held: set[str] = set()
        self._moved: set[str] = set()
        self._lock = threading.Lock()

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> Tally:
        restore = self._trap_interrupt()
        try:
            with ThreadPoolExecutor(self.settings.workers, thread_name_prefix="redrive") as pool:
                futures = [pool.submit(self._worker, i) for i in range(self.settings.workers)]
                try:
                    self._watch(futures)
                except KeyboardInterrupt:
                    self._interrupted()
                    wait(futures)
        finally:
            restore()
            self._release_held()
        for f in futures:
            if f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
        return self.tally

    def _watch(self, futures: list[Future[None]]) -> None:
        """Report progress from the calling thread until the workers end; one failing
        worker stops the others after their current batch."""
        while True:
            done, pending = wait(futures, timeout=PROGRESS_EVERY_S, return_when=FIRST_EXCEPTION)
            self.on_progress(self.tally.counts())
            if any(f.exception() for f in done):
                self.stop.set()
            if not pending:
                return

    def _interrupted(self) -> None:
        self.tally.interrupted = True
        self.stop.set()

    def _trap_interrupt(self) -> Callable[[], None]:
        """First Ctrl-C: finish the batches in flight, release the rest, report. Second: abort."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: object) -> None:
            if self.stop.is_set():
                raise KeyboardInterrupt
            self._interrupted()

        previous = signal.signal(signal.SIGINT, handler)

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        return restore

    # -- one worker ---------------------------------------------------------------------------
    def _worker(self, index: int) -> None:
        empty, seq = 0, 0
        while not self.stop.is_set():
            want = self.budget.reserve(MAX_BATCH_ENTRIES)
            if want == 0:
                return
            fresh = self._fresh(self._receive(want))
            if not fresh:
                self.budget.give_back(want)
                empty += 1
                if empty >= EMPTY_ROUNDS:
                    return
                continue
            empty = 0
            stamp = now_ms()
            moving = [m for m in fresh if matches_all(self.settings.filters, m, stamp)]
            chosen = {m["MessageId"] for m in moving}
            staying = [m for m in fresh if m["MessageId"] not in chosen]
            self.budget.give_back(want - len(moving))
            self._hold(staying)
            self.tally.add(received=len(fresh), filtered_out=len(staying))
            if self.settings.dry_run:
                self._inspect(moving)
            else:
                seq = self._move(moving, index, seq)

    def _receive(self, n: int) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(
            QueueUrl=self.route.dlq.url,
            MaxNumberOfMessages=n,
            VisibilityTimeout=self.settings.visibility_s,
            WaitTimeSeconds=RECEIVE_WAIT_S,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages") or [])

    def _fresh(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages not seen before in this run. SQS may deliver one twice (at-least-once, or
        a held one whose visibility ran out): a copy of a message in hand only updates its
        receipt handle, and a copy of one already moved is deleted, never sent again."""
        fresh, again = [], []
        with self._lock:
            for m in messages:
                mid, handle = m["MessageId"], m["ReceiptHandle"]
                if mid in self._moved:
                    again.append(handle)
                elif mid in self._handles:
                    self._handles[mid] = handle
                else:
                    self._handles[mid] = handle
                    fresh.append(m)
        if again:
            self._delete_copies(again)
        return fresh

    def _delete_copies(self, handles: list[str]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
        answer = self.sqs.delete_message_batch(QueueUrl=self.route.dlq.url, Entries=entries)
        self.tally.add(copies_deleted=len(answer.get("Successful") or []))

    def _hold(self, messages: list[dict[str, Any]]) -> None:
        with self._lock:
            self._held.update(m["MessageId"] for m in messages)

    def _inspect(self, messages: list[dict[str, Any]]) -> None:
        self._hold(messages)
        self.tally.add(would_move=len(messages))
        with self.tally._lock:
            for m in messages[: max(0, SAMPLES - len(self.tally.samples))]:
                dest = self.route.destination_for(m)
                self.tally.samples.append(
                    {
                        "message_id": m["MessageId"],
                        "to": dest.name if dest else "(no destination)",
                        "body": m["Body"][:200],
                    }
                )

    # -- moving -------------------------------------------------------------------------------
    def _move(self, messages: list[dict[str, Any]], worker: int, seq: int) -> int:
        groups: dict[str, tuple[QueueRef, list[dict[str, Any]]]] = {}
        for m in messages:
            dest = self.route.destination_for(m)
            if dest is None:
                self._hold([m])
                self.tally.fail(m["MessageId"], "no destination: the DLQ serves several queues")
                continue
            groups.setdefault(dest.arn, (dest, []))[1].append(m)
        for dest, group in groups.values():
            stamp = now_ms()
            by_id: dict[str, dict[str, Any]] = {}
            entries = []
            for i, m in enumerate(group):
                entry, rewritten = send_entry(m, str(i), fifo=dest.fifo, now_ms=stamp)
                entries.append(entry)
                by_id[str(i)] = m
                self.tally.add(dedup_rewritten=int(rewritten))
            for batch in batches(entries):
                self.limiter.wait(len(batch), self.stop.wait, time.monotonic)
                seq += 1
                self._move_batch(dest, batch, by_id, f"w{worker:02d}-{seq:07d}")
        return seq

    def _move_batch(
        self,
        dest: QueueRef,
        batch: list[dict[str, Any]],
        by_id: dict[str, dict[str, Any]],
        key: str,
    ) -> None:
        client = self.aws.client("sqs", dest.region)
        sent, refused = self._with_entry_retries(
            lambda entries: client.send_message_batch(QueueUrl=dest.url, Entries=entries), batch
        )
        for entry_id, reason in refused.items():
            self._hold([by_id[entry_id]])
            self.tally.fail(by_id[entry_id]["MessageId"], reason)
        if not sent:
            return
        if self.archive is not None:
            records = [archive_record(by_id[i], self.route.dlq, dest, sent[i]) for i in sent]
            self.archive.put(key, records)
            self.tally.add(archived=len(records))
        with self.tally._lock:
            self.tally.sent_ids.extend(sent.values())
        self.tally.add(moved=len(sent))
        with self._lock:
            self._moved.update(by_id[i]["MessageId"] for i in sent)
            deletes = [
                {"Id": i, "ReceiptHandle": self._handles.pop(by_id[i]["MessageId"])} for i in sent
            ]
        _, undeleted = self._with_entry_retries(
            lambda entries: self.sqs.delete_message_batch(
                QueueUrl=self.route.dlq.url, Entries=entries
            ),
            deletes,
        )
        # Sent but still in the DLQ: a duplicate to report, never a loss.
        self.tally.add(delete_failed=len(undeleted))

    def _with_entry_retries(
        self, call: Callable[[list[dict[str, Any]]], Any], entries: list[dict[str, Any]]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Send a batch; resend the entries that failed on the server's side a few times.
        Returns (done: entry id → MessageId, refused: entry id → reason)."""
        done: dict[str, str] = {}
        refused: dict[str, str] = {}
        pending = entries
        for attempt in range(ENTRY_ATTEMPTS):
            outcome = sort_batch_answer(call(pending), [e["Id"] for e in pending])
            done.update(outcome.done)
            refused.update(outcome.refused)
            pending = [e for e in pending if e["Id"] in outcome.retry]
            if not pending:
                break
            if attempt + 1 == ENTRY_ATTEMPTS:
                for e in pending:
                    refused[e["Id"]] = f"{outcome.retry[e['Id']]} (after {ENTRY_ATTEMPTS} attempts)"
            else:
                self.stop.wait(ENTRY_BACKOFF_S * (2**attempt))
        return done, refused

    # -- the end ------------------------------------------------------------------------------
    def _release_held(self) -> None:
        """Make every message this run kept but did not move visible again at once."""
        handles = [self._handles[mid] for mid in self._held if mid in self._handles]
        for start in range(0, len(handles), MAX_BATCH_ENTRIES):
            chunk = handles[start : start + MAX_BATCH_ENTRIES]
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(chunk)
            ]
            try:
                answer = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.route.dlq.url, Entries=entries
                )
            except Exception:  # they come back by themselves when the timeout runs out
                continue
            self.tally.add(released=len(answer.get("Successful") or []))
        self._held.clear()


def scan_message_ids(cfg: Config, queue: QueueRef, *, visibility_s: int = 30) -> set[str]:
    """The ids of every message visible in ``queue`` now; each is made visible again at once."""
    sqs = connect(cfg).client("sqs", queue.region)
    handles: dict[str, str] = {}
    empty = 0
    try:
        while empty < EMPTY_ROUNDS:
            answer = sqs.receive_message(
                QueueUrl=queue.url,
                MaxNumberOfMessages=MAX_BATCH_ENTRIES,
                VisibilityTimeout=visibility_s,
                WaitTimeSeconds=RECEIVE_WAIT_S,
            )
            new = [m for m in answer.get("Messages") or [] if m["MessageId"] not in handles]
            empty = 0 if new else empty + 1
            handles.update({m["MessageId"]: m["ReceiptHandle"] for m in new})
    finally:
        items = list(handles.values())
        for start in range(0, len(items), MAX_BATCH_ENTRIES):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(items[start : start + MAX_BATCH_ENTRIES])
            ]
            sqs.change_message_visibility_batch(QueueUrl=queue.url, Entries=entries)
    return set(handles)
