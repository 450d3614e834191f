"""``tierbook destroy`` from a terminal: exit codes, JSON, confirmation, a partial stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from configs.models import Config
from sandbox.testing import ROOT, plain

CONFIG = "configs/sandbox.yaml"


def _queues(cfg: Config) -> list[str]:
    return [u.rsplit("/", 1)[-1] for u in plain(cfg, "sqs").list_queues().get("QueueUrls", [])]


@pytest.fixture
def leftover(account: Config) -> Config:
    """What an interrupted provision might leave: one of the stack's queues."""
    plain(account, "sqs").create_queue(QueueName="shop-sandbox-orders")
    return account


def test_without_yes_and_without_a_terminal_it_refuses(
    leftover: Config, prefect_harness: None
) -> None:
    out = CliRunner().invoke(app, ["destroy", "-c", CONFIG, "-o", "json"])
    assert out.exit_code == 2, out.output
    assert "needs approval (--yes" in json.loads(out.stdout)["error"]
    assert _queues(leftover) == ["shop-sandbox-orders"]


def test_a_terminal_asks_and_no_means_nothing_is_deleted(
    leftover: Config, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cli.destroy_cmd.interactive", lambda: True)
    out = CliRunner().invoke(app, ["destroy", "-c", CONFIG], input="y\n")  # not the name
    assert out.exit_code == 2, out.output
    assert "Delete every resource of shop-sandbox (account 123456789012)" in out.output
    assert _queues(leftover) == ["shop-sandbox-orders"]
    out = CliRunner().invoke(app, ["destroy", "-c", CONFIG, "-o", "json"], input="shop-sandbox\n")
    assert out.exit_code == 0, out.output
    assert _queues(leftover) == []


def test_plan_then_yes_deletes_a_partial_stack(leftover: Config, prefect_harness: None) -> None:
    plan = CliRunner().invoke(app, ["destroy", "-c", CONFIG, "--plan", "-o", "json"])
    assert plan.exit_code == 0, plan.output
    planned = json.loads(plan.stdout)
    assert [(c["resource"], c["name"]) for c in planned["changes"]] == [
        ("sqs:queue", "shop-sandbox-orders")
    ]
    assert _queues(leftover) == ["shop-sandbox-orders"]
    done = CliRunner().invoke(app, ["destroy", "-c", CONFIG, "--yes", "-o", "json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["metrics"]["deleted"] >= 1  # the queue, and the lock table destroy made
    assert report["metrics"]["final_snapshot"] == "none"
    assert _queues(leftover) == []


def test_a_protected_environment_exits_2(
    account: Config, prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cli.destroy_cmd.interactive", lambda: True)  # not even asked
    protected = tmp_path / "protected.yaml"
    text = (ROOT / CONFIG).read_text()
    protected.write_text(text.replace("account_id:", "protected: true\naccount_id:", 1))
    out = CliRunner().invoke(app, ["destroy", "-c", str(protected)])
    assert out.exit_code == 2, out.output
    assert "shop-sandbox is protected" in out.output
    assert "Delete every resource" not in out.output
