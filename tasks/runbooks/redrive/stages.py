"""A bounded queue between two stages of the redrive pipeline that knows when its producers
are done: its consumers stop once it is closed and empty (an empty item wakes each one)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

POLL_S = 0.05  # how often an idle consumer looks whether its input ended (or Ctrl-C came)


class Stage:
    """A bounded queue between two stages that knows when its producers are done."""

    def __init__(self, producers: int, consumers: int, bound: int) -> None:
        self.items: queue.Queue[list[Any]] = queue.Queue(maxsize=bound)
        self._producers = producers
        self._consumers = consumers
        self._queued = 0  # items put and not yet taken, wake-ups aside
        self._lock = threading.Lock()
        self.closed = threading.Event()

    def producer_done(self) -> None:
        with self._lock:
            self._producers -= 1
            if self._producers != 0:
                return
            self.closed.set()
        for _ in range(self._consumers):  # wake the waiting consumers now, not at their poll
            try:
                self.items.put_nowait([])
            except queue.Full:  # then they are busy, and see the end when they come back
                return

    def put(self, item: list[Any], give_up: Callable[[], bool]) -> bool:
        """Queue ``item``; False when ``give_up()`` says nobody will take it."""
        with self._lock:
            self._queued += 1
        while True:
            try:
                self.items.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                if give_up():
                    with self._lock:
                        self._queued -= 1
                    return False

    def take(self, timeout: float) -> list[Any] | None:
        """The next item, or None when none came within ``timeout`` (or a wake-up did)."""
        try:
            item = self.items.get(timeout=timeout) if timeout > 0 else self.items.get_nowait()
        except queue.Empty:
            return None
        if not item:
            return None
        with self._lock:
            self._queued -= 1
        return item

    def ended(self) -> bool:
        """No producer left and nothing queued: the consumer may stop."""
        with self._lock:
            return self.closed.is_set() and self._queued == 0
