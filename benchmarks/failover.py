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

Last, a failover of a **pilot light** (``dr.posture: pilot_light``: DR runs no services; the
move creates them while the database is promoted) and of a **backup and restore**
(``dr.posture: backup_restore``: DR holds snapshot copies; the move restores the newest, then
creates the services on it) beside the warm standby's: each RTO against its own critical-path
bound, and the RTO modeled at AWS's durations (``REAL_S``).

Targets: the dark run's RTO within 5 s of the healthy run's; pilot light's RTO ≤ 1.1 times its
bound.

Run: ``python benchmarks/failover.py [--promote S] [--restore S] [--rollout S] [--dns S]
[--hang S]``.
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
    starts), from the measured step durations. A pilot light's service chain is: find the
    DR foundation, then per service create → autoscaling → scale (the alarms beside it)."""
    db = steps.get("fence primary services", 0.0) + steps.get("promote dr replica", 0.0)
    # backup and restore: the restore starts beside the fence; the task definitions need its
    # endpoint, so the app chain starts after it
    restore = steps.get("restore dr database from the newest snapshot copy")
    if restore is not None:
        db = max(steps.get("fence primary services", 0.0), restore)
    point = max(
        (v for k, v in steps.items() if k.startswith("point dr ") and "task definition" in k),
        default=0.0,
    )
    per_service: dict[str, float] = {}
    for name, value in steps.items():
        for svc in ("web", "worker"):
            mine = (f"ensure dr {svc} service", f"ensure dr {svc} autoscaling")
            if name.startswith(f"scale dr {svc} ") or name in mine:
                per_service[svc] = per_service.get(svc, 0.0) + value
    chains = [*per_service.values(), steps.get("ensure dr alarms", 0.0)]
    app = steps.get("find dr app foundation", 0.0) + max(chains, default=0.0)
    after = steps.get("verify dr targets healthy", 0.0) + steps.get("send traffic to dr", 0.0)
    if restore is not None:
        return max(db, steps.get("find dr app foundation", 0.0)) + point + app + after
    return max(db, app) + after


# Modeled at AWS's durations (typical figures, stated so they can be argued with): an RDS
# read-replica promotion ~10 min; a new Fargate service to healthy targets ~3 min (image pull,
# start, health checks); an existing one scaled up ~2 min; the Route 53 switch ~1.5 min (three
# failed health checks at 10 s plus a 60 s TTL). Seed 000's hand-run failover: ~28 min.
# A restore of a snapshot into a new instance: ~20 min for a small database (it grows with the
# data; the instance then loads blocks lazily from S3).
REAL_S = {
    "promote": 600.0,
    "restore": 1200.0,
    "new_service": 180.0,
    "scale_up": 120.0,
    "dns": 90.0,
}


def modeled_rto(posture: str) -> float:
    if posture == "backup_restore":  # the services need the restored endpoint: in sequence
        return REAL_S["restore"] + REAL_S["new_service"] + REAL_S["dns"]
    app = REAL_S["scale_up"] if posture == "warm_standby" else REAL_S["new_service"]
    return max(REAL_S["promote"], app) + REAL_S["dns"]


def posture_config(posture: str) -> str:
    import yaml

    data = yaml.safe_load((ROOT / CONFIG).read_text())
    data["dr"] = {"posture": posture}
    if posture == "backup_restore":
        data["database"]["dr_replica"] = False
    path = Path(tempfile.mkdtemp(prefix=f"tierbook-bench-{posture}-")) / f"{posture}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def one_failover(
    endpoint: str,
    args: argparse.Namespace,
    *,
    dark: bool,
    planned: bool = False,
    config: str = CONFIG,
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
        cfg = fresh_account(endpoint, mp, config)
        forget_connections()
        provision(config=config)
        push_images(cfg)
        control.timings(
            rds_create_seconds=args.restore,
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
            return move(config=config, approved=True, reason="benchmark")
        finally:
            control.clear_faults()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promote", type=float, default=6.0, help="RDS promote/modify seconds")
    parser.add_argument("--restore", type=float, default=12.0, help="RDS restore seconds")
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
            pilot = one_failover(endpoint, args, dark=False, config=posture_config("pilot_light"))
            restored = one_failover(
                endpoint, args, dark=False, config=posture_config("backup_restore")
            )
    finally:
        server.stop()
    print(
        f"sandbox: promote {args.promote:g}s, restore {args.restore:g}s, ECS rollout {args.rollout:g}s, "
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
    print("DR postures (healthy primary; bound: the critical path of the run's own steps):")
    print(f"  {'posture':<14} {'RTO':>7} {'bound':>7} {'RTO/bound':>10} {'modeled at AWS':>15}")
    postures = (
        ("warm_standby", healthy),
        ("pilot_light", pilot),
        ("backup_restore", restored),
    )
    for posture, report in postures:
        name = posture.replace("_", " ")
        if report["outcome"] != "succeeded":
            print(f"  {name:<14} {report['outcome']}: {report.get('error')}")
            continue
        ran = {s["step"]: seconds(s) for s in report["steps"]}
        took, best = float(report["metrics"]["rto_seconds"]), critical_path(ran)
        model = modeled_rto(posture) / 60
        rpo = report["metrics"].get("rpo_seconds")
        print(
            f"  {name:<14} {took:6.1f}s {best:6.1f}s {took / best:10.2f} {model:11.1f} min"
            f"   RPO {rpo}s"
        )
    print(f"  (modeled with {REAL_S}; seed 000's hand-run failover: ~28 min)")


if __name__ == "__main__":
    main()
