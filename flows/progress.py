"""A runbook's progress while it runs: which step started, which ended (outcome, seconds),
what a step waits for and how long until its deadline, how often a call was retried.

The timeline (:mod:`flows.report`) and the retry/wait seam (:mod:`tasks.core.retry`) feed one
process-wide :class:`Progress`; whoever watches (the terminal, see ``cli.progress_view``)
subscribes with :func:`watch`. Inside a flow run the same progress is a Prefect progress
artifact ("step n of m", the current wait and its deadline), updated at most once a second.
``m`` is the number of steps the previous run of the same runbook took (its report on disk).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from tasks.core import retry
from tasks.core.steps import CURRENT_STEP, now

Kind = Literal["started", "ended", "waiting", "retry", "note"]


@dataclass(frozen=True)
class Event:
    kind: Kind
    step: str
    at: datetime
    outcome: str = ""
    seconds: float = 0.0
    detail: str = ""
    retries: int = 0
    left_s: float = 0.0  # waiting: seconds left before the wait's deadline


Listener = Callable[[Event], None]
_listeners: list[Listener] = []
_listeners_lock = threading.Lock()


@contextmanager
def watch(listener: Listener) -> Iterator[None]:
    """Send every progress event of this process to ``listener`` inside the block."""
    with _listeners_lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _listeners_lock:
            _listeners.remove(listener)


def _emit(event: Event) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        with contextlib.suppress(Exception):  # a broken view must not break a runbook
            listener(event)


@dataclass
class Progress:
    """One runbook's steps so far (thread-safe)."""

    runbook: str
    environment: str
    expected: int | None = None
    done: int = 0
    running: dict[str, datetime] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    retry_log: list[str] = field(default_factory=list)  # every retry, for the report
    waiting: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _artifact: Any = None
    _last_push: float = 0.0

    # -- fed by the timeline and the retry seam ------------------------------------------
    def started(self, step: str, at: datetime) -> None:
        with self._lock:
            self.running[step] = at
        _emit(Event("started", step, at))
        self._push()

    def ended(self, step: str, start: datetime, end: datetime, outcome: str, detail: str) -> None:
        with self._lock:
            self.running.pop(step, None)
            self.done += 1
            count = self.retries.get(step, 0)
        seconds = (end - start).total_seconds()
        _emit(Event("ended", step, end, outcome, seconds, detail, retries=count))
        self._push()

    def retried(self, detail: str) -> None:
        step = CURRENT_STEP.get() or self.runbook
        with self._lock:
            self.retries[step] = count = self.retries.get(step, 0) + 1
            self.retry_log.append(f"{step}: retry {count}: {detail}")
        _emit(Event("retry", step, now(), detail=detail, retries=count))

    def waits(self, what: str, left_s: float) -> None:
        step = CURRENT_STEP.get() or self.runbook
        with self._lock:
            self.waiting = f"{what} (deadline in {left_s:.0f}s)" if left_s > 0 else ""
        _emit(Event("waiting", step, now(), detail=what, left_s=left_s))
        self._push()

    # -- the Prefect progress artifact ---------------------------------------------------
    def summary(self) -> str:
        of = f" of ~{self.expected}" if self.expected else ""
        parts = [f"{self.runbook} · {self.environment}: {self.done} step(s){of} done"]
        if self.running:
            parts.append("running: " + ", ".join(sorted(self.running)))
        if self.waiting:
            parts.append("waiting for " + self.waiting)
        return "; ".join(parts)

    def percent(self) -> float:
        if not self.expected:
            return 0.0
        return min(99.0, 100.0 * self.done / self.expected)

    def open_artifact(self) -> None:
        from prefect.context import FlowRunContext

        if FlowRunContext.get() is None:
            return
        try:
            from prefect.artifacts import create_progress_artifact

            self._artifact = create_progress_artifact(
                progress=0.0,
                key=f"{self.runbook}-progress".replace("_", "-"),
                description=self.summary(),
            )
        except Exception:  # progress that cannot be shown must not fail the runbook
            self._artifact = None

    def _push(self, *, final: bool = False) -> None:
        if self._artifact is None:
            return
        tick = time.monotonic()
        if not final and tick - self._last_push < 1.0:
            return
        self._last_push = tick
        try:
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(
                self._artifact, 100.0 if final else self.percent(), self.summary()
            )
        except Exception:
            pass

    def close(self, outcome: str) -> None:
        self.waiting = ""
        self.running.clear()
        self._push(final=True)
        _emit(Event("note", self.runbook, now(), outcome=outcome))


class _RetryWatcher:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def retried(self, detail: str) -> None:
        self.progress.retried(detail)

    def waiting(self, what: str, left_s: float) -> None:
        self.progress.waits(what, left_s)


def expected_steps(folder: Path, runbook: str, environment: str) -> int | None:
    """How many steps the last run of this runbook took, from its report on disk."""
    try:
        last = max(folder.glob(f"{runbook}-{environment}-*.json"), key=lambda p: p.name)
        return len(json.loads(last.read_text()).get("steps") or []) or None
    except (ValueError, OSError, json.JSONDecodeError):
        return None


@contextmanager
def tracking(progress: Progress) -> Iterator[Progress]:
    """Route retries and waits into ``progress`` for the block (a flow run)."""
    watcher = _RetryWatcher(progress)
    retry.WATCHERS.append(watcher)
    progress.open_artifact()
    try:
        yield progress
    finally:
        retry.WATCHERS.remove(watcher)
