"""IAM roles of the ECS tasks: one execution role, one task role per service.

The execution role is what ECS itself uses to start a task: pull the image, write logs, read
the secrets the task definitions inject, nothing else. A task role is what the application
code gets: the web tier may publish to the queues and use the asset bucket; the worker may
consume its queues only. IAM is global while the stack has two regions, so each region's
grants live in their own inline policy (``tierbook-<region>``): converging one region never
takes away what the other needs.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import Change, StepResult, created, deleted, result, tag_change, updated
from tasks.core.errors import AwsError
from tasks.core.policies import same_policy
from tasks.core.retry import absent, is_code
from tasks.core.steps import step
from tasks.core.tags import missing_tags, tag_dict, tag_list
from tasks.resources import task_definitions as appspec
from tasks.resources.ecs import service_names

RESOURCE = "iam:role"


VERSION = "2012-10-17"


def trust_policy(account: str) -> dict[str, Any]:
    """ECS tasks of this account only (the confused-deputy guard AWS recommends)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


def policy_name(cfg: Config, role: Role) -> str:
    return f"tierbook-{names_for(cfg, role).region}"


def execution_policy(cfg: Config, role: Role, db_secret_arn: str | None) -> dict[str, Any]:
    names = names_for(cfg, role)
    region, account = names.region, cfg.account_id
    repos = [
        f"arn:aws:ecr:{region}:{account}:repository/{names.repository(svc)}"
        for svc, _ in cfg.services.items()
    ]
    groups = [
        f"arn:aws:logs:{region}:{account}:log-group:{names.log_group(svc)}:*"
        for svc, _ in cfg.services.items()
    ]
    statements: list[dict[str, Any]] = [
        # GetAuthorizationToken has no resource-level permissions.
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": ["*"],
        },
        {
            "Sid": "PullImages",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": repos,
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": groups,
        },
    ]
    secrets = appspec.secret_arns(cfg, db_secret_arn)
    if secrets:
        statements.append(
            {
                "Sid": "ReadTaskSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": secrets,
            }
        )
    return {"Version": VERSION, "Statement": statements}


def task_policy(cfg: Config, role: Role, svc: str) -> dict[str, Any] | None:
    """What the application code of ``svc`` may call; None when it needs no AWS API."""
    names = names_for(cfg, role)
    region, account = names.region, cfg.account_id
    queues = [
        f"arn:aws:sqs:{region}:{account}:{names.queue(q.name, fifo=q.fifo)}" for q in cfg.queues
    ]
    statements: list[dict[str, Any]] = []
    if svc == "web":
        if queues:
            statements.append(
                {
                    "Sid": "Publish",
                    "Effect": "Allow",
                    "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"],
                    "Resource": queues,
                }
            )
        statements.append(
            {
                "Sid": "Assets",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": [f"arn:aws:s3:::{names.asset_bucket}/*"],
            }
        )
    elif queues:
        statements.append(
            {
                "Sid": "Consume",
                "Effect": "Allow",
                "Action": [
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                ],
                "Resource": queues,
            }
        )
    if cfg.database.iam_auth:
        statements.append(
            {
                "Sid": "DatabaseIamAuth",
                "Effect": "Allow",
                "Action": ["rds-db:connect"],
                "Resource": [
                    f"arn:aws:rds-db:{region}:{account}:dbuser:*/{cfg.database.master_username}"
                ],
            }
        )
    return {"Version": VERSION, "Statement": statements} if statements else None


def role_arn(cfg: Config, name: str) -> str:
    return f"arn:aws:iam::{cfg.account_id}:role/{name}"


