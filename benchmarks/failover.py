"""Failover benchmark, all figures from one run against an in-process sandbox whose
progressions take seconds (promotion, ECS rollout, Route 53 sync):

* the runbook's RTO (start → traffic verified in DR);
* the sequential sum: every step of the same run, one after the other (a runbook with no
  parallelism would take at least this);
* the critical-path bound: the longest chain of dependent steps (readiness → approval →
  max(fence → promote, scale-ups) → verify → DNS), the best any schedule could do.

Run: ``python benchmarks/failover.py [--promote S] [--rollout S] [--dns S]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import testing  # noqa: E402

CONFIG = "configs/sandbox.yaml"


def seconds(step: dict[str, Any]) -> float:
    return (
        datetime.fromisoformat(step["end"]) - datetime.fromisoformat(step["start"])
    ).total_seconds()


def critical_path(steps: dict[str, float]) -> float:
    """The longest chain of the failover's dependencies, from the measured step durations."""
    before = steps.get("check DR readiness", 0.0) + steps.get("approval", 0.0)
    db = steps.get("fence primary services", 0.0) + steps.get("promote dr replica", 0.0)
    app = max((v for k, v in steps.items() if k.startswith("scale dr ")), default=0.0)
    after = steps.get("verify dr targets healthy", 0.0) + steps.get("send traffic to dr", 0.0)
    return before + max(db, app) + after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promote", type=float, default=6.0, help="RDS promote/modify seconds")
    parser.add_argument("--rollout", type=float, default=4.0, help="ECS deployment seconds")
    parser.add_argument("--dns", type=float, default=2.0, help="Route 53 INSYNC seconds")
    args = parser.parse_args()
    settings = {
        **testing.isolated_environment(Path(tempfile.mkdtemp(prefix="tierbook-bench-"))),
        **testing.poll_environment(testing.TEST_POLL_SCALE),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    testing.set_environment(settings)  # before Prefect is imported: it reads them once
    print(
        testing.describe(
            "failover benchmark settings:",
            settings,
            emulator="sandbox in this process (moto + progressions), no faults",
            provision_timings=dict(testing.TEST_TIMINGS),
            failover_timings=f"rds_modify_seconds={args.promote:g}, "
            f"ecs_deployment_seconds={args.rollout:g}, route53_sync_seconds={args.dns:g}",
        )
    )

    import pytest
    from prefect.testing.utilities import prefect_test_harness

    from flows.failover import failover
    from flows.provision import provision
    from sandbox import SandboxServer, Timings
    from sandbox.control import SandboxControl
    from sandbox.testing import TEST_TIMINGS, fresh_account, push_images

    timings = Timings()
    timings.update(TEST_TIMINGS)
    server = SandboxServer(port=0, timings=timings)
    endpoint = server.start()
    os.chdir(ROOT)
    try:
        with prefect_test_harness(server_startup_timeout=180), pytest.MonkeyPatch.context() as mp:
            cfg = fresh_account(endpoint, mp)
            provision(config=CONFIG)
            push_images(cfg)
            SandboxControl(endpoint).timings(
                rds_modify_seconds=args.promote,
                ecs_deployment_seconds=args.rollout,
                route53_sync_seconds=args.dns,
            )
            report = failover(config=CONFIG, approved=True, reason="benchmark")
    finally:
        server.stop()
    steps = {s["step"]: seconds(s) for s in report["steps"]}
    rto = float(report["metrics"]["rto_seconds"])
    rto_steps = {k: v for k, v in steps.items() if k != "harden dr database"}
    sequential = sum(rto_steps.values())
    bound = critical_path(steps)
    print(
        f"sandbox: promote {args.promote:g}s, ECS rollout {args.rollout:g}s, DNS sync {args.dns:g}s"
    )
    for name, value in sorted(steps.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<36} {value:6.1f}s")
    print(f"RTO (start → verified)          {rto:6.1f}s")
    print(
        f"sequential sum of the steps     {sequential:6.1f}s   RTO / sequential = {rto / sequential:.2f}"
    )
    print(f"critical-path bound             {bound:6.1f}s   RTO / bound      = {rto / bound:.2f}")
    print(f"RPO estimate (replica lag)      {report['metrics']['rpo_seconds']}s")


if __name__ == "__main__":
    main()
