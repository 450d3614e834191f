"""``tierbook failover`` from a terminal with no Prefect server: refusals, force, a held lock,
a primary region that does not answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.testing import Stack
from tasks.core.locks import hold
from tests.failover.test_failover_e2e import assert_failed_over
from tests.foundation.test_cli_runbook import run_cli

pytestmark = [pytest.mark.e2e]
DOWN = [
    "ecs",
    "rds",
    "application-autoscaling",
    "elasticloadbalancing",
    "ecr",
    "secretsmanager",
    "monitoring",
    "sts",
    "dynamodb",
    "ec2",
]


def said(done: object) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(str(getattr(done, "stderr", "")).split())


def untouched(stack: Stack) -> None:
    assert stack.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")
    assert stack.records()["primary"]["Failover"] == "PRIMARY"
    assert stack.service("primary", "web")["desiredCount"] == 2
    assert stack.service("dr", "web")["desiredCount"] == 1


def test_refusals_change_nothing_and_force_goes_on_with_its_reason(
    stack: Stack, tmp_path: Path
) -> None:
    endpoint = stack.cfg.aws.endpoint_url or ""
    # Another failover holds the environment's lock: refused, exit 2.
    with hold(stack.cfg, "region-move", region=stack.cfg.regions.dr, purpose="failover elsewhere"):
        held = run_cli(["failover", "--yes"], endpoint, tmp_path)
    assert held.returncode == 2, held.stderr
    assert "held by" in said(held) and "failover elsewhere" in said(held)
    untouched(stack)

    # Replica lag over the RPO budget: refused with the figures, exit 2, nothing changed.
    stack.control.set_replica_lag(120)
    late = run_cli(["failover", "--yes"], endpoint, tmp_path)
    assert late.returncode == 2, late.stdout
    assert "replica lag 120s is over the RPO budget of 30s" in said(late)
    untouched(stack)

    # Forced, with a reason: it goes on, and the reason and the RPO are in the report.
    forced = run_cli(
        ["failover", "--yes", "--force", "primary is burning", "-o", "json"], endpoint, tmp_path
    )
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert report["metrics"]["forced"] == "primary is burning"
    assert report["metrics"]["rpo_seconds"] == 120.0
    assert_failed_over(stack)


def test_without_a_yes_and_no_terminal_it_refuses(stack: Stack, tmp_path: Path) -> None:
    done = run_cli(["failover"], stack.cfg.aws.endpoint_url or "", tmp_path)
    assert done.returncode == 2 and "needs approval" in said(done)
    untouched(stack)


def test_a_primary_region_that_does_not_answer_is_not_fenced_and_failover_completes(
    stack: Stack, tmp_path: Path
) -> None:
    stack.control.set_faults(
        {
            "kind": "down",
            "regions": [stack.cfg.regions.primary],
            "services": DOWN,
            "hang_seconds": 2,
        }
    )
    try:
        done = run_cli(
            ["failover", "--yes", "-o", "json"], stack.cfg.aws.endpoint_url or "", tmp_path
        )
    finally:
        stack.control.clear_faults()
    assert done.returncode == 0, done.stdout
    report = json.loads(done.stdout)
    assert report["metrics"]["fencing"].startswith("skipped:")
    steps = {s["step"]: s["outcome"] for s in report["steps"]}
    assert steps["fence primary services"] == "skipped"
    assert any("us-east-1 does not answer" in n for n in report["notes"])
    db = stack.db("dr")
    assert not db.get("ReadReplicaSourceDBInstanceIdentifier")
    assert stack.answers() == [stack.alb_dns("dr").lower()]  # through the prepared switch
    assert stack.service("dr", "web")["runningCount"] == 2
    assert stack.service("primary", "web")["desiredCount"] == 2  # never reached


def test_prepare_on_a_provisioned_stack_plans_nothing_and_moves_nothing(
    stack: Stack, aws_endpoint: str, tmp_path: Path
) -> None:
    """Provision prepared the DNS switch already: ``--prepare`` (here as a plan and then for
    real) finds nothing to do, asks no approval and moves no traffic."""
    for args in (["--prepare", "--plan"], ["--prepare"]):
        done = run_cli(["failover", *args, "-o", "json"], aws_endpoint, tmp_path)
        assert done.returncode == 0, said(done)
        assert json.loads(done.stdout)["changes"] == [], done.stdout
    untouched(stack)
