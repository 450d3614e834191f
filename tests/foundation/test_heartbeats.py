"""Flow-run heartbeats (flows/heartbeats.py): still sent, and stopped with their run."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from flows import heartbeats


class Engine:
    """What the heartbeat reads of Prefect's flow-run engine."""

    def __init__(self) -> None:
        self.heartbeat_seconds = 30
        self.flow_run = None
        self.sent: list[tuple[Any, Any]] = []
        self.first = threading.Event()
        self.logger = None

    def _build_heartbeat_event_template(self) -> tuple[str, list[str]]:
        return "resource", ["related"]

    def _emit_flow_run_heartbeat(self, resource: Any, related: Any) -> None:
        self.sent.append((resource, related))
        self.first.set()


def alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == heartbeats.THREAD_NAME]


def test_prefect_uses_tierbooks_heartbeat_once_flows_are_imported() -> None:
    from prefect import flow_engine

    import flows  # noqa: F401  (installs it)

    assert flow_engine._send_heartbeats is heartbeats.send_heartbeats


def test_a_heartbeat_is_sent_and_its_thread_ends_with_the_run_without_sleeping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The thread waits on an event, never sleeps in steps: ending the run ends it at once."""

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"the heartbeat slept {seconds} s")

    engine = Engine()
    monkeypatch.setattr(time, "sleep", no_sleep)
    with heartbeats.send_heartbeats(engine):
        assert engine.first.wait(10), "no heartbeat was sent"
        assert len(alive()) == 1
    assert alive() == []
    assert engine.sent == [("resource", ["related"])]


def test_no_heartbeat_when_prefect_is_told_to_send_none() -> None:
    engine = Engine()
    engine.heartbeat_seconds = None  # type: ignore[assignment]
    with heartbeats.send_heartbeats(engine):
        assert alive() == []
    assert engine.sent == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_flow_run_beats_and_leaves_no_heartbeat_thread() -> None:
    from prefect import flow

    seen: list[int] = []

    @flow
    def tiny() -> int:
        seen.append(len(alive()))
        return 1

    assert tiny() == 1
    assert seen == [1]  # tierbook's heartbeat ran beside the flow
    assert alive() == []
