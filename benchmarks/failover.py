"""Failover benchmark, all figures from one process against an in-process sandbox whose
progressions take seconds (promotion, ECS rollout, Route 53 sync), two failovers of a freshly
provisioned stack:

* with a healthy primary, and with the primary region dark (every request to it, Route 53's
  control plane and STS included, hangs ``--hang`` seconds and then fails);
* for each: the runbook's RTO (approval → traffic verified in DR) and its wall time (start →
  end, readiness included);
* the sequential sum of the healthy run's steps (a runbook with no parallelism would take at
  least this), and the critical-path bound: the longest chain of dependent steps (approval →
  max(fence → promote, scale-ups) → verify → send traffic), the best any schedule could do.

Then a planned **switchover** of a third fresh stack with writes in flight (its replica lags
``--lag`` seconds until the primary is fenced): its RTO, the write pause (fence → promotion,
at least ``failover.switchover_quiet_seconds``) and the RPO, verified 0, against the sum of its
steps (a planned move is a chain: each step waits for the one before).

Target: the dark run's RTO within 5 s of the healthy run's.

Run: ``python benchmarks/failover.py [--promote S] [--rollout S] [--dns S] [--hang S]``.
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
    """The longest chain of the failover's dependencies after the approval (where the RTO
    starts), from the measured step durations."""
    before = 0.0
    db = steps.get("fence primary services", 0.0) + steps.get("promote dr replica", 0.0)
    app = max((v for k, v in steps.items() if k.startswith("scale dr ")), default=0.0)
    after = steps.get("verify dr targets healthy", 0.0) + steps.get("send traffic to dr", 0.0)
    return before + max(db, app) + after


def one_failover(
    endpoint: str, args: argparse.Namespace, *, dark: bool, planned: bool = False
) -> dict[str, Any]:
    """A fresh account, provisioned, images pushed; then a failover (the primary dark or not),
    or a switchover with writes in flight (``planned``)."""
    import pytest

    from flows.failover import failover, switchover
    from flows.provision import provision
    from sandbox.control import SandboxControl
    from sandbox.testing import fresh_account, push_images
    from tasks.core.aws import forget_connections

    control = SandboxControl(endpoint)
    with pytest.MonkeyPatch.context() as mp:
        cfg = fresh_account(endpoint, mp)
        forget_connections()
        provision(config=CONFIG)
        push_images(cfg)
        control.timings(
            rds_modify_seconds=args.promote,
            ecs_deployment_seconds=args.rollout,
            route53_sync_seconds=args.dns,
        )
        if dark:
            control.set_faults(
                {"kind": "down", "regions": [cfg.regions.primary], "hang_seconds": args.hang}
            )
        if planned:
            control.set_replica_lag(args.lag, while_writers_run=True)
        try:
            move = switchover if planned else failover
            return move(config=CONFIG, approved=True, reason="benchmark")
        finally:
            control.clear_faults()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promote", type=float, default=6.0, help="RDS promote/modify seconds")
    parser.add_argument("--rollout", type=float, default=4.0, help="ECS deployment seconds")
    parser.add_argument("--dns", type=float, default=2.0, help="Route 53 INSYNC seconds")
    parser.add_argument("--hang", type=float, default=5.0, help="a dark region's hang, seconds")
    parser.add_argument("--lag", type=float, default=5.0, help="replica lag until the fence, s")
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

    from prefect.testing.utilities import prefect_test_harness

    from sandbox import SandboxServer, Timings
    from sandbox.testing import TEST_TIMINGS

    timings = Timings()
    timings.update(TEST_TIMINGS)
    server = SandboxServer(port=0, timings=timings)
    endpoint = server.start()
    os.chdir(ROOT)
    try:
        with prefect_test_harness(server_startup_timeout=180):
            healthy = one_failover(endpoint, args, dark=False)
            dark = one_failover(endpoint, args, dark=True)
            planned = one_failover(endpoint, args, dark=False, planned=True)
    finally:
        server.stop()
    print(
        f"sandbox: promote {args.promote:g}s, ECS rollout {args.rollout:g}s, "
        f"DNS sync {args.dns:g}s, dark region hangs {args.hang:g}s per request"
    )
    for label, report in (("healthy primary", healthy), ("dark primary", dark)):
        steps = {s["step"]: seconds(s) for s in report["steps"]}
        print(f"{label} ({report['outcome']}):")
        for name, value in sorted(steps.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<36} {value:6.1f}s")
    steps = {s["step"]: seconds(s) for s in healthy["steps"]}
    rto_steps = {
        k: v
        for k, v in steps.items()
        if k not in ("harden dr database", "check DR readiness", "approval")
    }
    sequential = sum(rto_steps.values())
    bound = critical_path(steps)
    rto, rto_dark = (float(r["metrics"]["rto_seconds"]) for r in (healthy, dark))
    wall, wall_dark = (float(r["metrics"]["wall_seconds"]) for r in (healthy, dark))
    print(f"RTO healthy primary (approval → verified) {rto:6.1f}s   wall {wall:6.1f}s")
    print(f"RTO dark primary                          {rto_dark:6.1f}s   wall {wall_dark:6.1f}s")
    print(
        f"dark - healthy                            {rto_dark - rto:+6.1f}s   "
        f"(target: within 5 s) {'OK' if rto_dark - rto <= 5 else 'MISSED'}"
    )
    print(
        f"sequential sum of the healthy steps       {sequential:6.1f}s   "
        f"RTO / sequential = {rto / sequential:.2f}"
    )
    print(
        f"critical-path bound                       {bound:6.1f}s   RTO / bound = {rto / bound:.2f}"
    )
    print(f"dark fencing: {dark['metrics'].get('fencing', 'fenced')}")
    print(f"RPO estimate (replica lag)                {healthy['metrics']['rpo_seconds']}s")
    m = planned["metrics"]
    chain = sum(
        seconds(st)
        for st in planned["steps"]
        if st["step"] not in ("check DR readiness", "approval", "harden dr database")
        and not st["step"].startswith(("retire ", "replicate "))
    )
    print(f"switchover ({planned['outcome']}), replica lag {args.lag:g}s until the fence:")
    print(
        f"  RTO (approval → writable DR verified)  {float(m['rto_seconds']):6.1f}s   "
        f"sum of its steps {chain:6.1f}s   RTO / sum = {float(m['rto_seconds']) / chain:.2f}"
    )
    print(f"  write pause (fence → promotion)         {float(m['write_pause_seconds']):6.1f}s")
    print(f"  RPO                                     {m['rpo_seconds']}s ({m['rpo_verified']})")
    print(f"  wall (with re-protection)               {float(m['wall_seconds']):6.1f}s")


if __name__ == "__main__":
    main()
