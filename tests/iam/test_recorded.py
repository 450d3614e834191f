"""The runbooks run on the sandbox call only what their IAM policy allows.

A botocore ``before-call`` hook (``tests.provision.conftest.watch``) records every
(service, operation) each runbook makes; mapped to IAM actions, they must be within the
runbook's list in ``configs/permissions.py``. Calls the sandbox cannot make (Aurora, ARC,
CodeBuild, native SQS moves) are covered by the source scan of ``test_policy.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from configs.iam_actions import iam_actions
from configs.models import Config
from configs.permissions import RUNBOOKS
from sandbox.testing import SandboxQueues, push, push_images, standard_messages
from tests.support import fresh_account, watch

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG = "configs/sandbox.yaml"
Ops = set[tuple[str, str]]
# In the order they run on one stack. Deploy and rollback come last: a rollback leaves the
# primary on an older image than DR, which the failover's readiness check refuses. Destroy ends it.
ON_ONE_STACK = [
    "provision",
    "preflight",
    "audit",
    "drill-readiness",
    "game-day",
    "backup-drill",
    "failover",
    "failback",
    "drill-region",
    "deploy",
    "rollback",
    "destroy",
]


def record(cfg: Config, run: Callable[[], dict[str, Any]]) -> Ops:
    calls = watch(cfg)
    report = run()
    assert report["outcome"] == "succeeded", report.get("error")
    return set(calls.operations)


@pytest.fixture(scope="module")
def recorded(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[dict[str, Ops]]:
    """Every runbook but redrive, one after the other on one provisioned stack, then destroy."""
    from flows.audit import audit
    from flows.deploy import deploy, rollback
    from flows.destroy import destroy
    from flows.drills import backup_drill, game_day
    from flows.failover import failback, failover
    from flows.preflight import preflight
    from flows.provision import provision
    from flows.readiness import readiness_drill
    from flows.region_drill import region_drill

    cfg = fresh_account(aws_endpoint, moto_as_aws)
    out: dict[str, Ops] = {"provision": record(cfg, lambda: provision(config=CONFIG))}
    push_images(cfg)
    push(cfg, "web", "2.0.0")
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "preflight": lambda: preflight(config=CONFIG),
        "audit": lambda: audit(config=CONFIG),
        "drill-readiness": lambda: readiness_drill(config=CONFIG),
        "deploy": lambda: deploy(
            config=CONFIG, service="web", tag="2.0.0", approved=True, timeout_s=60
        ),
        "rollback": lambda: rollback(config=CONFIG, service="web", approved=True, timeout_s=60),
        "game-day": lambda: game_day(config=CONFIG),
        "backup-drill": lambda: backup_drill(config=CONFIG),
        "failover": lambda: failover(config=CONFIG, approved=True, reason="iam policy test"),
        "failback": lambda: failback(config=CONFIG, approved=True),
        "drill-region": lambda: region_drill(config=CONFIG, approved=True),
        "destroy": lambda: destroy(config=CONFIG, yes=True, disable_deletion_protection=True),
    }
    for name in ON_ONE_STACK[1:]:
        out[name] = record(cfg, runs[name])
    yield out


def actions(ops: Ops) -> set[str]:
    return {a for service, op in ops for a in iam_actions(service, op)}


@pytest.mark.parametrize("runbook", ON_ONE_STACK)
def test_a_run_calls_only_what_its_policy_allows(runbook: str, recorded: dict[str, Ops]) -> None:
    made = actions(recorded[runbook])
    assert made, "the hook recorded nothing"
    assert made - RUNBOOKS[runbook].actions == set()


def test_the_hook_sees_the_region_move(recorded: dict[str, Ops]) -> None:
    """The recorder is live: the failover's own mutating calls are among what it saw (traffic
    moves through the prepared DNS switch: a metric written in the DR region)."""
    assert {("rds", "PromoteReadReplica"), ("cloudwatch", "PutMetricData")} <= recorded["failover"]
    assert ("elbv2", "DescribeTargetHealth") in recorded["failover"]


def test_a_redrive_calls_only_what_its_policy_allows(
    queues: SandboxQueues, sandbox_cfg: Config, clean_aws: str
) -> None:
    import boto3

    from flows.redrive import redrive

    boto3.client(
        "s3",
        endpoint_url=clean_aws,
        region_name=sandbox_cfg.regions.primary,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    ).create_bucket(Bucket="dlq-archive")
    queues.fill(queues.pairs["orders"].dlq, standard_messages(25))
    calls = watch(sandbox_cfg)
    report = redrive(
        config=CONFIG, queue="orders", archive="s3://dlq-archive/orders", visibility_timeout_s=30
    )
    assert report["metrics"]["moved"] == 25
    made = actions(calls.operations)
    assert {"sqs:SendMessage", "sqs:DeleteMessage", "s3:PutObject"} <= made
    assert made - RUNBOOKS["redrive"].actions == set()
