"""Provision benchmark, all figures from one run against an in-process moto server:

* a fresh run (empty account → both regions): API calls and wall time;
* a no-change run right after: API calls (mutating ones must be 0) and wall time;
* with 50 ms of latency injected into every API call (a botocore ``before-call`` hook), each on
  a fresh account: the graph run by dependency (parallel) and one step at a time;
* the graph's critical path: each node weighs the calls it made (counted per node in the
  parallel run) times the per-call latency measured in the one-at-a-time run (no contention);
  the longest chain of needs is the best any scheduler could do.

The sandbox answers from a process of its own (``python -m sandbox``), as AWS does from its own
machines: the runbook's process pays only for its own work. Each row prints that process's CPU
seconds next to its wall time (a parallel run cannot end before its CPU work is done, whatever
the critical path says).

Targets: parallel ≥ 4x one at a time, parallel ≤ 1.25x the critical path.

Run: ``python benchmarks/provision.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import testing  # noqa: E402

if TYPE_CHECKING:
    from flows.graph import Graph

LATENCY_S = 0.05
CONFIG = "configs/sandbox.yaml"
SPEEDUP_TARGET = 4.0
CRITICAL_PATH_TARGET = 1.25
SETTLE_S = 3.0  # between runs, not measured


class Meter:
    """Counts API calls (per graph node) and times each one, from botocore's events."""

    def __init__(self, latency: float) -> None:
        from flows.graph import CURRENT_NODE

        self._node = CURRENT_NODE
        self.latency = latency
        self.calls: list[str] = []
        self.per_node: Counter[str] = Counter()
        self.seconds: list[float] = []
        self.spans: dict[str, tuple[float, float]] = {}  # node -> first call, last answer
        self._lock = threading.Lock()
        self._started = threading.local()

    def before(self, model: Any, **_: Any) -> None:
        self._started.at = at = time.perf_counter()
        node = self._node.get() or "(outside the graph)"
        with self._lock:
            self.calls.append(model.name)
            self.per_node[node] += 1
            self.spans[node] = (self.spans.get(node, (at, at))[0], at)
        if self.latency:
            time.sleep(self.latency)

    def after(self, **_: Any) -> None:
        at = getattr(self._started, "at", None)
        if at is not None:
            end = time.perf_counter()
            node = self._node.get() or "(outside the graph)"
            with self._lock:
                self.seconds.append(end - at)
                self.spans[node] = (self.spans[node][0], end)


def critical_path(graph: Graph, cost: Callable[[str], float]) -> tuple[float, list[str]]:
    """The longest chain of needs, weighing each node by ``cost``: (seconds, nodes)."""
    best: dict[str, tuple[float, list[str]]] = {}
    for n in graph:  # declaration order is topological
        before = max((best[k] for k in n.needs), default=(0.0, []), key=lambda b: b[0])
        best[n.key] = (before[0] + cost(n.key), [*before[1], n.key])
    return max(best.values(), key=lambda b: b[0])


