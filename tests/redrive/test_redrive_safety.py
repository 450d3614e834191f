"""Nothing lost: a killed run, a Ctrl-C, a canary that comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from configs.errors import StepFailed
from flows.redrive import redrive
from sandbox.testing import SandboxQueues, make_queues, standard_messages
from tasks.core.retry import wait_for
from tasks.runbooks.redrive.engine import Engine, EngineSettings, most_duplicates
from tasks.runbooks.redrive.routes import find_route

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "sandbox.yaml")
pytestmark = pytest.mark.e2e


def bodies(queues: SandboxQueues, url: str) -> list[str]:
    return [m["Body"] for m in queues.drain(url)]


def cli(endpoint: str, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "TIERBOOK_AWS_ENDPOINT_URL": endpoint,
        "TIERBOOK_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "redrive", "orders", "--config", CONFIG, "--yes", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_some_moved(queues: SandboxQueues, url: str, proc: subprocess.Popen[str]) -> int:
    return wait_for(
        lambda: queues.count(url),
        until=lambda n: n >= 30 or proc.poll() is not None,
        what="the redrive under test to move its first messages",
        timeout_s=180,
        interval_s=5,
    )


@pytest.mark.slow
def test_a_killed_run_loses_nothing(queues: SandboxQueues, clean_aws: str, tmp_path: Path) -> None:
    orders = queues.pairs["orders"]
    originals = [m["MessageBody"] for m in standard_messages(300)]
    queues.fill(orders.dlq, standard_messages(300))
    proc = cli(clean_aws, tmp_path, "--visibility-timeout", "2", "--rate", "40", "--workers", "3")
    try:
        wait_until_some_moved(queues, orders.source, proc)
        assert proc.poll() is None, proc.communicate()[0]  # still running: kill it mid-run
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Past the visibility timeout, whatever the dead run held is visible again.
    wait_for(
        lambda: queues.visible(orders.dlq) + queues.visible(orders.source),
        until=lambda n: n >= len(originals),
        what="every message visible again",
        timeout_s=30,
        interval_s=50,
    )
    found = bodies(queues, orders.dlq) + bodies(queues, orders.source)
    assert set(found) == set(originals)
    duplicates = len(found) - len(originals)
    assert 0 <= duplicates <= most_duplicates(3)  # sent, not yet deleted: 80 for 3 workers


@pytest.mark.slow
def test_ctrl_c_on_the_cli_stops_cleanly(
    queues: SandboxQueues, clean_aws: str, tmp_path: Path
) -> None:
    orders = queues.pairs["orders"]
    queues.fill(orders.dlq, standard_messages(300))
    proc = cli(clean_aws, tmp_path, "--rate", "40", "--workers", "2")
    wait_until_some_moved(queues, orders.source, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)

    assert proc.returncode == 1, out
    assert "interrupted" in out
    moved = queues.count(orders.source)
    # Everything not moved is visible in the DLQ again at once, nothing duplicated.
    assert queues.visible(orders.dlq) == 300 - moved
    assert 0 < moved < 300


def test_interrupt_finishes_batches_in_flight_and_releases_the_rest(
    sandbox_cfg,
    queues: SandboxQueues,  # type: ignore[no-untyped-def]
) -> None:
    orders = queues.pairs["orders"]
    queues.fill(orders.dlq, standard_messages(120))
    route = find_route.fn(sandbox_cfg, "orders")

    def ctrl_c_after_some(counts: dict) -> None:  # runs on the calling (main) thread
        if counts["moved"] >= 20 and not counts["interrupted"]:
            signal.raise_signal(signal.SIGINT)

    tally = Engine(
        sandbox_cfg, route, EngineSettings(workers=2, rate=60), on_progress=ctrl_c_after_some
    ).run()

    assert tally.interrupted and 20 <= tally.moved < 120
    assert queues.count(orders.source) == tally.moved
    assert queues.visible(orders.dlq) == 120 - tally.moved


@pytest.mark.usefixtures("prefect_harness")
def test_a_canary_that_comes_back_stops_the_redrive(sandbox_cfg, clean_aws: str) -> None:  # type: ignore[no-untyped-def]
    queues = make_queues(sandbox_cfg, clean_aws, max_receive=1)
    orders = queues.pairs["orders"]
    queues.fill(orders.dlq, standard_messages(60))
    stop = threading.Event()

    def failing_consumer() -> None:  # receives and never deletes: back to the DLQ
        while not stop.is_set():
            queues.sqs.receive_message(
                QueueUrl=orders.source,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                WaitTimeSeconds=1,
            )

    consumer = threading.Thread(target=failing_consumer, daemon=True)
    consumer.start()
    try:
        with pytest.raises(StepFailed, match="canary: 5 of 5"):
            redrive(config=CONFIG, queue="orders", canary=5, canary_wait_s=20)
    finally:
        stop.set()
        consumer.join(timeout=10)
    assert queues.count(orders.dlq) == 60
    assert queues.count(orders.source) == 0


@pytest.mark.usefixtures("prefect_harness")
def test_a_canary_that_stays_away_lets_the_rest_follow(queues: SandboxQueues) -> None:
    orders = queues.pairs["orders"]
    queues.fill(orders.dlq, standard_messages(40))

    report = redrive(config=CONFIG, queue="orders", canary=5, canary_wait_s=1)

    assert report["metrics"]["moved"] == 40
    assert queues.count(orders.dlq) == 0 and queues.count(orders.source) == 40
    assert any(s["step"].startswith("canary") for s in report["steps"])
