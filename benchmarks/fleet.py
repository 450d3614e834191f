"""Fleet readiness benchmark, all figures from one process against a sandbox in a process of
its own with ``--envs`` environments (default 10) provisioned side by side in one account:

* one environment's readiness drill (the second of two runs: imports and clients warm);
* the fleet's readiness (``fleet(runbook="readiness")``), every environment in one wave, each a
  child flow run in parallel;
* the same ``--envs`` readiness drills run one after the other;
* one environment's drill and the fleet again, reporting to a Prefect server on PostgreSQL (a
  throwaway cluster the benchmark starts; skipped when PostgreSQL is not installed). The test
  harness's server is SQLite, which takes one writer at a time: concurrent child runs collide
  there (503s, retried after seconds), as they do not on a production server.

Every AWS answer is delayed ``--latency-ms`` while measuring (AWS's own API latency, which the
emulator lacks). Each row also prints the CPU seconds of this process (the runbooks and their
Prefect client) and of the sandbox's (one Python process answering every environment, where
AWS scales out): neither can end the fleet before its own CPU work is done, so the larger of the
two over one environment's wall time is what this machine allows, whatever the target; and how
busy the whole machine was (the Prefect server's process included): near 100%, the fleet waits
for this machine's cores, not for tierbook.
Target: the fleet in at most 2x one environment's time.

Run: ``python benchmarks/fleet.py [--envs N] [--latency-ms MS]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import testing  # noqa: E402

TEMPLATE = ROOT / "configs" / "fleets" / "blog-sandbox.yaml"


def write_fleet(folder: Path, n: int) -> tuple[str, list[str]]:
    """``n`` environments like the sandbox fleet's blog (own app name, domain and networks)
    and a fleet file with all of them in one wave; the fleet file and the config paths."""
    base = yaml.safe_load(TEMPLATE.read_text())
    configs = []
    for i in range(n):
        data = {
            **base,
            "app": f"bench{i}",
            "edge": {**base["edge"], "domain": f"bench{i}.example.com"},
            "network": {
                **base["network"],
                "primary": {**base["network"]["primary"], "cidr": f"10.{100 + i}.0.0/16"},
                "dr": {**base["network"]["dr"], "cidr": f"10.{150 + i}.0.0/16"},
            },
        }
        path = folder / f"bench{i}.yaml"
        path.write_text(yaml.safe_dump(data))
        configs.append(str(path))
    fleet = {
        "name": "bench",
        "environments": {f"bench{i}": {"config": c} for i, c in enumerate(configs)},
        "waves": [[f"bench{i}" for i in range(n)]],
    }
    path = folder / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet))
    return str(path), configs


class ApiRetries(logging.Handler):
    """Counts the Prefect client's retried requests (a 503 from a busy API database)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Another attempt will be made" in record.getMessage():
            self.count += 1


