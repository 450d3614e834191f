"""A fleet through a work pool, end to end: its own Prefect server, a process pool, the
runbooks deployed with ``prefect deploy --all`` (prefect.yaml), two workers; the fleet's
children run on both, a stopped fleet cancels them, and two fleet failovers of one fleet at
once are refused by tierbook's region-move lock, not by Prefect.

Every process it starts is in its own process group, stopped at the end of the module
whatever happens. The server is up once its database answers and every client (this
process's, the workers', the CLI's) retries a 503 (SQLite busy) with more attempts than
Prefect's default."""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from deployments.pool import POOL
from sandbox.testing import (
    ROOT,
    SERVER_TEST_TIMEOUT_S,
    NoPostgres,
    PrefectServer,
    Stack,
    postgres,
)
from sandbox.testing.prefect import reporting_to, running_server, stop
from tests.failover.test_failover_e2e import assert_failed_over
from tests.fleet.conftest import FLEET

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(SERVER_TEST_TIMEOUT_S)]

WORKERS = ("worker-a", "worker-b")
WORKER = [sys.executable, "-m", "prefect", "worker", "start", "--type", "process"]
# A busy SQLite answers 503: retried by every Prefect client, more times than by default.
CLIENT_RETRIES = {"PREFECT_CLIENT_MAX_RETRIES": "10"}


@pytest.fixture(scope="module")
def pool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """On PostgreSQL where it is installed: SQLite answers concurrent writers 503, and the
    clients' retries back off for up to a minute; a worker stuck in them polls nothing while
    the other takes every run (seen once from a clean clone). SQLite otherwise."""
    with contextlib.ExitStack() as stack:
        try:
            database: str | None = stack.enter_context(postgres())
        except NoPostgres:
            database = None
        home = tmp_path_factory.mktemp("pool-server")
        yield stack.enter_context(running_server(home, database=database))


@pytest.fixture(scope="module")
def prefect_harness(pool_server: PrefectServer) -> Iterator[None]:
    """This module's flows (the stacks' provision, the fleets) report to its own server."""
    with reporting_to(pool_server):
        yield


def pool_env(api: str, home: Path) -> dict[str, str]:
    """A worker's (and the prefect CLI's) environment: this process's AWS and tierbook
    settings, the test server, the results where this process reads them back."""
    from prefect.settings import get_current_settings

    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        **CLIENT_RETRIES,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(get_current_settings().results.local_storage_path),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PYTHONPATH": str(ROOT),
    }


def prefect_cli(args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, log.read_text()[-3000:]


@pytest.fixture(scope="module")
def workers(
    pool_server: PrefectServer,
    fleet_stacks: dict[str, Stack],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Path]]:
    """The pool, the deployments of prefect.yaml on it, and two workers taking one run at a
    time each: the worker's name -> its log."""
    home = tmp_path_factory.mktemp("pool")
    env = pool_env(pool_server.api, home / "prefect")
    prefect_cli(["work-pool", "create", POOL, "--type", "process"], env, home / "setup.log")
    prefect_cli(["--no-prompt", "deploy", "--all"], env, home / "setup.log")
    procs: list[subprocess.Popen[bytes]] = []
    logs = {name: home / f"{name}.log" for name in WORKERS}
    try:
        for name, log in logs.items():
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [*WORKER, "--pool", POOL, "--name", name, "--limit", "1"],
                        cwd=ROOT,
                        env={**env, "PREFECT_HOME": str(home / name)},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield logs
    finally:
        for proc in procs:
            stop(proc)


def submitted(log: Path) -> set[str]:
    """The flow runs a worker started: it submitted them and did not lose them to the other
    worker (the server refuses a second Pending)."""
    text = log.read_text()
    uuid = r"'([0-9a-f-]{36})'"
    return set(re.findall(f"submitting flow run {uuid}", text)) - set(
        re.findall(f"Aborted submission of flow run {uuid}", text)
    )


def one_wave(tmp_path: Path) -> str:
    """The sandbox fleet with both environments in one wave: two children at once."""
    data = yaml.safe_load(Path(FLEET).read_text())
    for entry in data["environments"].values():
        if entry["config"].endswith(".yaml"):
            entry["config"] = str(Path(FLEET).resolve().parent / entry["config"])
    data["waves"] = [sorted(data["environments"])]
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_fleet_readiness_runs_on_both_workers_of_the_pool(
    fleet_stacks: dict[str, Stack], workers: dict[str, Path], tmp_path: Path
) -> None:
    out = CliRunner().invoke(
        app, ["fleet", "readiness", "-f", one_wave(tmp_path), "--work-pool", POOL, "-o", "json"]
    )
    assert out.exit_code == 0, out.output + "".join(p.read_text()[-2000:] for p in workers.values())
    report = json.loads(out.output)
    assert report["metrics"]["work_pool"] == POOL
    rows = {r["environment"]: r for r in report["environments"]}
    for name, stack in fleet_stacks.items():
        assert rows[name]["stack"] == stack.cfg.stack
        assert rows[name]["outcome"] == "succeeded", rows[name]["error"]
        assert rows[name]["readiness"] == "pass", rows[name]
        assert rows[name]["findings"].endswith("checks pass")
    # Each environment's run is a child of the fleet's run, a run of its pool deployment.
    children = runs_of(report["flow_run_id"])
    assert sorted(r.name for r in children) == [
        f"drill-readiness-{stack.cfg.stack}" for _, stack in sorted(fleet_stacks.items())
    ]
    assert all(r.work_pool_name == POOL and r.deployment_id for r in children)
    # ... taken by both workers (one run at a time each).
    taken = {name: submitted(log) & {str(r.id) for r in children} for name, log in workers.items()}
    assert all(taken.values()), taken


