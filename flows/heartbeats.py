"""Flow-run heartbeats that stop the moment their run ends.

Prefect 3.8 sends a heartbeat for every flow run from a thread (every
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds, 180 by default; the server uses them to find runs
whose process died). That thread sleeps in one-second steps and checks between them whether
its run has ended, and a synchronous run joins it on the way out: every run ended up to a
second late (half a second on average) after its last step — on the 3 a.m. terminal, on each
child of a fleet and on the fleet itself.

:func:`install` puts in its place the same heartbeat, sent as often, whose thread waits on an
event instead and so ends as soon as the run does. Installed once, when ``flows`` is imported;
Prefect is pinned (``requirements.lock``), and the tests check that a run still sends its
heartbeat and leaves no heartbeat thread behind.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

THREAD_NAME = "tierbook-flow-heartbeat"


@contextmanager
def send_heartbeats(engine: Any, join_on_exit: bool = True) -> Iterator[None]:
    """Prefect's ``_send_heartbeats``, its sleep an :class:`threading.Event` wait."""
    from prefect import flow_engine

    seconds = engine.heartbeat_seconds
    if seconds is None:
        yield
        return
    seconds = max(seconds, flow_engine.MINIMUM_HEARTBEAT_INTERVAL)
    resource, related = engine._build_heartbeat_event_template()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            state = engine.flow_run.state if engine.flow_run else None
            if state is not None and state.is_final():
                return
            try:
                engine._emit_flow_run_heartbeat(resource, related)
            except Exception:
                engine.logger.debug("Failed to emit heartbeat", exc_info=True)
            stop.wait(seconds)

    # The run's context (its settings, hence its API), as Prefect's own thread has it.
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(beat,), name=THREAD_NAME, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if join_on_exit:
            thread.join(timeout=2)


def install() -> None:
    """Use :func:`send_heartbeats` for every flow run of this process (idempotent)."""
    from prefect import flow_engine

    flow_engine._send_heartbeats = send_heartbeats  # type: ignore[assignment]
