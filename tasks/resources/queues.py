"""SQS work queues, each with its dead-letter queue (seed 002).

A message that fails ``max_receive_count`` times moves to the DLQ instead of looping forever;
the DLQ keeps messages longer than its source so nobody loses one before it can be redriven,
and its ``RedriveAllowPolicy`` admits only that source. Encryption at rest is always on
(SQS-managed keys unless the queue already uses a KMS key).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from configs.models import Config, Queue
from configs.names import Role, names_for
from tasks.core.aws import connect, role_client
from tasks.core.changes import (
    Change,
    StepResult,
    created,
    deleted,
    placeholder,
    result,
    tag_change,
    updated,
)
from tasks.core.errors import AwsError
from tasks.core.policies import policy_doc
from tasks.core.retry import absent, is_code
from tasks.core.steps import step
from tasks.core.tags import missing_tags

RESOURCE = "sqs:queue"


def queue_arn(cfg: Config, role: Role, name: str) -> str:
    return f"arn:aws:sqs:{names_for(cfg, role).region}:{cfg.account_id}:{name}"


def source_attributes(q: Queue, dlq_arn: str) -> dict[str, str]:
    """Desired attributes of a work queue."""
    attrs = {
        "VisibilityTimeout": str(q.visibility_timeout_seconds),
        "MessageRetentionPeriod": str(q.retention_seconds),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": q.max_receive_count}
        ),
        "SqsManagedSseEnabled": "true",
    }
    return attrs


def dlq_attributes(q: Queue, source_arn: str) -> dict[str, str]:
    """Desired attributes of a dead-letter queue: outlives its source, admits only it."""
    return {
        "MessageRetentionPeriod": str(q.dlq_retention_seconds),
        "RedriveAllowPolicy": json.dumps(
            {"redrivePermission": "byQueue", "sourceQueueArns": [source_arn]}
        ),
        "SqsManagedSseEnabled": "true",
    }


def create_attributes(q: Queue, attrs: dict[str, str]) -> dict[str, str]:
    return {**attrs, **({"FifoQueue": "true"} if q.fifo else {})}


def attribute_drift(desired: dict[str, str], actual: dict[str, str]) -> dict[str, str]:
    """Attributes of ``desired`` that ``actual`` lacks or holds differently.

    JSON-valued attributes are compared parsed; a queue encrypted with a KMS key counts as
    encrypted (``SqsManagedSseEnabled`` is then false by design)."""
    out: dict[str, str] = {}
    for key, want in desired.items():
        have = actual.get(key)
        if key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if _json(have) != _json(want):
                out[key] = want
        elif key == "SqsManagedSseEnabled":
            if have != "true" and not actual.get("KmsMasterKeyId"):
                out[key] = want
        elif have != want:
            out[key] = want
    return out


def _json(value: str | None) -> Any:
    if not value:
        return None
    doc = json.loads(value)
    if "maxReceiveCount" in doc:
        doc["maxReceiveCount"] = int(doc["maxReceiveCount"])
    return policy_doc(doc)


def _ensure_queue(
    sqs: Any,
    *,
    q: Queue,
    name: str,
    region: str,
    attrs: dict[str, str],
    tags: dict[str, str],
    dry_run: bool,
) -> tuple[list[Change], str]:
    """One queue: create it, or fix drifted attributes and tags. Returns (changes, url)."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except AwsError as exc:
        if not is_code(exc, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        url = None
    if url is None:
        change = created(RESOURCE, name, region, create_attributes(q, attrs))
        if dry_run:
            return [change], placeholder(RESOURCE, name)
        url = sqs.create_queue(QueueName=name, Attributes=create_attributes(q, attrs), tags=tags)[
            "QueueUrl"
        ]
        return [change], url
    actual = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    changes: list[Change] = []
    drift = attribute_drift(attrs, actual)
    if drift:
        changes.append(updated(RESOURCE, name, region, {k: actual.get(k) for k in drift}, drift))
        if not dry_run:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=drift)
    have_tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    tagging = tag_change(RESOURCE, name, region, tags, have_tags)
    if tagging:
        changes.append(tagging)
        if not dry_run:
            sqs.tag_queue(QueueUrl=url, Tags=missing_tags(tags, have_tags))
    return changes, url


@step("ensure {role} queues")
def ensure_queues(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Every configured queue and its DLQ (DLQ first: the source's redrive policy names it)."""
    names = names_for(cfg, role)
    sqs = connect(cfg).client("sqs", names.region)
    tags = names.tags("queues")
    changes: list[Change] = []
    outputs: dict[str, Any] = {}
    for q in cfg.queues:
        src, dlq = names.queue(q.name, fifo=q.fifo), names.dlq(q.name, fifo=q.fifo)
        src_arn, dlq_arn = queue_arn(cfg, role, src), queue_arn(cfg, role, dlq)
        dlq_changes, dlq_url = _ensure_queue(
            sqs,
            q=q,
            name=dlq,
            region=names.region,
            attrs=dlq_attributes(q, src_arn),
            tags=tags,
            dry_run=dry_run,
        )
        src_changes, src_url = _ensure_queue(
            sqs,
            q=q,
            name=src,
            region=names.region,
            attrs=source_attributes(q, dlq_arn),
            tags=tags,
            dry_run=dry_run,
        )
        changes += dlq_changes + src_changes
        outputs[q.name] = {
            "name": src,
            "url": src_url,
            "arn": src_arn,
            "dlq_name": dlq,
            "dlq_url": dlq_url,
            "dlq_arn": dlq_arn,
        }
    return StepResult(changes=changes, outputs={"queues": outputs}, applied=not dry_run)


@step("delete {role} queues")
def ensure_queues_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Each source queue, then its DLQ (messages in them go too: that is what destroy means)."""
    names = names_for(cfg, role)
    sqs = role_client(cfg, "sqs", role)
    changes: list[Change] = []
    for q in cfg.queues:
        for name in (names.queue(q.name, fifo=q.fifo), names.dlq(q.name, fifo=q.fifo)):
            found = absent(
                partial(sqs.get_queue_url, QueueName=name),
                "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist",
            )
            if found is None:
                continue
            changes.append(deleted("sqs:queue", name, names.region))
            if not dry_run:
                sqs.delete_queue(QueueUrl=found["QueueUrl"])
    return result(changes, dry_run)
