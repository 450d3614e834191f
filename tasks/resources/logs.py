"""CloudWatch log groups of the ECS services, with a retention so logs do not pile up forever.

A log group ECS writes to must exist before the first task starts (the awslogs driver does
not create it unless asked to, and the execution role is not allowed to).
"""

from __future__ import annotations

from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import Change, StepResult, created, deleted, tag_change, updated
from tasks.core.steps import step
from tasks.core.tags import missing_tags

RESOURCE = "logs:log-group"


# Application logs are for debugging; audit trails live elsewhere (CloudTrail, ALB logs in S3).
APP_LOG_RETENTION_DAYS = 30


def log_group_arn(cfg: Config, role: Role, name: str) -> str:
    return f"arn:aws:logs:{names_for(cfg, role).region}:{cfg.account_id}:log-group:{name}"


def _find(logs: Any, name: str) -> dict[str, Any] | None:
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
        for group in page["logGroups"]:
            if group["logGroupName"] == name:
                return dict(group)
    return None


@step("ensure {role} log groups")
def ensure_log_groups(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    logs = connect(cfg).client("logs", names.region)
    tags = names.tags("app")
    changes: list[Change] = []
    outputs: dict[str, str] = {}
    for svc, _ in cfg.services.items():
        name = names.log_group(svc)
        arn = log_group_arn(cfg, role, name)
        outputs[svc] = name
        found = _find(logs, name)
        if found is None:
            changes.append(
                created(RESOURCE, name, names.region, {"retentionInDays": APP_LOG_RETENTION_DAYS})
            )
            if not dry_run:
                logs.create_log_group(logGroupName=name, tags=tags)
                logs.put_retention_policy(logGroupName=name, retentionInDays=APP_LOG_RETENTION_DAYS)
            continue
        if found.get("retentionInDays") != APP_LOG_RETENTION_DAYS:
            changes.append(
                updated(
                    RESOURCE,
                    name,
                    names.region,
                    {"retentionInDays": found.get("retentionInDays")},
                    {"retentionInDays": APP_LOG_RETENTION_DAYS},
                )
            )
            if not dry_run:
                logs.put_retention_policy(logGroupName=name, retentionInDays=APP_LOG_RETENTION_DAYS)
        have = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
        if change := tag_change(RESOURCE, name, names.region, tags, have):
            changes.append(change)
            if not dry_run:
                logs.tag_resource(resourceArn=arn, tags=missing_tags(tags, have))
    return StepResult(changes=changes, outputs={"log_groups": outputs}, applied=not dry_run)


def delete_log_groups(cfg: Config, role: Role, groups: list[str], dry_run: bool) -> list[Change]:
    """Delete the named log groups that exist (exact names, never a prefix)."""
    region = names_for(cfg, role).region
    logs = connect(cfg).client("logs", region)
    changes = []
    for group in groups:
        found = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        if not any(g["logGroupName"] == group for g in found):
            continue
        changes.append(deleted("logs:log-group", group, region))
        if not dry_run:
            logs.delete_log_group(logGroupName=group)
    return changes
