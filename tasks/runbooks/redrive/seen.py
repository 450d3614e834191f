"""The ids of the messages a redrive moved, kept in memory that stays small.

A run remembers every message it moved so that a second delivery of one (SQS is
at-least-once; a copy whose delete failed comes back after the visibility timeout) is deleted
instead of sent again. A ``set`` of id strings costs about 120 bytes per message, which made a
redrive's memory grow with the size of the DLQ (issue #15). SQS message ids are UUIDs: here
they are 16-byte records in one sorted ``bytes`` run, plus a small set of recent ones merged
into the run when it reaches a sixteenth of the run's size (each id is copied about 16 times
over a run: amortised constant time). Ids that are not canonical UUIDs are kept as they are,
so membership is exact either way: a false hit would delete a message that was never sent.

Pure: no I/O, unit-tested in ``tests/redrive/test_rules.py``.
"""

from __future__ import annotations

import heapq
import uuid
from bisect import bisect_left

RECORD = 16


MERGE_MIN = 1024  # recent ids kept as a set before the first merge


MERGE_EVERY = 16  # merge when the recent ids reach 1/MERGE_EVERY of the run


class _Records:
    """A sorted run of 16-byte records, as a sequence ``bisect`` can search."""

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data) // RECORD

    def __getitem__(self, i: int) -> bytes | bytearray:
        return self.data[i * RECORD : (i + 1) * RECORD]


def _key(message_id: str) -> bytes | None:
    """The 16 bytes of a canonical UUID id, or None for any other id."""
    try:
        parsed = uuid.UUID(message_id)
    except (ValueError, AttributeError, TypeError):
        return None
    return parsed.bytes if str(parsed) == message_id else None


class MessageIdSet:
    """An exact set of message ids, 16 bytes per UUID id once merged."""

    def __init__(self) -> None:
        self._run = _Records(b"")
        self._recent: set[bytes] = set()
        self._other: set[str] = set()

    def add(self, message_id: str) -> None:
        key = _key(message_id)
        if key is None:
            self._other.add(message_id)
            return
        if key in self._recent or self._in_run(key):
            return
        self._recent.add(key)
        if len(self._recent) >= max(MERGE_MIN, len(self._run) // MERGE_EVERY):
            self._merge()

    def __contains__(self, message_id: object) -> bool:
        if not isinstance(message_id, str):
            return False
        key = _key(message_id)
        if key is None:
            return message_id in self._other
        return key in self._recent or self._in_run(key)

    def __len__(self) -> int:
        return len(self._run) + len(self._recent) + len(self._other)

    def _in_run(self, key: bytes) -> bool:
        i = bisect_left(self._run, key)
        return i < len(self._run) and self._run[i] == key

    def _merge(self) -> None:
        run = self._run
        merged = bytearray()
        for record in heapq.merge((run[i] for i in range(len(run))), sorted(self._recent)):
            merged += record
        self._run = _Records(merged)  # no copy: a second run's worth at the peak is enough
        self._recent = set()
