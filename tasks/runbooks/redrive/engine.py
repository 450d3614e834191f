"""The batch mover: receive from the DLQ, filter, send, archive, delete — as a pipeline.

Three stages run side by side, joined by bounded queues: ``workers`` senders, twice as many
receivers (a standard DLQ; for FIFO as many) and half as many deleters (a delete costs the
server less than a send)::

    receivers ──(one receive's messages)──▶ senders ──(confirmed handles)──▶ deleters
    ReceiveMessage (10, long poll)          SendMessageBatch (+ archive)      DeleteMessageBatch

so the three calls per 10 messages overlap instead of following each other, and the engine
stays near its bound (a third of what ``SendMessageBatch`` alone achieves). Senders and
deleters fill their batches across receives (always 10 while messages are available); the
queues' bounds keep memory flat in the number of messages. The run ends with a long poll that
finds nothing (1 s): receivers run ahead, so that it overlaps the last sends and deletes.

Nothing is lost whenever the process dies: a message leaves the DLQ only after the
destination confirmed it (``SendMessageBatch`` Successful) and, with ``--archive``, after its
line is in S3. A crash between send and delete leaves duplicates, bounded by what the pipeline
holds between those two calls (the delete queue and the batches in flight); the FIFO
deduplication id (see :mod:`tasks.runbooks.redrive.rules`) makes SQS drop them when the
re-run comes within 5 minutes.

FIFO order: SQS hands out no more messages of a group while one of it is in flight, and one
receive's messages go to one sender, which sends them in order, so a group's messages reach
the destination in their order. For the same reason an empty receive proves a FIFO DLQ
drained only when none of this run's messages were in flight.

Messages the run does not move (filtered out, dry run, refused by the destination, not sent
after Ctrl-C) stay invisible while the run lasts, so the scan ends, and are made visible again
at its end. A crash returns them after the visibility timeout.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
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
    slim,
    sort_batch_answer,
)
from tasks.runbooks.redrive.seen import MessageIdSet
from tasks.runbooks.redrive.stages import POLL_S, Stage
from tasks.runbooks.redrive.tally import Archive, Tally, archive_record

DEFAULT_VISIBILITY_S = 300


DEFAULT_WORKERS = 4


RECEIVE_WAIT_S = 1  # long poll: an empty answer then means empty, not "this server had none"


EMPTY_ROUNDS = 2  # receives with only messages seen before, before a receiver stops


ENTRY_ATTEMPTS = 3  # tries per batch entry that failed on the server's side


ENTRY_BACKOFF_S = 0.2


RECEIVERS_PER_WORKER = 2  # receivers run ahead, so the last (empty) long poll overlaps sending


DELETERS_PER_WORKER_DIVISOR = 2  # one deleter per two workers


QUEUED_RECEIVES_PER_WORKER = 32  # receives waiting for a sender, per worker (memory bound)


QUEUED_DELETES_PER_WORKER = 1  # sent batches waiting for a deleter, per worker (duplicates)


LINGER_S = 0.02  # a sender or deleter with a part batch waits this long for more


PROGRESS_EVERY_S = 0.25


Progress = Callable[[dict[str, Any]], None]


Message = dict[str, Any]


def most_duplicates(workers: int) -> int:
    """How many messages a crash can leave in both the DLQ and the destination: the ones sent
    and not yet deleted (a batch per sender, the delete queue, a batch and a part batch per
    deleter)."""
    deleters = max(1, workers // DELETERS_PER_WORKER_DIVISOR)
    return MAX_BATCH_ENTRIES * (workers + QUEUED_DELETES_PER_WORKER * workers + 2 * deleters)


@dataclass(frozen=True)
class EngineSettings:
    filters: tuple[Filter, ...] = ()
    dry_run: bool = False
    max_messages: int | None = None
    rate: float | None = None
    workers: int = DEFAULT_WORKERS
    visibility_s: int = DEFAULT_VISIBILITY_S
    archive: tuple[str, str] | None = None  # (bucket, prefix)


class Engine:
    """Moves (or, dry, inspects) the messages of one DLQ with a pipeline of workers."""

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
        self.tally = Tally(keep_sent_ids=settings.max_messages is not None)
        self.archive = (
            Archive(cfg, route.dlq.region, *settings.archive) if settings.archive else None
        )
        workers = settings.workers
        # A FIFO DLQ hands out nothing of a group in flight, so receiving ahead gains nothing.
        self._receivers = workers if route.dlq.fifo else RECEIVERS_PER_WORKER * workers
        # A delete costs the server less than a send: fewer deleters leave more to receiving.
        self._deleters = max(1, workers // DELETERS_PER_WORKER_DIVISOR)
        # Paced by --rate, receiving ahead gains nothing, and a message could wait out its
        # visibility timeout in the queue.
        ahead = 1 if settings.rate else QUEUED_RECEIVES_PER_WORKER
        self._to_send = Stage(self._receivers, workers, ahead * workers)
        self._to_delete = Stage(workers, self._deleters, QUEUED_DELETES_PER_WORKER * workers)
        # Every message this run has seen and not finished: its newest receipt handle (SQS
        # deletes only with the newest). Held ones are released at the end; moved ids stay
        # known so that a second delivery of one is deleted instead of sent again.
        self._handles: dict[str, str] = {}
        self._held: set[str] = set()
        self._moved = MessageIdSet()
        self._in_flight = 0  # received to be moved, not yet deleted or given up
        self._lock = threading.Lock()

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> Tally:
        restore = self._trap_interrupt()
        workers = self.settings.workers
        futures: list[Future[None]] = []
        try:
            threads = self._receivers + workers + self._deleters
            with ThreadPoolExecutor(threads, thread_name_prefix="redrive") as pool:
                futures += [pool.submit(self._receiver) for _ in range(self._receivers)]
                futures += [pool.submit(self._sender, i) for i in range(workers)]
                futures += [pool.submit(self._deleter) for _ in range(self._deleters)]
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
        """Report progress from the calling thread until the stages end; one failing thread
        stops the receivers and senders (what was sent is still deleted)."""
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

    # -- bookkeeping --------------------------------------------------------------------------
    def _track(self, n: int) -> None:
        with self._lock:
            self._in_flight += n

    def _idle(self) -> bool:
        with self._lock:
            return self._in_flight == 0

    def _hold(self, messages: list[Message]) -> None:
        with self._lock:
            self._held.update(m["MessageId"] for m in messages)

    def _give_up(self, messages: list[Message]) -> None:
        """Not sent after all (Ctrl-C, a failed stage): released at the end."""
        self._hold(messages)
        self._track(-len(messages))

    # -- stage 1: receive ---------------------------------------------------------------------
    def _receiver(self) -> None:
        try:
            self._receive_until_drained()
        finally:
            self._to_send.producer_done()

    def _receive_until_drained(self) -> None:
        empty = 0
        while not self.stop.is_set() and empty < EMPTY_ROUNDS:
            want = self.budget.reserve(MAX_BATCH_ENTRIES)
            if want == 0:
                return
            idle = self._idle()
            got = self._receive(want)
            fresh = self._fresh(got)
            if not fresh:
                self.budget.give_back(want)
                if not got and (idle or not self.route.dlq.fifo):
                    return  # a long poll found nothing visible (and no FIFO group is ours)
                empty += 1 if got else 0
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
            elif moving:
                archiving = self.archive is not None
                moving = [slim(m, all_attributes=archiving) for m in moving]
                self._track(len(moving))
                if not self._to_send.put(moving, give_up=self.stop.is_set):
                    self._give_up(moving)

    def _receive(self, n: int) -> list[Message]:
        answer = self.sqs.receive_message(
            QueueUrl=self.route.dlq.url,
            MaxNumberOfMessages=n,
            VisibilityTimeout=self.settings.visibility_s,
            WaitTimeSeconds=RECEIVE_WAIT_S,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages") or [])

    def _fresh(self, messages: list[Message]) -> list[Message]:
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

    def _inspect(self, messages: list[Message]) -> None:
        self._hold(messages)
        self.tally.add(would_move=len(messages))
        samples = []
        for m in messages:
            dest = self.route.destination_for(m)
            samples.append(
                {
                    "message_id": m["MessageId"],
                    "to": dest.name if dest else "(no destination)",
                    "body": m["Body"][:200],
                }
            )
        self.tally.sample(samples)

    # -- stage 2: send ------------------------------------------------------------------------
    def _sender(self, index: int) -> None:
        try:
            self._send_until_ended(index)
        finally:
            self._to_delete.producer_done()

    def _send_until_ended(self, index: int) -> None:
        """Fill batches of 10 per destination across receives; send a part batch only when
        nothing more came within ``LINGER_S`` or the receivers are done. A receive's messages
        stay with this sender, which sends them in order (FIFO groups)."""
        pending: dict[str, tuple[QueueRef, list[Message]]] = {}
        seq = 0
        while True:
            unit = self._to_send.take(LINGER_S if pending else POLL_S)
            while unit is not None:
                self._route_to(pending, unit)
                if sum(len(g) for _, g in pending.values()) >= MAX_BATCH_ENTRIES:
                    break
                unit = self._to_send.take(0)
            if self.stop.is_set():
                for _, group in pending.values():
                    self._give_up(group)
                pending.clear()
                if self._to_send.ended():
                    return
                continue
            ended = self._to_send.ended()
            flush = ended or unit is None
            for arn, (dest, group) in list(pending.items()):
                seq, rest = self._send_ready(dest, group, index, seq, flush=flush)
                if rest:
                    pending[arn] = (dest, rest)
                else:
                    del pending[arn]
            if ended and not pending:
                return

    def _route_to(
        self, pending: dict[str, tuple[QueueRef, list[Message]]], messages: list[Message]
    ) -> None:
        for m in messages:
            dest = self.route.destination_for(m)
            if dest is None:
                self._give_up([m])
                self.tally.fail(m["MessageId"], "no destination: the DLQ serves several queues")
                continue
            pending.setdefault(dest.arn, (dest, []))[1].append(m)

    def _send_ready(
        self, dest: QueueRef, group: list[Message], worker: int, seq: int, *, flush: bool
    ) -> tuple[int, list[Message]]:
        """Send ``group``'s full batches (and its last part batch when ``flush``); returns the
        sequence number and the messages left for a later batch."""
        stamp = now_ms()
        by_id: dict[str, Message] = {}
        rewritten: dict[str, bool] = {}
        entries = []
        for i, m in enumerate(group):
            entry, rewritten[str(i)] = send_entry(m, str(i), fifo=dest.fifo, now_ms=stamp)
            entries.append(entry)
            by_id[str(i)] = m
        chunks = batches(entries)
        for n, batch in enumerate(chunks):
            last = n == len(chunks) - 1
            if self.stop.is_set() or (last and not flush and len(batch) < MAX_BATCH_ENTRIES):
                return seq, [by_id[e["Id"]] for b in chunks[n:] for e in b]
            self.limiter.wait(len(batch), self.stop.wait, time.monotonic)
            seq += 1
            self.tally.add(dedup_rewritten=sum(rewritten[e["Id"]] for e in batch))
            self._move_batch(dest, batch, by_id, f"w{worker:02d}-{seq:07d}")
        return seq, []

    def _move_batch(
        self,
        dest: QueueRef,
        batch: list[dict[str, Any]],
        by_id: dict[str, Message],
        key: str,
    ) -> None:
        client = self.aws.client("sqs", dest.region)
        sent, refused = self._with_entry_retries(
            lambda entries: client.send_message_batch(QueueUrl=dest.url, Entries=entries), batch
        )
        for entry_id, reason in refused.items():
            self._give_up([by_id[entry_id]])
            self.tally.fail(by_id[entry_id]["MessageId"], reason)
        if not sent:
            return
        if self.archive is not None:
            records = [archive_record(by_id[i], self.route.dlq, dest, sent[i]) for i in sent]
            self.archive.put(key, records)
            self.tally.add(archived=len(records))
        self.tally.sent(list(sent.values()))
        with self._lock:
            deletes = []
            for i in sent:
                mid = by_id[i]["MessageId"]
                self._moved.add(mid)
                deletes.append(self._handles.pop(mid))
        if not self._to_delete.put(deletes, give_up=self._no_deleters):
            # Sent but no deleter left (they failed): a duplicate to report, never a loss.
            self.tally.add(delete_failed=len(deletes))
            self._track(-len(deletes))

    def _no_deleters(self) -> bool:
        with self._lock:
            return self._deleters == 0

    # -- stage 3: delete ----------------------------------------------------------------------
    def _deleter(self) -> None:
        """Deletes what the destination confirmed, in batches of 10; it ignores Ctrl-C: a sent
        message left in the DLQ would be a duplicate."""
        pending: list[str] = []
        try:
            while True:
                handles = self._to_delete.take(LINGER_S if pending else POLL_S)
                while handles is not None:
                    pending += handles
                    if len(pending) >= MAX_BATCH_ENTRIES:
                        break
                    handles = self._to_delete.take(0)
                ended = self._to_delete.ended()
                while len(pending) >= MAX_BATCH_ENTRIES or (pending and (ended or handles is None)):
                    chunk, pending = pending[:MAX_BATCH_ENTRIES], pending[MAX_BATCH_ENTRIES:]
                    self._delete(chunk)
                if ended and not pending:
                    return
        finally:
            with self._lock:
                self._deleters -= 1

    def _delete(self, handles: list[str]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
        _, undeleted = self._with_entry_retries(
            lambda batch: self.sqs.delete_message_batch(QueueUrl=self.route.dlq.url, Entries=batch),
            entries,
        )
        # Sent but still in the DLQ: a duplicate to report, never a loss.
        self.tally.add(delete_failed=len(undeleted))
        self._track(-len(handles))

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
