from __future__ import annotations

import json

from configs.models import Config, Queue
from sandbox.testing import Mutations, plain
from tasks.resources.queues import attribute_drift, dlq_attributes, ensure_queues, source_attributes


def test_dry_run_on_empty_account_plans_every_queue_and_calls_nothing(
    sandbox_cfg: Config, mutations: Mutations, faithful_moto: None
) -> None:
    plan = ensure_queues.fn(sandbox_cfg, "primary", dry_run=True)
    assert mutations.calls == []
    assert sorted(c.name for c in plan.changes) == [
        "shop-sandbox-orders",
        "shop-sandbox-orders-dlq",
        "shop-sandbox-payments-dlq.fifo",
        "shop-sandbox-payments.fifo",
    ]
    assert not plan.applied
    assert plan.outputs["queues"]["orders"]["url"].startswith("(known after create")


def test_queues_converge_and_second_run_changes_nothing(
    sandbox_cfg: Config, faithful_moto: None
) -> None:
    first = ensure_queues.fn(sandbox_cfg, "primary")
    assert len(first.changes) == 4
    assert ensure_queues.fn(sandbox_cfg, "primary").changes == []

    sqs = plain(sandbox_cfg, "sqs", "us-east-1")
    out = first.outputs["queues"]["payments"]
    src = sqs.get_queue_attributes(QueueUrl=out["url"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=out["dlq_url"], AttributeNames=["All"])["Attributes"]
    assert json.loads(src["RedrivePolicy"]) == {
        "deadLetterTargetArn": out["dlq_arn"],
        "maxReceiveCount": 3,
    }
    assert src["FifoQueue"] == dlq["FifoQueue"] == "true"
    assert src["SqsManagedSseEnabled"] == "true"
    assert int(dlq["MessageRetentionPeriod"]) > int(src["MessageRetentionPeriod"])
    assert json.loads(dlq["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [out["arn"]],
    }
    assert sqs.list_queue_tags(QueueUrl=out["url"])["Tags"]["managed-by"] == "tierbook"


def test_drift_is_reported_exactly_and_restored(sandbox_cfg: Config, faithful_moto: None) -> None:
    out = ensure_queues.fn(sandbox_cfg, "primary").outputs["queues"]["orders"]
    sqs = plain(sandbox_cfg, "sqs", "us-east-1")
    sqs.set_queue_attributes(QueueUrl=out["url"], Attributes={"VisibilityTimeout": "5"})

    fixed = ensure_queues.fn(sandbox_cfg, "primary")
    assert [(c.name, c.before, c.after) for c in fixed.changes] == [
        ("shop-sandbox-orders", {"VisibilityTimeout": "5"}, {"VisibilityTimeout": "60"})
    ]
    attrs = sqs.get_queue_attributes(QueueUrl=out["url"], AttributeNames=["VisibilityTimeout"])
    assert attrs["Attributes"]["VisibilityTimeout"] == "60"


def test_adopted_queue_keeps_its_tags_and_gains_a_redrive_policy(
    sandbox_cfg: Config, faithful_moto: None
) -> None:
    sqs = plain(sandbox_cfg, "sqs", "us-east-1")
    url = sqs.create_queue(
        QueueName="shop-sandbox-orders",
        Attributes={"VisibilityTimeout": "60", "MessageRetentionPeriod": "345600"},
        tags={"owner": "terraform"},
    )["QueueUrl"]
    result = ensure_queues.fn(sandbox_cfg, "primary")
    adopted = [c for c in result.changes if c.name == "shop-sandbox-orders"]
    assert [c.action.value for c in adopted] == ["update", "update"]
    assert set(adopted[0].after or {}) == {"RedrivePolicy"}
    assert result.outputs["queues"]["orders"]["url"] == url
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"]["owner"] == "terraform"


def test_kms_encrypted_queue_counts_as_encrypted() -> None:
    q = Queue(name="orders")
    desired = source_attributes(q, "arn:aws:sqs:us-east-1:1:dlq")
    actual = {**desired, "SqsManagedSseEnabled": "false", "KmsMasterKeyId": "alias/x"}
    assert attribute_drift(desired, actual) == {}
    # The redrive policy compares parsed: AWS may return maxReceiveCount as a string.
    actual["RedrivePolicy"] = json.dumps(
        {"maxReceiveCount": "5", "deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq"}
    )
    assert attribute_drift(desired, actual) == {}
    assert dlq_attributes(q, "src")["MessageRetentionPeriod"] == str(q.dlq_retention_seconds)
