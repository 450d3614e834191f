"""A runbook's live progress on the terminal: one line when a step starts, one when it ends
(outcome, seconds, retries), what a wait waits for and the time left to its deadline.

Plain lines (no cursor tricks), so the same output reads well in a terminal, a CI log or a
pipe; colour only on a terminal. Retries show as a count on the step; ``-v`` prints each.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from flows.progress import Event

WAIT_REPEAT_S = 10.0
COLOURS = {"failed": "red", "skipped": "yellow", "changed": "green", "planned": "cyan"}


class LineView:
    """Prints progress events as lines on ``console``."""

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        self._waits: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.first_step_at: float | None = None

    def _line(self, text: str) -> None:
        with self._lock:
            self.console.print(text, highlight=False, soft_wrap=True)

    def __call__(self, event: Event) -> None:
        if event.kind == "started":
            self.started(event.step, at=event.at)
        elif event.kind == "ended":
            self.ended(
                event.step,
                event.outcome,
                event.seconds,
                detail=event.detail,
                retries=event.retries,
                at=event.at,
            )
        elif event.kind == "waiting":
            self._waiting(_clock(event.at), event)
        elif event.kind == "retry" and self.verbose:
            self._line(
                f"[dim]{_clock(event.at)}[/]   ↻ {escape(event.step)}: "
                f"retry {event.retries}: {escape(event.detail)}"
            )

    def started(self, step: str, *, at: datetime | None = None) -> None:
        """A step began (a runbook's, or one the terminal does before the runbook starts)."""
        if self.first_step_at is None:
            self.first_step_at = time.monotonic()
        self._line(f"[dim]{_clock(at)}[/] ▶ {escape(step)}")

    def ended(
        self,
        step: str,
        outcome: str,
        seconds: float,
        *,
        detail: str = "",
        retries: int = 0,
        at: datetime | None = None,
    ) -> None:
        colour = COLOURS.get(outcome, "")
        shown = f"[{colour}]{outcome}[/]" if colour else outcome
        tries = f", {retries} retries" if retries else ""
        more = f" — {escape(detail)}" if detail else ""
        mark = "✗" if outcome == "failed" else "✓"
        self._line(
            f"[dim]{_clock(at)}[/] {mark} {escape(step)}: {shown} ({seconds:.1f}s{tries}){more}"
        )

    def _waiting(self, clock: str, event: Event) -> None:
        key = (event.step, event.detail)
        tick = time.monotonic()
        with self._lock:
            if event.left_s <= 0:
                self._waits.pop(key, None)
                return
            last = self._waits.get(key)
            if last is not None and tick - last < WAIT_REPEAT_S:
                return
            self._waits[key] = tick
        self._line(
            f"[dim]{clock}[/]   … {escape(event.detail)}: waiting, deadline in {event.left_s:.0f}s"
        )


def _clock(at: datetime | None) -> str:
    return (at.astimezone() if at is not None else datetime.now()).strftime("%H:%M:%S")
