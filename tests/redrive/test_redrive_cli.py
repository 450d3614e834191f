"""The CLI: exit codes, JSON output, and the demo that fills its own DLQ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from sandbox.testing import SandboxQueues, standard_messages

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "sandbox.yaml")
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]


def test_a_bad_filter_exits_2_before_any_aws_call(queues: SandboxQueues) -> None:
    orders = queues.pairs["orders"]
    queues.fill(orders.dlq, standard_messages(3))
    result = CliRunner().invoke(
        app, ["redrive", "orders", "-c", CONFIG, "--filter", "kind=refund", "-o", "json"]
    )
    assert result.exit_code == 2, result.output
    assert "KEY OP VALUE" in result.output
    assert queues.visible(orders.dlq) == 3


def test_native_mode_refuses_engine_only_options(queues: SandboxQueues) -> None:
    result = CliRunner().invoke(
        app, ["redrive", "orders", "-c", CONFIG, "--mode", "native", "--dry-run"]
    )
    assert result.exit_code == 2
    assert "--dry-run needs --mode engine" in result.output


def test_json_output_carries_the_counts(queues: SandboxQueues) -> None:
    orders = queues.pairs["orders"]
    queues.fill(orders.dlq, standard_messages(12))
    result = CliRunner().invoke(
        app, ["redrive", "orders", "-c", CONFIG, "--filter", "attr.kind=refund", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["metrics"]["moved"] == 6 and report["metrics"]["filtered_out"] == 6
    assert queues.count(orders.source) == 6


def test_the_demo_redrives_a_dlq_it_filled(sandbox_cfg) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["redrive-demo", "-c", CONFIG, "--count", "20", "-o", "json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    assert metrics["dead_lettered"] == 20 and metrics["dry_run_would_move"] == 10
    assert metrics["moved"] == 20 and metrics["dlq_left"] == 0 and metrics["source_now"] == 20