class Timed:
    """Wall and CPU seconds of one call (this process's, and the sandbox's when it says), and
    what it returned."""

    sandbox: Any = None  # the Sandbox answering

    def __init__(self, fn: Callable[[], Any]) -> None:
        emulator = Timed.sandbox.cpu_seconds() if Timed.sandbox else None
        machine = testing.machine_ticks()
        wall, cpu = time.perf_counter(), time.process_time()
        self.result = fn()
        self.wall = time.perf_counter() - wall
        self.cpu = time.process_time() - cpu
        after = Timed.sandbox.cpu_seconds() if Timed.sandbox else None
        self.emulator = None if emulator is None or after is None else after - emulator
        busy, total = (b - a for a, b in zip(machine, testing.machine_ticks(), strict=True))
        self.busy = busy / total if total else None  # every process's, servers included

    def row(self, label: str) -> str:
        sandbox = "" if self.emulator is None else f", sandbox {self.emulator:5.1f}s"
        machine = "" if self.busy is None else f", machine {self.busy:4.0%} busy"
        return f"  {label:<39}{self.wall:6.1f}s  (CPU: runbooks {self.cpu:5.1f}s{sandbox}{machine})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=10, help="environments in the fleet")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every answer")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tierbook-bench-"))
    settings = {
        **testing.isolated_environment(home),
        **testing.poll_environment(testing.TEST_POLL_SCALE),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    testing.set_environment(settings)  # before Prefect is imported: it reads them once
    print(
        testing.describe(
            "fleet benchmark settings:",
            settings,
            emulator="sandbox in a process of its own (python -m sandbox), as AWS is",
            environments=args.envs,
            latency=f"{args.latency_ms:g} ms added to every AWS answer while measuring",
        )
    )

    import pytest
    from prefect.testing.utilities import prefect_test_harness

    from configs import load_config
    from flows.fleet import fleet
    from flows.provision import provision
    from flows.readiness import readiness_drill
    from sandbox.testing import (
        NoPostgres,
        fresh_account,
        postgres,
        push_images,
        running_server,
        sandbox_process,
    )
    from sandbox.testing.prefect import reporting_to
    from tasks.core.aws import forget_connections

    def measure() -> tuple[Timed, Timed, int]:
        """One environment's drill (after a warm-up), then the fleet (its report the result),
        and the Prefect API requests its client retried."""
        readiness_drill(config=configs[0])  # warm: imports, clients, the Prefect API
        retries = ApiRetries()
        client_log = logging.getLogger("prefect.client")
        client_log.setLevel(logging.DEBUG)
        client_log.propagate = False  # counted, not printed
        client_log.addHandler(retries)
        try:
            one = Timed(lambda: readiness_drill(config=configs[0]))
            many = Timed(lambda: fleet(fleet=fleet_file, runbook="readiness"))
        finally:
            client_log.removeHandler(retries)
        return one, many, retries.count

    os.chdir(ROOT)
    fleet_file, configs = write_fleet(home, args.envs)
    on_pg: tuple[Timed, Timed, int] | None = None
    with sandbox_process() as sandbox, pytest.MonkeyPatch.context() as mp:
        endpoint, control = sandbox.endpoint, sandbox.control
        Timed.sandbox = sandbox
        fresh_account(endpoint, mp)
        forget_connections()
        with prefect_test_harness(server_startup_timeout=180):
            built = time.perf_counter()
            for config in configs:
                done = provision(config=config)
                assert done["outcome"] == "succeeded", done.get("error")
                push_images(load_config(config))
            print(f"provisioned {args.envs} environments in {time.perf_counter() - built:.0f}s")
            control.set_faults({"kind": "latency", "latency_ms": args.latency_ms})
            one, many, fleet_retries = measure()
            sequential = Timed(lambda: [readiness_drill(config=c) for c in configs])
        try:
            with (
                postgres() as database,
                running_server(
                    Path(tempfile.mkdtemp(dir=home, prefix="pg-server-")),
                    services=("task_run_recorder", "event_persister"),
                    database=database,
                ) as server,
                reporting_to(server),
            ):
                on_pg = measure()
        except NoPostgres as exc:
            print(f"skipped the PostgreSQL-backed server: {exc}")
        control.clear_faults()
    report = many.result
    outcomes = [r["outcome"] for r in report["environments"]]
    print(f"fleet outcome: {report['outcome']} ({outcomes.count('succeeded')}/{len(outcomes)})")
    print("Prefect server on SQLite (the test harness):")
    print_rows(args.envs, one, many)
    print(
        sequential.row(f"{args.envs:>2} readiness drills one by one")
        + f"   sequential / fleet = {sequential.wall / many.wall:.2f}"
    )
    print(
        f"  Prefect API requests retried during the fleet run: {fleet_retries} "
        "(503s from SQLite under concurrent writes; each waits ~2 s)"
    )
    if on_pg is not None:
        pg_one, pg_many, pg_retries = on_pg
        pg_outcomes = [r["outcome"] for r in pg_many.result["environments"]]
        print(
            "Prefect server on PostgreSQL "
            f"({pg_outcomes.count('succeeded')}/{len(pg_outcomes)} succeeded):"
        )
        print_rows(args.envs, pg_one, pg_many)
        print(f"  Prefect API requests retried during the fleet run: {pg_retries}")


def print_rows(envs: int, one: Timed, many: Timed) -> None:
    print(one.row("one environment's readiness"))
    print(
        many.row(f"fleet readiness, {envs:>2} environments")
        + f"   fleet / one = {many.wall / one.wall:.2f}"
    )
    floor = max(many.cpu, many.emulator or 0.0) / one.wall
    print(
        f"  one process's CPU (the runbooks', the sandbox's) allows fleet / one >= {floor:.2f}; "
        f"target: fleet within 2x one  {'OK' if many.wall <= 2 * one.wall else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
