"""Provision benchmark, all figures from one run against an in-process moto server:

* a fresh run (empty account → both regions): API calls and wall time;
* a no-change run right after: API calls (mutating ones must be 0) and wall time;
* the speed-up of the parallel flow over ``sequential=True`` with 50 ms of latency injected
  into every API call (a botocore ``before-call`` hook), each on a fresh account.

Run: ``python benchmarks/provision.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import testing  # noqa: E402

LATENCY_S = 0.05
CONFIG = "configs/sandbox.yaml"


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
            emulator="sandbox in this process (moto + progressions), no faults",
            timings=dict(testing.TEST_TIMINGS),
            injected_latency=f"{LATENCY_S * 1000:.0f} ms per call (the last two runs)",
        )
    )
    import pytest
    from prefect.testing.utilities import prefect_test_harness

    from flows.provision import provision
    from sandbox import SandboxServer, Timings
    from sandbox.testing import TEST_TIMINGS, fresh_account
    from tasks.core.aws import connect, forget_connections, is_mutating

    timings = Timings()
    timings.update(TEST_TIMINGS)
    server = SandboxServer(port=0, timings=timings)
    endpoint = server.start()
    os.chdir(ROOT)

    def measured(
        mp: pytest.MonkeyPatch, *, fresh: bool, sequential: bool = False, latency: float = 0.0
    ) -> dict[str, Any]:
        cfg = fresh_account(endpoint, mp) if fresh else None
        from configs import load_config

        cfg = cfg or load_config(ROOT / CONFIG)
        calls: list[str] = []

        def hook(model: Any, **_: Any) -> None:
            calls.append(model.name)
            if latency:
                time.sleep(latency)

        forget_connections()  # clients copy the emitter when made: make them after the hook
        connect(cfg).session.events.register("before-call.*.*", hook)
        started = time.perf_counter()
        report = provision(config=CONFIG, sequential=sequential)
        seconds = time.perf_counter() - started
        connect(cfg).session.events.unregister("before-call.*.*", hook)
        assert report["outcome"] == "succeeded", report.get("error")
        return {
            "calls": len(calls),
            "mutating": sum(1 for c in calls if is_mutating(c)),
            "seconds": seconds,
            "changes": len(report["changes"]),
        }

    try:
        with prefect_test_harness(server_startup_timeout=180), pytest.MonkeyPatch.context() as mp:
            fresh = measured(mp, fresh=True)
            again = measured(mp, fresh=False)
            par = measured(mp, fresh=True, latency=LATENCY_S)
            seq = measured(mp, fresh=True, sequential=True, latency=LATENCY_S)
    finally:
        server.stop()

    row: Callable[[str, dict[str, Any]], str] = lambda label, r: (  # noqa: E731
        f"{label:<38} {r['calls']:>6} calls {r['mutating']:>5} mutating "
        f"{r['changes']:>5} changes {r['seconds']:>7.2f} s"
    )
    print(row("fresh run (both regions)", fresh))
    print(row("no-change run", again))
    print(row(f"parallel, {LATENCY_S * 1000:.0f} ms per call", par))
    print(row(f"one at a time, {LATENCY_S * 1000:.0f} ms per call", seq))
    print(f"speed-up of the parallel run: {seq['seconds'] / par['seconds']:.2f}x")
    if again["mutating"]:
        raise SystemExit("a no-change run made mutating calls")


if __name__ == "__main__":
    main()