def test_a_stopped_fleet_cancels_its_runs_on_the_pool(
    fleet_stacks: dict[str, Stack], workers: dict[str, Path], tmp_path: Path
) -> None:
    """Ctrl-C on the fleet (the CLI sets STOPPING) while its children run on the workers:
    each child is cancelled, and its worker stops it; the fleet does not wait for them."""
    from flows.fleet import fleet
    from tasks.core.retry import STOPPING

    control = next(iter(fleet_stacks.values())).control
    stacks = sorted(s.cfg.stack for s in fleet_stacks.values())
    names = [f"drill-readiness-{stack}" for stack in stacks]
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["report"] = fleet(fleet=one_wave(tmp_path), runbook="readiness", work_pool=POOL)
        except BaseException as exc:  # the fleet may end interrupted rather than failed
            outcome["error"] = exc

    started = time.time()
    # Every RDS call of the drills hangs and is retried for its whole deadline: no child can end
    # on its own before the stop, however late a loaded machine starts it (a slowed drill did).
    control.set_faults({"kind": "down", "services": ["rds"], "hang_seconds": 15})
    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,))
    try:
        thread.start()
        children = wait_children(names, started, {"RUNNING"})
        STOPPING.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the stopped fleet still waits for its runs"
        ended = wait_children(names, started, {"CANCELLED"}, timeout_s=120)
    finally:
        STOPPING.clear()
        control.clear_faults()
        thread.join(timeout=60)
    assert {r.id for r in ended} == {r.id for r in children}
    report = outcome.get("report")
    if report is not None:  # else it ended interrupted: nothing more to read
        errors = [r["error"] for r in report["environments"]]
        assert all("cancelled, the fleet was interrupted" in e for e in errors), errors


def wait_children(
    names: list[str], since: float, states: set[str], timeout_s: float = 240
) -> list[Any]:
    """The latest run of each of ``names`` created after ``since`` once all are in ``states``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + timeout_s
    found: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names))
            )
            found = {}
            for r in sorted(runs, key=lambda r: r.created):
                if r.created.timestamp() >= since - 1:
                    found[r.name] = r
            if len(found) == len(names) and all(
                r.state_type.value in states for r in found.values()
            ):
                return list(found.values())
            time.sleep(1)
    seen = {n: r.state_type.value for n, r in found.items()}
    raise AssertionError(f"the fleet's runs never all reached {states}: {seen}")


def runs_of(run_id: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])
                )
            )
        )


def test_two_fleet_failovers_at_once_one_is_refused_by_the_lock(
    fleet_stacks: dict[str, Stack], workers: dict[str, Path]
) -> None:
    from flows.fleet import fleet
    from tasks.core.locks import lock_key
    from tasks.core.records import get_record

    shop = fleet_stacks["shop"]
    reports: dict[int, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def failover(i: int) -> None:
        try:
            reports[i] = fleet(
                fleet=FLEET,
                runbook="failover",
                approved=True,
                reason=f"fleet {i}",
                only="shop",
                work_pool=POOL,
            )
        except BaseException as exc:
            errors.append(exc)
            raise

    def start(i: int) -> threading.Thread:
        # With this thread's context: its Prefect settings name the module's server.
        thread = threading.Thread(target=contextvars.copy_context().run, args=(failover, i))
        thread.start()
        return thread

    # The promotion takes a while, so the first fleet's run holds shop's lock while the
    # second's comes for it (on the other worker: each takes one run at a time).
    before = shop.control.timings()["rds_modify_seconds"]
    shop.control.timings(rds_modify_seconds=30)
    try:
        threads = [start(0)]
        held = lock_key(shop.cfg, "region-move")
        deadline = time.monotonic() + 180
        while get_record(shop.cfg, held) is None and not errors and time.monotonic() < deadline:
            time.sleep(0.5)
        threads.append(start(1))
        for t in threads:
            t.join(timeout=240)
    finally:
        shop.control.timings(rds_modify_seconds=before)
    assert not errors and len(reports) == 2, f"a fleet run did not end: {errors!r}"
    first, second = (reports[i]["environments"][0] for i in range(2))
    assert first["outcome"] == "succeeded" and first["rto_seconds"] > 0, first["error"]
    assert second["outcome"] == "refused", (second["outcome"], second["error"])
    assert "region-move is held by" in second["error"] and "lock release" in second["error"]
    assert_failed_over(shop)
    taken = {name: submitted(log) for name, log in workers.items()}
    for i in range(2):
        (child,) = runs_of(reports[i]["flow_run_id"])
        # Approved by its own fleet's grant, not paused; each on a worker of its own.
        assert child.name == "failover-shop-sandbox" and child.work_pool_name == POOL
        assert child.state_type.value == ("COMPLETED" if i == 0 else "FAILED")
        assert sum(str(child.id) in ids for ids in taken.values()) == 1
