"""Run locks against the sandbox: a heartbeat keeps a live run's lock, a dead run's lapses
within its lease, a run never renews or releases a lock it does not hold, and the operator's
``tierbook lock list`` / ``release`` (recorded, refused without a reason).

Leases are shortened with ``TIERBOOK_LOCK_LEASE_S`` (the heartbeat beats three times a lease).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from cli.main import app
from configs.models import Config
from configs.names import names_for
from sandbox.testing import ROOT
from tasks.core.errors import LockHeld
from tasks.core.locks import hold
from tasks.core.retry import wait_for

CONFIG = str(ROOT / "configs" / "sandbox.yaml")
LEASE_S = 1.5


@pytest.fixture
def cfg(sandbox_cfg: Config, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("TIERBOOK_LOCK_LEASE_S", str(LEASE_S))
    return sandbox_cfg


class Table:
    """The emulator's lock table, read and written with plain boto3."""

    def __init__(self, cfg: Config, endpoint: str) -> None:
        self.cfg = cfg
        self.name = names_for(cfg).lock_table
        self.ddb = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name=cfg.regions.primary,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    def ensure(self) -> None:
        from tasks.core.locks import ensure_lock_table

        ensure_lock_table(self.cfg, self.cfg.regions.primary)

    def get(self, name: str) -> dict[str, Any] | None:
        key = {"lock_id": {"S": f"{self.cfg.stack}/{name}"}}
        item = self.ddb.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def put(self, name: str, *, owner: str, expires_at: float, **extra: str) -> None:
        item: dict[str, Any] = {
            "lock_id": {"S": f"{self.cfg.stack}/{name}"},
            "kind": {"S": "lock"},
            "owner": {"S": owner},
            "holder": {"S": "someone"},
            "host": {"S": "elsewhere"},
            "pid": {"N": "4242"},
            "purpose": {"S": "a test"},
            "acquired_at": {"N": f"{time.time() - 100:.3f}"},
            "expires_at": {"N": f"{expires_at:.3f}"},
            **{k: {"S": v} for k, v in extra.items()},
        }
        self.ddb.put_item(TableName=self.name, Item=item)

    def releases(self) -> list[dict[str, Any]]:
        items = self.ddb.scan(TableName=self.name, ConsistentRead=True)["Items"]
        return [i for i in items if i.get("kind", {}).get("S") == "release"]


@pytest.fixture
def table(cfg: Config, clean_aws: str) -> Table:
    t = Table(cfg, clean_aws)
    t.ensure()
    return t


def expires(item: dict[str, Any] | None) -> float:
    assert item is not None
    return float(item["expires_at"]["N"])


# -- the heartbeat -----------------------------------------------------------------------------
def test_a_live_run_keeps_its_lock_past_the_lease_and_releases_it_at_the_end(
    cfg: Config, table: Table
) -> None:
    with hold(cfg, "test", region=cfg.regions.primary, purpose="heartbeat test") as held:
        first = table.get("test")
        assert first is not None and first["owner"]["S"] == held.owner
        assert first["pid"]["N"] == str(os.getpid()) and first["host"]["S"]
        assert first["holder"]["S"] and first["acquired_at"]["N"]
        first_lease_end = expires(first)
        # Well past the first lease, the item is still this run's and its lease still runs.
        wait_for(
            lambda: (time.time(), table.get("test")),
            until=lambda seen: seen[0] > first_lease_end + LEASE_S and expires(seen[1]) > seen[0],
            what="the clock past two leases with the lock renewed",
            timeout_s=30,
            interval_s=5,
        )
        now = table.get("test")
        assert now is not None and now["owner"]["S"] == held.owner
        with (
            pytest.raises(LockHeld, match="heartbeat test"),
            hold(cfg, "test", region=cfg.regions.primary, purpose="a second run"),
        ):
            pass
        assert held.renewals >= 2 and held.lost is None
    assert table.get("test") is None


def test_a_lapsed_lock_is_taken_over(cfg: Config, table: Table) -> None:
    table.put("test", owner="ghost:1:dead", expires_at=time.time() - 1)
    with hold(cfg, "test", region=cfg.regions.primary, purpose="the re-run") as held:
        item = table.get("test")
        assert item is not None and item["owner"]["S"] == held.owner != "ghost:1:dead"
        assert item["purpose"]["S"] == "the re-run"


