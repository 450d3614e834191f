"""Pure decisions of a redrive: which messages match, what to send, how to batch and pace.

Nothing here does I/O, so every rule is unit-tested with AWS-shaped payloads (the dicts
``ReceiveMessage`` returns). The engine in :mod:`tasks.redrive_engine` only moves bytes.

FIFO deduplication: SQS drops, silently and with a success answer, any message whose
deduplication id it has seen on the destination queue in the last 5 minutes
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html).
A message that failed fast lands in the DLQ well inside that window, so sending it back with
its original id would lose it. :func:`fifo_ids` keeps the original id only when the message
is older than the window, and otherwise derives one from the DLQ message id: unique per
dead-lettered copy, yet stable across our own retries, so a re-run after a crash is
deduplicated by SQS instead of delivered twice.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from configs.errors import BadInput

# --- limits of SQS ---------------------------------------------------------------------------
MAX_BATCH_ENTRIES = 10


# SendMessageBatch caps the summed payload; 256 KiB is the cap every SQS endpoint accepts
# (AWS raised it to 1 MiB in 2025; emulators and older regions may not have).
MAX_BATCH_BYTES = 256 * 1024


DEDUP_WINDOW_S = 300


DEDUP_MARGIN_S = 60  # clocks differ; keep clear of the window's edge


NATIVE_MAX_VELOCITY = 500  # StartMessageMoveTask MaxNumberOfMessagesPerSecond upper bound


# --- filters ---------------------------------------------------------------------------------
_FILTER = re.compile(
    r"^\s*(?P<key>attr\.[^=!<>\s]+|body(?:\.[^=!<>\s]+)?|age|receives)\s*"
    r"(?P<op>!=|>=|<=|=|>|<)\s*(?P<value>.*?)\s*$"
)


_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[smhd]?)$")


_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


_MISSING = object()


@dataclass(frozen=True)
class Filter:
    """One condition on a message: ``attr.NAME``, ``body.PATH``, ``age`` or ``receives``
    compared with ``= != > >= < <=``. ``=``/``!=`` compare text and accept ``*``/``?``
    globs; the others compare numbers (``age`` takes 30s, 5m, 2h, 1d)."""

    key: str
    op: str
    value: str
    text: str

    def matches(self, message: Mapping[str, Any], now_ms: int) -> bool:
        actual = _field(message, self.key, now_ms)
        if self.op in ("=", "!="):
            equal = actual is not _MISSING and fnmatch.fnmatchcase(_text(actual), self.value)
            return equal if self.op == "=" else not equal
        want = _duration_s(self.value) if self.key == "age" else _number(self.value)
        have = _number(actual)
        if have is None or want is None:
            return False
        return {
            ">": have > want,
            ">=": have >= want,
            "<": have < want,
            "<=": have <= want,
        }[self.op]


def parse_filter(text: str) -> Filter:
    """Parse one ``--filter``; raise :class:`BadInput` naming what is wrong."""
    m = _FILTER.match(text)
    if not m:
        raise BadInput(
            f"filter {text!r} is not KEY OP VALUE (KEY: attr.NAME, body, body.PATH, age, "
            "receives; OP: = != > >= < <=)"
        )
    key, op, value = m["key"], m["op"], m["value"]
    if key == "age":
        if op in ("=", "!="):
            raise BadInput(f"filter {text!r}: age compares with > >= < <= only")
        if _duration_s(value) is None:
            raise BadInput(f"filter {text!r}: age needs a duration such as 90s, 5m, 2h or 1d")
    elif op not in ("=", "!=") and _number(value) is None:
        raise BadInput(f"filter {text!r}: {op} needs a number")
    return Filter(key=key, op=op, value=value, text=text.strip())


def parse_filters(texts: Iterable[str]) -> list[Filter]:
    return [parse_filter(t) for t in texts]


def matches_all(filters: Iterable[Filter], message: Mapping[str, Any], now_ms: int) -> bool:
    return all(f.matches(message, now_ms) for f in filters)


def _field(message: Mapping[str, Any], key: str, now_ms: int) -> Any:
    attrs = message.get("Attributes") or {}
    if key == "age":
        sent = attrs.get("SentTimestamp")
        return (now_ms - int(sent)) / 1000 if sent else _MISSING
    if key == "receives":
        return attrs.get("ApproximateReceiveCount", _MISSING)
    if key.startswith("attr."):
        attr = (message.get("MessageAttributes") or {}).get(key[5:])
        if not attr:
            return _MISSING
        return attr.get("StringValue", attr.get("BinaryValue", _MISSING))
    body = message.get("Body", "")
    if key == "body":
        return body
    try:
        node: Any = json.loads(body)
    except (ValueError, TypeError):
        return _MISSING
    for part in key[5:].split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return json.dumps(value)


def _number(value: Any) -> float | None:
    if value is _MISSING or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _duration_s(text: str) -> float | None:
    m = _DURATION.match(text.strip())
    return float(m["n"]) * _UNIT_S[m["unit"]] if m else None


# --- what to send ------------------------------------------------------------------------------
def clean_attributes(attrs: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Message attributes as ``SendMessage`` takes them back (the receive shape carries list
    fields that SQS does not accept on send)."""
    out: dict[str, dict[str, Any]] = {}
    for name, attr in (attrs or {}).items():
        kept: dict[str, Any] = {"DataType": attr["DataType"]}
        if "StringValue" in attr:
            kept["StringValue"] = attr["StringValue"]
        if "BinaryValue" in attr:
            kept["BinaryValue"] = attr["BinaryValue"]
        out[name] = kept
    return out