def main() -> None:
    settings = {
        **testing.isolated_environment(Path(tempfile.mkdtemp(prefix="tierbook-bench-"))),
        **testing.poll_environment(testing.TEST_POLL_SCALE),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    testing.set_environment(settings)  # before Prefect is imported: it reads them once
    print(
        testing.describe(
            "provision benchmark settings:",
            settings,
            emulator="sandbox in a process of its own (python -m sandbox), no faults",
            timings=dict(testing.TEST_TIMINGS),
            injected_latency=f"{LATENCY_S * 1000:.0f} ms per call (the last two runs)",
        )
    )
    import pytest
    from prefect.testing.utilities import prefect_test_harness

    from configs import load_config
    from flows.provision import provision
    from flows.provision_graph import build
    from sandbox.testing import fresh_account, sandbox_process
    from tasks.core.aws import connect, forget_connections, is_mutating

    os.chdir(ROOT)

    def measured(
        mp: pytest.MonkeyPatch, *, fresh: bool, sequential: bool = False, latency: float = 0.0
    ) -> dict[str, Any]:
        # The test harness's server (SQLite) is still writing the last run's task runs when a
        # run follows at once; the new flow run's creation then collides (a 503, retried
        # after 2 s). A production server (PostgreSQL) does not; the pause keeps that out.
        time.sleep(SETTLE_S)
        cfg = fresh_account(endpoint, mp) if fresh else load_config(ROOT / CONFIG)
        meter = Meter(latency)
        forget_connections()  # clients copy the emitter when made: make them after the hooks
        events = connect(cfg).session.events
        events.register("before-call.*.*", meter.before)
        events.register("after-call.*.*", meter.after)
        emulator, machine = sandbox.cpu_seconds(), testing.machine_ticks()
        started, cpu = time.perf_counter(), time.process_time()
        report = provision(config=CONFIG, sequential=sequential)
        ended = time.perf_counter()
        seconds, cpu = ended - started, time.process_time() - cpu
        emulator = (sandbox.cpu_seconds() or 0.0) - (emulator or 0.0)
        busy, total = (b - a for a, b in zip(machine, testing.machine_ticks(), strict=True))
        events.unregister("before-call.*.*", meter.before)
        events.unregister("after-call.*.*", meter.after)
        assert report["outcome"] == "succeeded", report.get("error")
        return {
            "calls": len(meter.calls),
            "mutating": sum(1 for c in meter.calls if is_mutating(c)),
            "seconds": seconds,
            "cpu": cpu,
            "sandbox_cpu": emulator,
            "busy": busy / total if total else 0.0,
            "changes": len(report["changes"]),
            "per_node": meter.per_node,
            "per_call": sum(meter.seconds) / max(len(meter.seconds), 1),
            "spans": meter.spans,
            "started": started,
            "ended": ended,
        }

    with (
        sandbox_process() as sandbox,
        prefect_test_harness(server_startup_timeout=180),
        pytest.MonkeyPatch.context() as mp,
    ):
        endpoint = sandbox.endpoint
        fresh = measured(mp, fresh=True)
        again = measured(mp, fresh=False)
        par = measured(mp, fresh=True, latency=LATENCY_S)
        seq = measured(mp, fresh=True, sequential=True, latency=LATENCY_S)

    graph = build(load_config(ROOT / CONFIG), ["primary", "dr"], dry_run=False)
    per_call = seq["per_call"]
    bound, chain = critical_path(graph, lambda key: par["per_node"][key] * per_call)

    def span_of(run: dict[str, Any]) -> Callable[[str], float]:
        spans = run["spans"]
        return lambda key: spans[key][1] - spans[key][0] if key in spans else 0.0

    busy, busy_chain = critical_path(graph, span_of(par))
    alone, alone_chain = critical_path(graph, span_of(seq))

    row: Callable[[str, dict[str, Any]], str] = lambda label, r: (  # noqa: E731
        f"{label:<38} {r['calls']:>6} calls {r['mutating']:>5} mutating "
        f"{r['changes']:>5} changes {r['seconds']:>7.2f} s (CPU: runbook {r['cpu']:.2f} s, "
        f"sandbox {r['sandbox_cpu']:.2f} s; machine {r['busy']:.0%} busy)"
    )
    ms = f"{LATENCY_S * 1000:.0f} ms per call"
    print(row("fresh run (both regions)", fresh))
    print(row("no-change run", again))
    print(row(f"parallel, {ms}", par))
    print(row(f"one at a time, {ms}", seq))
    print(
        f"graph: {len(graph.nodes)} steps; measured per call (one at a time): "
        f"{per_call * 1000:.1f} ms; calls outside any step: "
        f"{par['per_node']['(outside the graph)']}"
    )
    print(
        f"critical path: {len(chain)} steps, "
        f"{sum(par['per_node'][k] for k in chain)} calls, {bound:.2f} s"
    )
    print("  " + " → ".join(f"{k} ({par['per_node'][k]})" for k in chain))
    print(
        f"critical path by the steps' measured spans in the parallel run (first call to last "
        f"answer, polls included): {len(busy_chain)} steps, {busy:.2f} s"
    )
    print("  " + " → ".join(busy_chain))
    # Where the chain's time went: each step's wait between its needs' last answer and its own
    # first call (scheduling, the task's start, its own work before calling), and its span.
    spans = par["spans"]
    for key in busy_chain:
        needs = [spans[k][1] for k in graph.nodes[key].needs if k in spans]
        wait = spans[key][0] - max(needs, default=par["started"])
        alone_span = seq["spans"][key][1] - seq["spans"][key][0]
        print(
            f"    {key:<28} waited {wait:5.2f} s, span {spans[key][1] - spans[key][0]:5.2f} s "
            f"({par['per_node'][key]} calls; alone {alone_span:5.2f} s)"
        )
    print(
        f"critical path by the steps' spans when each ran alone (one at a time: its calls and "
        f"its waits for AWS, no contention): {len(alone_chain)} steps, {alone:.2f} s"
    )
    print("  " + " → ".join(alone_chain))
    speedup = seq["seconds"] / par["seconds"]
    over = par["seconds"] / bound
    print(
        f"speed-up of the parallel run: {speedup:.2f}x "
        f"(target ≥ {SPEEDUP_TARGET:.0f}x: {'met' if speedup >= SPEEDUP_TARGET else 'missed'})"
    )
    print(
        f"parallel run / critical path: {over:.2f}x "
        f"(target ≤ {CRITICAL_PATH_TARGET}x: {'met' if over <= CRITICAL_PATH_TARGET else 'missed'})"
    )
    print(f"parallel run / critical path by measured spans: {par['seconds'] / busy:.2f}x")
    print(f"parallel run / critical path by spans alone: {par['seconds'] / alone:.2f}x")
    first = min(s for s, _ in par["spans"].values())
    last = max(e for _, e in par["spans"].values())
    print(
        f"parallel run outside any call: {first - par['started']:.2f} s before the first, "
        f"{par['ended'] - last:.2f} s after the last"
    )
    if again["mutating"]:
        raise SystemExit("a no-change run made mutating calls")


if __name__ == "__main__":
    main()
