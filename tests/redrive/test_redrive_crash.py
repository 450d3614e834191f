"""A ``kill -9`` of a real ``tierbook redrive``: its lock lapses within the lease, a re-run
starts and finishes, and no message is lost.

The lock's lease is shortened with ``TIERBOOK_LOCK_LEASE_S`` (a minute by default).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from configs.models import Config
from configs.names import names_for
from sandbox.testing import SandboxQueues, standard_messages
from tasks.core.retry import wait_for

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "sandbox.yaml")
LEASE_S = 3.0
COUNT = 150
# Two CLI processes, each starting its own local Prefect API: minutes on a busy machine.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def redrive_cli(endpoint: str, home: Path, *args: str) -> subprocess.Popen[str]:
    """``tierbook redrive`` in a session of its own (the Prefect API it starts included), its
    output in ``home/out.log``."""
    home.mkdir(parents=True)
    env = {
        **os.environ,
        "TIERBOOK_AWS_ENDPOINT_URL": endpoint,
        "TIERBOOK_HOME": str(home / "home"),
        "PREFECT_HOME": str(home / "prefect"),
        "TIERBOOK_LOCK_LEASE_S": str(LEASE_S),
    }
    env.pop("PREFECT_API_URL", None)
    with (home / "out.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "redrive", "orders", "--config", CONFIG, "--yes", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def output(home: Path) -> str:
    return (home / "out.log").read_text()


def kill_session(proc: subprocess.Popen[str]) -> None:
    """What the killed run left behind (its local Prefect API) goes too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def redrive_locks(cfg: Config, endpoint: str) -> list[dict[str, Any]]:
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=cfg.regions.primary,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    table = names_for(cfg).lock_table
    if table not in ddb.list_tables()["TableNames"]:
        return []
    items = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    return [i for i in items if i["lock_id"]["S"].startswith(f"{cfg.stack}/redrive-")]


def test_a_rerun_after_kill_9_starts_within_the_lease_and_loses_nothing(
    sandbox_cfg: Config, queues: SandboxQueues, clean_aws: str, tmp_path: Path
) -> None:
    orders = queues.pairs["orders"]
    queues.fill(orders.dlq, standard_messages(COUNT))
    first = redrive_cli(
        clean_aws, tmp_path / "first", "--visibility-timeout", "2", "--rate", "20", "--workers", "3"
    )
    try:
        wait_for(
            lambda: queues.count(orders.source),
            until=lambda n: n >= 20 or first.poll() is not None,
            what="the first run to move its first messages",
            timeout_s=180,
            interval_s=5,
        )
        assert first.poll() is None, output(tmp_path / "first")  # still running: kill it mid-run
        [lock] = redrive_locks(sandbox_cfg, clean_aws)
        assert lock["pid"]["N"] == str(first.pid)  # the live run holds the lock
        first.send_signal(signal.SIGKILL)  # the run only: a crash, nothing cleaned up
        first.wait(timeout=30)
        killed_at = time.time()
        rerun(sandbox_cfg, queues, clean_aws, tmp_path, killed_at, first.pid)
    finally:
        kill_session(first)


def rerun(
    cfg: Config, queues: SandboxQueues, clean_aws: str, tmp_path: Path, killed_at: float, pid: int
) -> None:
    orders = queues.pairs["orders"]
    originals = [m["MessageBody"] for m in standard_messages(COUNT)]
    assert 0 < queues.count(orders.source) < len(originals)

    # The dead run's lock is still there, and lapses one lease after its last renewal.
    [lock] = redrive_locks(cfg, clean_aws)
    assert lock["pid"]["N"] == str(pid)
    wait_for(
        lambda: float(redrive_locks(cfg, clean_aws)[0]["expires_at"]["N"]) < time.time(),
        until=bool,
        what="the killed run's lock to lapse",
        timeout_s=90,
        interval_s=25,
    )
    started = time.time()
    second = redrive_cli(clean_aws, tmp_path / "second", "--visibility-timeout", "2")
    try:
        second.wait(timeout=400)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the re-run did not finish: {output(tmp_path / 'second')}")
    finally:
        kill_session(second)
    out = output(tmp_path / "second")
    print(f"re-run started {started - killed_at:.1f}s after the kill (lease {LEASE_S:g}s)")
    assert second.returncode == 0, out
    assert "held by" not in out

    # Nothing lost: the DLQ is empty, every original is in the source queue (a batch the dead
    # run sent but had not yet deleted from the DLQ may be there twice).
    assert queues.count(orders.dlq) == 0
    moved = [m["Body"] for m in queues.drain(orders.source)]
    assert set(moved) == set(originals)
    assert 0 <= len(moved) - len(originals) <= 3 * 10  # at most one batch in flight per worker
    assert redrive_locks(cfg, clean_aws) == []  # the re-run released its lock
