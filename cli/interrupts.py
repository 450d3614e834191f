"""Ctrl-C at the terminal, the way an operator expects it.

The first Ctrl-C stops the runbook from starting steps, attempts or polls
(:data:`tasks.core.retry.STOPPING`); AWS calls already sent finish, the runbook unwinds —
its report written, its lock released — and the CLI exits 130. Should that take longer than
:data:`GRACE_S`, or on a second Ctrl-C, the process ends at once (exit 130), its local Prefect
API with it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

GRACE_S = 3.0
INTERRUPTED = 130


def _abort(message: str) -> None:
    from cli.prefect_env import shutdown_api
    from flows.report import write_unfinished

    paths = write_unfinished()
    sys.stderr.write(f"\n{message}\n")
    for path in paths:
        sys.stderr.write(f"report (unfinished): {path}\n")
    sys.stderr.flush()
    shutdown_api()
    os._exit(INTERRUPTED)


@contextmanager
def first_stops_second_aborts() -> Iterator[None]:
    """Install the two-stage Ctrl-C handler for the block (the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from tasks.core.retry import STOPPING

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if STOPPING.is_set():
            _abort("second Ctrl-C: aborted at once; the report may be incomplete")
        STOPPING.set()
        sys.stderr.write(
            "\nCtrl-C: starting no new step; calls in flight finish, then the report is "
            "written and locks released (Ctrl-C again to abort now)\n"
        )
        sys.stderr.flush()
        timer = threading.Timer(GRACE_S, _abort, args=(f"still busy after {GRACE_S:g}s: stopped",))
        timer.daemon = True
        timer.start()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def caught_before_start() -> Iterator[threading.Event]:
    """Ctrl-C while nothing has started yet (config, probe, Prefect loading): raise
    KeyboardInterrupt at once *and* remember it in the yielded event, so a Ctrl-C that lands
    inside a library's catch-all (an optional import, a probe's retry) is not lost: the
    caller checks the event when the block ends. A second Ctrl-C ends the process at once."""
    hit = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield hit
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if hit.is_set():
            from cli.prefect_env import shutdown_api

            shutdown_api()
            os._exit(INTERRUPTED)
        hit.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield hit
    except KeyboardInterrupt:
        hit.set()
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def leave_now_if_interrupted() -> Iterator[None]:
    """After a Ctrl-C, once the block (the run, its report printed) is done: exit 130 at once,
    without waiting for Prefect's background workers to drain at interpreter exit."""
    from tasks.core.retry import STOPPING

    try:
        yield
    finally:
        if STOPPING.is_set():
            from cli.prefect_env import shutdown_api

            sys.stdout.flush()
            sys.stderr.flush()
            shutdown_api()
            os._exit(INTERRUPTED)
