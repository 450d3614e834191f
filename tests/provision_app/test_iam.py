from __future__ import annotations

import json

from configs.models import Config
from sandbox.testing import Mutations, plain
from tasks.resources.iam import (
    ensure_execution_role,
    ensure_task_roles,
    execution_policy,
    task_policy,
)

DB_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-abc-123456"


def _statements(doc: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in doc["Statement"]}


def test_execution_role_reads_exactly_the_referenced_secrets(sandbox_cfg: Config) -> None:
    cfg = sandbox_cfg.model_copy(
        update={
            "services": sandbox_cfg.services.model_copy(
                update={
                    "web": sandbox_cfg.services.web.model_copy(
                        update={"secrets": {"SESSION_KEY": DB_SECRET.replace("rds!db", "sess")}}
                    )
                }
            )
        }
    )
    st = _statements(execution_policy(cfg, "primary", DB_SECRET))
    assert st["ReadTaskSecrets"]["Resource"] == sorted(
        [DB_SECRET, DB_SECRET.replace("rds!db", "sess")]
    )
    assert st["PullImages"]["Resource"] == [
        "arn:aws:ecr:us-east-1:123456789012:repository/shop/web",
        "arn:aws:ecr:us-east-1:123456789012:repository/shop/worker",
    ]
    assert all("*" not in r for r in st["WriteLogs"]["Resource"][0].split(":")[:-1])


def test_worker_task_role_reaches_its_queues_only(sandbox_cfg: Config) -> None:
    worker = _statements(task_policy(sandbox_cfg, "primary", "worker") or {})
    assert worker["Consume"]["Resource"] == [
        "arn:aws:sqs:us-east-1:123456789012:shop-sandbox-orders",
        "arn:aws:sqs:us-east-1:123456789012:shop-sandbox-payments.fifo",
    ]
    assert "sqs:SendMessage" not in worker["Consume"]["Action"]
    assert set(worker) == {"Consume", "DatabaseIamAuth"}
    web = _statements(task_policy(sandbox_cfg, "primary", "web") or {})
    assert "sqs:ReceiveMessage" not in web["Publish"]["Action"]


def test_roles_converge_per_region_and_drift_is_restored(
    sandbox_cfg: Config, mutations: Mutations
) -> None:
    plan = ensure_execution_role.fn(sandbox_cfg, "primary", DB_SECRET, dry_run=True)
    assert mutations.calls == [] and plan.changes[0].action.value == "create"

    ensure_execution_role.fn(sandbox_cfg, "primary", DB_SECRET)
    ensure_task_roles.fn(sandbox_cfg, "primary")
    assert ensure_execution_role.fn(sandbox_cfg, "primary", DB_SECRET).changes == []
    assert ensure_task_roles.fn(sandbox_cfg, "primary").changes == []

    # The DR region adds its own grants without touching the primary's.
    dr = ensure_execution_role.fn(sandbox_cfg, "dr", DB_SECRET.replace("us-east-1", "us-west-2"))
    assert [c.after and list(c.after) for c in dr.changes] == [["tierbook-us-west-2"]]
    assert ensure_execution_role.fn(sandbox_cfg, "primary", DB_SECRET).changes == []

    iam = plain(sandbox_cfg, "iam", "us-east-1")
    iam.put_role_policy(
        RoleName="shop-sandbox-worker-task",
        PolicyName="tierbook-us-east-1",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}],
            }
        ),
    )
    fixed = ensure_task_roles.fn(sandbox_cfg, "primary")
    assert [c.name for c in fixed.changes] == ["shop-sandbox-worker-task"]
    doc = iam.get_role_policy(RoleName="shop-sandbox-worker-task", PolicyName="tierbook-us-east-1")
    assert doc["PolicyDocument"] == task_policy(sandbox_cfg, "primary", "worker")
    trust = iam.get_role(RoleName="shop-sandbox-ecs-execution")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