# What sending (and routing) a message reads of its system attributes.
SENT_ATTRIBUTES = (
    "MessageGroupId",
    "MessageDeduplicationId",
    "SentTimestamp",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def slim(message: Mapping[str, Any], *, all_attributes: bool = False) -> dict[str, Any]:
    """What the send stage needs of a received message (the archive wants every system
    attribute): queued messages are a redrive's memory, and the receive answer's handle,
    digests and list fields are a good part of each."""
    attrs = message.get("Attributes") or {}
    return {
        "MessageId": message["MessageId"],
        "Body": message["Body"],
        "MessageAttributes": clean_attributes(message.get("MessageAttributes")),
        "Attributes": dict(attrs)
        if all_attributes
        else {k: attrs[k] for k in SENT_ATTRIBUTES if k in attrs},
    }


def derived_dedup_id(message_id: str) -> str:
    """A deduplication id for one dead-lettered copy: stable across our retries."""
    return "redrive-" + hashlib.sha256(message_id.encode()).hexdigest()[:48]


def fifo_ids(message: Mapping[str, Any], now_ms: int) -> tuple[str, str, bool]:
    """(group id, deduplication id, rewritten?) to send ``message`` to a FIFO queue."""
    attrs = message.get("Attributes") or {}
    group = attrs.get("MessageGroupId")
    if not group:
        raise BadInput(
            f"message {message.get('MessageId')} has no MessageGroupId: receive it from a "
            "FIFO queue with AttributeNames=['All']"
        )
    original = attrs.get("MessageDeduplicationId")
    sent_ms = int(attrs.get("SentTimestamp") or now_ms)
    if original and now_ms - sent_ms > (DEDUP_WINDOW_S + DEDUP_MARGIN_S) * 1000:
        return group, original, False
    return group, derived_dedup_id(message["MessageId"]), True


def send_entry(
    message: Mapping[str, Any], entry_id: str, *, fifo: bool, now_ms: int
) -> tuple[dict[str, Any], bool]:
    """The ``SendMessageBatch`` entry that recreates ``message``; and whether its FIFO
    deduplication id had to be rewritten."""
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
    attrs = clean_attributes(message.get("MessageAttributes"))
    if attrs:
        entry["MessageAttributes"] = attrs
    trace = (message.get("Attributes") or {}).get("AWSTraceHeader")
    if trace:
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": trace}
        }
    rewritten = False
    if fifo:
        group, dedup, rewritten = fifo_ids(message, now_ms)
        entry["MessageGroupId"] = group
        entry["MessageDeduplicationId"] = dedup
    return entry, rewritten


