"""Flow logs: from endpoints, teardown_network."""

from __future__ import annotations

import json
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import Change, StepResult, created, deleted, is_placeholder, result, updated
from tasks.core.errors import PermanentAwsError
from tasks.core.policies import same_policy
from tasks.core.retry import absent, is_code
from tasks.core.steps import step
from tasks.core.tags import tag_list
from tasks.resources.iam import delete_roles
from tasks.resources.logs import delete_log_groups
from tasks.resources.network.endpoints import FLOW_LOG_RETENTION_DAYS
from tasks.resources.network.vpc import (
    ec2_client,
    ec2_tags,
    network_of,
    tag_spec,
    vpc_id_of,
)


# -- flow logs -------------------------------------------------------------------------------
def flow_log_role_name(cfg: Config) -> str:
    return f"{cfg.stack}-vpc-flow-logs"


def flow_log_trust(account: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


def flow_log_policy(cfg: Config) -> dict[str, Any]:
    """Write to the flow-log groups of this stack, in both regions, and nothing else."""
    groups = [
        f"arn:aws:logs:{names_for(cfg, r).region}:{cfg.account_id}:log-group:"
        f"{names_for(cfg, r).flow_log_group}:*"
        for r in ("primary", "dr")
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                ],
                "Resource": sorted(groups),
            }
        ],
    }


def _ensure_flow_log_role(cfg: Config, dry_run: bool) -> tuple[list[Change], str]:
    """One role for both regions (IAM is global); created by whichever region gets there first."""
    iam = connect(cfg).client("iam", cfg.regions.primary)
    name = flow_log_role_name(cfg)
    arn = f"arn:aws:iam::{cfg.account_id}:role/{name}"
    tags = names_for(cfg, "primary").tags("network")
    changes: list[Change] = []
    if absent(lambda: iam.get_role(RoleName=name), "NoSuchEntity") is None:
        changes.append(created("iam:role", name, "global", {"trust": "vpc-flow-logs"}))
        if not dry_run:
            try:
                iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(flow_log_trust(cfg.account_id)),
                    Tags=tag_list(tags),
                )
            except PermanentAwsError as race:  # the other region created it a moment ago
                if not is_code(race, "EntityAlreadyExists"):
                    raise
    policy = flow_log_policy(cfg)
    current = None
    if not changes:
        current = absent(
            lambda: iam.get_role_policy(RoleName=name, PolicyName="flow-logs")["PolicyDocument"],
            "NoSuchEntity",
        )
    if not same_policy(current, policy):
        changes.append(
            updated("iam:role-policy", f"{name}/flow-logs", "global", {}, {"policy": "logs"})
        )
        if not dry_run:
            iam.put_role_policy(
                RoleName=name, PolicyName="flow-logs", PolicyDocument=json.dumps(policy)
            )
    return changes, arn


@step("ensure {role} flow logs")
def ensure_flow_logs(cfg: Config, role: Role, vpc_id: str, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    region = names.region
    if not cfg.network.flow_logs:
        return StepResult(skipped="flow logs are off in the config")
    logs = connect(cfg).client("logs", region)
    group = names.flow_log_group
    changes: list[Change] = []
    found = [
        g
        for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        if g["logGroupName"] == group
    ]
    if not found:
        changes.append(
            created("logs:log-group", group, region, {"retention": FLOW_LOG_RETENTION_DAYS})
        )
        if not dry_run:
            logs.create_log_group(logGroupName=group, tags=names.tags("network"))
            logs.put_retention_policy(logGroupName=group, retentionInDays=FLOW_LOG_RETENTION_DAYS)
    elif found[0].get("retentionInDays") != FLOW_LOG_RETENTION_DAYS:
        changes.append(
            updated(
                "logs:log-group",
                group,
                region,
                {"retention": found[0].get("retentionInDays")},
                {"retention": FLOW_LOG_RETENTION_DAYS},
            )
        )
        if not dry_run:
            logs.put_retention_policy(logGroupName=group, retentionInDays=FLOW_LOG_RETENTION_DAYS)
    role_changes, role_arn = _ensure_flow_log_role(cfg, dry_run)
    changes += role_changes
    ec2 = ec2_client(cfg, role)
    existing = []
    if not is_placeholder(vpc_id):
        existing = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])[
            "FlowLogs"
        ]
    label = f"{names.vpc} flow log"
    if not existing:
        changes.append(created("ec2:flow-log", label, region, {"to": group, "traffic": "ALL"}))
        if not dry_run:
            ec2.create_flow_logs(
                ResourceIds=[vpc_id],
                ResourceType="VPC",
                TrafficType="ALL",
                LogDestinationType="cloud-watch-logs",
                LogGroupName=group,
                DeliverLogsPermissionArn=role_arn,
                TagSpecifications=tag_spec("vpc-flow-log", ec2_tags(names, "network", label)),
            )
    return StepResult(changes=changes, outputs={"flow_log_group": group}, applied=not dry_run)


@step("delete {role} flow logs")
def ensure_flow_logs_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names, ec2, vpc = network_of(cfg, role)
    changes: list[Change] = []
    if vpc is not None:
        found = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])[
            "FlowLogs"
        ]
        if found:
            changes.append(deleted("ec2:flow-log", f"{names.vpc} flow log", names.region))
            if not dry_run:
                ec2.delete_flow_logs(FlowLogIds=[f["FlowLogId"] for f in found])
    changes += delete_log_groups(cfg, role, [names.flow_log_group], dry_run)
    return result(changes, dry_run)


@step("delete flow-log role")
def ensure_flow_log_role_deleted(
    cfg: Config, roles: list[Role], *, dry_run: bool = False
) -> StepResult:
    """One role serves both regions: it goes once no VPC of the stack is left to log."""
    others = [r for r in ("primary", "dr") if r not in roles]
    if any(vpc_id_of(cfg, r) for r in others):  # type: ignore[arg-type]
        return StepResult(skipped="the other region's VPC still logs through it")
    return result(delete_roles(cfg, [flow_log_role_name(cfg)], None, dry_run), dry_run)