def _get_role(iam: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(iam.get_role(RoleName=name)["Role"])
    except AwsError as exc:
        if is_code(exc, "NoSuchEntity"):
            return None
        raise


def _get_inline(iam: Any, role_name: str, policy: str) -> Any:
    try:
        return iam.get_role_policy(RoleName=role_name, PolicyName=policy)["PolicyDocument"]
    except AwsError as exc:
        if is_code(exc, "NoSuchEntity"):
            return None
        raise


def ensure_role(
    cfg: Config, role: Role, name: str, policy: dict[str, Any] | None, component: str, dry_run: bool
) -> list[Change]:
    """One role with the trust policy, this region's inline policy and the tags."""
    iam = connect(cfg).client("iam", cfg.regions.primary)
    names = names_for(cfg, role)
    trust, tags, inline = (
        trust_policy(cfg.account_id),
        names.tags(component),
        policy_name(cfg, role),
    )
    found = _get_role(iam, name)
    changes: list[Change] = []
    if found is None:
        changes.append(created(RESOURCE, name, "global", {"policy": inline, "document": policy}))
        if not dry_run:
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=f"tierbook {cfg.stack} {component}",
                Tags=tag_list(tags),
            )
            if policy:
                iam.put_role_policy(
                    RoleName=name, PolicyName=inline, PolicyDocument=json.dumps(policy)
                )
        return changes
    if not same_policy(found.get("AssumeRolePolicyDocument"), trust):
        changes.append(
            updated(
                RESOURCE,
                name,
                "global",
                {"trust": found.get("AssumeRolePolicyDocument")},
                {"trust": trust},
            )
        )
        if not dry_run:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    have = _get_inline(iam, name, inline)
    if policy and not same_policy(have, policy):
        changes.append(updated(RESOURCE, name, "global", {inline: have}, {inline: policy}))
        if not dry_run:
            iam.put_role_policy(RoleName=name, PolicyName=inline, PolicyDocument=json.dumps(policy))
    elif policy is None and have is not None:
        changes.append(updated(RESOURCE, name, "global", {inline: have}, {inline: None}))
        if not dry_run:
            iam.delete_role_policy(RoleName=name, PolicyName=inline)
    have_tags = tag_dict(found.get("Tags"))
    if change := tag_change(RESOURCE, name, "global", tags, have_tags):
        changes.append(change)
        if not dry_run:
            iam.tag_role(RoleName=name, Tags=tag_list(missing_tags(tags, have_tags)))
    return changes


@step("ensure {role} ECS execution role")
def ensure_execution_role(
    cfg: Config, role: Role, db_secret_arn: str | None, *, dry_run: bool = False
) -> StepResult:
    name = names_for(cfg, role).execution_role
    changes = ensure_role(
        cfg, role, name, execution_policy(cfg, role, db_secret_arn), "app", dry_run
    )
    return StepResult(
        changes=changes, outputs={"execution_role_arn": role_arn(cfg, name)}, applied=not dry_run
    )


@step("ensure {role} ECS task roles")
def ensure_task_roles(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    changes: list[Change] = []
    arns: dict[str, str] = {}
    for svc, _ in cfg.services.items():
        name = names.task_role(svc)
        changes += ensure_role(cfg, role, name, task_policy(cfg, role, svc), svc, dry_run)
        arns[svc] = role_arn(cfg, name)
    return StepResult(changes=changes, outputs={"task_role_arns": arns}, applied=not dry_run)


@step("delete {role} IAM roles")
def ensure_roles_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """The execution and task roles: this region's inline policy, and the role once no other
    region's policy is left on it (IAM is global; both regions share the role names)."""
    names = names_for(cfg, role)
    roles = [names.execution_role] + [names.task_role(svc) for svc in service_names(cfg)]
    return result(delete_roles(cfg, roles, policy_name(cfg, role), dry_run), dry_run)


def delete_roles(
    cfg: Config, role_names: list[str], inline: str | None, dry_run: bool
) -> list[Change]:
    """Delete IAM roles by name. With ``inline``, only that inline policy goes, and the role
    with it once no other inline or attached policy is left (roles shared by both regions
    carry one inline policy per region)."""
    iam = connect(cfg).client("iam", cfg.regions.primary)
    changes: list[Change] = []
    for name in role_names:
        if absent(partial(iam.get_role, RoleName=name), "NoSuchEntity") is None:
            continue
        policies = iam.list_role_policies(RoleName=name)["PolicyNames"]
        attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        mine = [p for p in policies if inline is None or p == inline]
        keep = [p for p in policies if p not in mine]
        if inline is not None and mine and (keep or attached):
            changes.append(deleted("iam:role-policy", f"{name}/{inline}", "global"))
        elif not keep and (inline is None or not attached):
            changes.append(deleted("iam:role", name, "global"))
        if dry_run:
            continue
        for p in mine:
            iam.delete_role_policy(RoleName=name, PolicyName=p)
        if keep or (inline is not None and attached):
            continue
        for a in attached:
            iam.detach_role_policy(RoleName=name, PolicyArn=a["PolicyArn"])
        for prof in iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
            iam.remove_role_from_instance_profile(
                InstanceProfileName=prof["InstanceProfileName"], RoleName=name
            )
        iam.delete_role(RoleName=name)
    return changes