def entry_size(entry: Mapping[str, Any]) -> int:
    """Bytes SQS counts against the batch limit: body plus attribute names, types, values."""
    size = len(str(entry["MessageBody"]).encode())
    for name, attr in (entry.get("MessageAttributes") or {}).items():
        value = attr.get("StringValue", attr.get("BinaryValue", b""))
        size += len(name.encode()) + len(attr["DataType"].encode())
        size += len(value if isinstance(value, bytes) else str(value).encode())
    return size


def batches(
    entries: list[dict[str, Any]],
    *,
    max_entries: int = MAX_BATCH_ENTRIES,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[list[dict[str, Any]]]:
    """Split entries, in order, into batches within SQS's count and payload limits."""
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    used = 0
    for entry in entries:
        size = entry_size(entry)
        if current and (len(current) >= max_entries or used + size > max_bytes):
            out.append(current)
            current, used = [], 0
        current.append(entry)
        used += size
    if current:
        out.append(current)
    return out


# --- answers of batch calls ----------------------------------------------------------------------
@dataclass
class BatchOutcome:
    """One batch answer sorted per entry: done, worth another try, or refused for good."""

    done: dict[str, str] = field(default_factory=dict)  # entry id -> MessageId (or "")
    retry: dict[str, str] = field(default_factory=dict)  # entry id -> "Code: message"
    refused: dict[str, str] = field(default_factory=dict)


def sort_batch_answer(answer: Mapping[str, Any], sent_ids: Iterable[str]) -> BatchOutcome:
    """Sort a ``SendMessageBatch``/``DeleteMessageBatch`` answer. An entry the answer does not
    mention counts as retryable: never assume a message arrived."""
    out = BatchOutcome()
    for ok in answer.get("Successful") or []:
        out.done[ok["Id"]] = ok.get("MessageId", "")
    for bad in answer.get("Failed") or []:
        reason = f"{bad.get('Code', 'Unknown')}: {bad.get('Message', '')}".rstrip(": ")
        (out.refused if bad.get("SenderFault") else out.retry)[bad["Id"]] = reason
    for entry_id in sent_ids:
        if entry_id not in out.done and entry_id not in out.refused and entry_id not in out.retry:
            out.retry[entry_id] = "NotInAnswer: the batch answer did not mention this entry"
    return out


# --- pacing and budget -------------------------------------------------------------------------
class RateLimiter:
    """A token bucket shared by the workers: at most ``rate`` messages/s, bursts of one batch.

    ``delay(n, now)`` is the pure decision (how long to wait before sending ``n``); it books
    the tokens, so concurrent callers queue up rather than all firing at once.
    """

    def __init__(self, rate: float | None, *, burst: int = MAX_BATCH_ENTRIES) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp: float | None = None
        self._lock = threading.Lock()

    def delay(self, n: int, now: float) -> float:
        if not self.rate:
            return 0.0
        with self._lock:
            if self._stamp is not None:
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def wait(self, n: int, pause: Callable[[float], object], clock: Callable[[], float]) -> None:
        seconds = self.delay(n, clock())
        if seconds > 0:
            pause(seconds)


class Budget:
    """How many more messages may move (``--max``), reserved before each receive so that
    parallel workers never overshoot."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._left = limit
        self._lock = threading.Lock()

    def reserve(self, want: int = MAX_BATCH_ENTRIES) -> int:
        with self._lock:
            if self._left is None:
                return want
            got = min(want, self._left)
            self._left -= got
            return got

    def give_back(self, n: int) -> None:
        if n <= 0:
            return
        with self._lock:
            if self._left is not None:
                self._left += n


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``."""
    m = re.fullmatch(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?", url)
    if not m:
        raise BadInput(f"archive {url!r} is not s3://BUCKET[/PREFIX]")
    return m["bucket"], (m["prefix"] or "").strip("/")


def now_ms() -> int:
    return int(time.time() * 1000)


# --- canary --------------------------------------------------------------------------------------
def canary_returned(sent_ids: Iterable[str], seen_in_dlq: Iterable[str]) -> list[str]:
    """Message ids of the canary that are back in the DLQ (SQS keeps the id when it
    dead-letters a message, and each one we send gets a new id)."""
    seen = set(seen_in_dlq)
    return sorted(i for i in sent_ids if i in seen)