def test_a_lock_whose_holder_was_killed_lapses_within_its_lease(
    cfg: Config, table: Table, clean_aws: str
) -> None:
    script = (
        "import sys, time\n"
        "from configs import load_config\n"
        "from tasks.core.locks import hold\n"
        f"cfg = load_config({CONFIG!r})\n"
        "with hold(cfg, 'test', region=cfg.regions.primary, purpose='doomed run'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    env = {**os.environ, "TIERBOOK_AWS_ENDPOINT_URL": clean_aws}
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        item = table.get("test")
        assert item is not None and item["pid"]["N"] == str(child.pid)
        with (
            pytest.raises(LockHeld, match="doomed run"),
            hold(cfg, "test", region=cfg.regions.primary, purpose="too early"),
        ):
            pass
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    killed_at = time.time()
    wait_for(
        lambda: expires(table.get("test")) < time.time(),
        until=bool,
        what="the killed holder's lease to lapse",
        timeout_s=LEASE_S + 30,
        interval_s=5,
    )
    assert expires(table.get("test")) <= killed_at + LEASE_S  # no renewal after the kill
    with hold(cfg, "test", region=cfg.regions.primary, purpose="the re-run") as held:
        item = table.get("test")
        assert item is not None and item["owner"]["S"] == held.owner


def test_a_run_never_renews_or_releases_a_lock_it_no_longer_holds(
    cfg: Config, table: Table
) -> None:
    far = round(time.time() + 600, 3)
    with hold(cfg, "test", region=cfg.regions.primary, purpose="slow run") as held:
        # An operator released it and another run took it meanwhile.
        table.put("test", owner="other:2:live", expires_at=far)
        wait_for(
            lambda: held.lost,
            until=bool,
            what="the heartbeat to notice",
            timeout_s=30,
            interval_s=5,
        )
        assert held.lost is not None and "someone" in held.lost
    item = table.get("test")
    assert item is not None and item["owner"]["S"] == "other:2:live" and expires(item) == far


@pytest.mark.usefixtures("prefect_harness")
def test_a_lock_taken_in_a_flow_run_names_the_run(cfg: Config, table: Table) -> None:
    from prefect import flow
    from prefect.runtime import flow_run

    @flow
    def locked() -> tuple[str, str]:
        with hold(cfg, "test", region=cfg.regions.primary, purpose="in a flow"):
            item = table.get("test")
            assert item is not None
            return str(flow_run.id), item["run"]["S"]

    run_id, recorded = locked()
    assert recorded == run_id


# -- tierbook lock list / release ------------------------------------------------------------
def lock_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["lock", *args, "-c", CONFIG])


def test_lock_list_shows_every_lock_with_its_lease(table: Table) -> None:
    table.put("deploy-web", owner="a:1:x", expires_at=time.time() + 600, run="run-123")
    table.put("redrive-orders", owner="b:2:y", expires_at=time.time() - 5)
    table.ddb.put_item(  # the readiness scorecard shares the table: not a lock
        TableName=table.name, Item={"lock_id": {"S": "shop-sandbox/readiness-scorecard"}}
    )
    done = lock_cli("list", "-o", "json")
    assert done.exit_code == 0, done.output
    rows = {r["name"]: r for r in json.loads(done.output)["locks"]}
    assert set(rows) == {"deploy-web", "redrive-orders"}
    web = rows["deploy-web"]
    assert (web["holder"], web["host"], web["pid"], web["run"]) == (
        "someone",
        "elsewhere",
        4242,
        "run-123",
    )
    assert not web["lapsed"] and web["lease_left_s"] > 500
    assert rows["redrive-orders"]["lapsed"]
    text = lock_cli("list")
    assert text.exit_code == 0 and "deploy-web" in text.output and "lapsed" in text.output


def test_lock_release_needs_a_reason_and_a_yes_then_is_recorded(table: Table) -> None:
    table.put("deploy-web", owner="a:1:x", expires_at=time.time() + 600)
    no_reason = lock_cli("release", "deploy-web", "--yes")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    blank = lock_cli("release", "deploy-web", "--reason", "  ", "--yes")
    assert blank.exit_code == 2
    no_yes = lock_cli("release", "deploy-web", "--reason", "its run died")
    assert no_yes.exit_code == 2 and "--yes" in no_yes.output
    assert table.get("deploy-web") is not None and table.releases() == []

    done = lock_cli("release", "deploy-web", "--reason", "its run died with the host", "--yes")
    assert done.exit_code == 0, done.output
    assert table.get("deploy-web") is None
    [record] = table.releases()
    assert record["reason"]["S"] == "its run died with the host"
    assert record["released_by"]["S"] and record["owner"]["S"] == "a:1:x"
    assert record["host"]["S"] == "elsewhere" and record["pid"]["N"] == "4242"

    unknown = lock_cli("release", "deploy-web", "--reason", "again", "--yes")
    assert unknown.exit_code == 2 and "no lock" in unknown.output
