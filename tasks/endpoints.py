"""Network layer, private paths and records: VPC endpoints and flow logs.

Endpoints keep AWS API traffic of the app tier off the NAT gateways (cheaper, and still working
while a NAT is impaired): S3 as a gateway endpoint on the private route tables, the others
(ECR api/dkr, Secrets Manager, CloudWatch Logs, ECS…) as interface endpoints in the app
subnets behind the endpoints security group, with private DNS.
Flow logs of the whole VPC go to a CloudWatch log group through a role only the flow-logs
service can assume.
"""

from __future__ import annotations

import json
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks import converge
from tasks.aws import connect
from tasks.changes import Change, StepResult
from tasks.network import ec2_client, ec2_tags, fix_tags, tag_spec
from tasks.retry import is_code
from tasks.steps import step

FLOW_LOG_RETENTION_DAYS = 30
GATEWAY_ENDPOINTS = frozenset({"s3"})


def service_name(region: str, endpoint: str) -> str:
    return f"com.amazonaws.{region}.{endpoint}"


def endpoint_drift(
    endpoint: dict[str, Any], *, subnets: list[str], groups: list[str], tables: list[str]
) -> dict[str, tuple[list[str], list[str]]]:
    """``{field: (to add, to remove)}`` for one endpoint's placement. Pure."""
    if endpoint.get("VpcEndpointType") == "Gateway":
        pairs = {"RouteTableIds": (tables, endpoint.get("RouteTableIds", []))}
    else:
        pairs = {
            "SubnetIds": (subnets, endpoint.get("SubnetIds", [])),
            "SecurityGroupIds": (
                groups,
                [g["GroupId"] for g in endpoint.get("Groups", [])],
            ),
        }
    out = {}
    for key, (want, have) in pairs.items():
        add, remove = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        if add or remove:
            out[key] = (add, remove)
    return out


@step("ensure {role} VPC endpoints")
def ensure_endpoints(
    cfg: Config,
    role: Role,
    vpc_id: str,
    app_subnets: list[str],
    endpoint_sg: str,
    private_route_tables: list[str],
    *,
    dry_run: bool = False,
) -> StepResult:
    names = names_for(cfg, role)
    region = names.region
    ec2 = ec2_client(cfg, role)
    existing: dict[str, dict[str, Any]] = {}
    if not converge.is_placeholder(vpc_id):
        for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
            "VpcEndpoints"
        ]:
            if e.get("State", "").lower() not in ("deleted", "deleting", "failed", "rejected"):
                existing[e["ServiceName"]] = e
    changes: list[Change] = []
    ids: dict[str, str] = {}
    for ep in cfg.network.endpoints:
        service = service_name(region, ep)
        label = f"{names.stem}-{ep}"
        tags = ec2_tags(names, "network-endpoints", label)
        gateway = ep in GATEWAY_ENDPOINTS
        have = existing.get(service)
        if have is None:
            changes.append(
                converge.create(
                    "ec2:vpc-endpoint",
                    label,
                    region,
                    {"service": service, "type": "Gateway" if gateway else "Interface"},
                )
            )
            if dry_run:
                ids[ep] = converge.placeholder("ec2:vpc-endpoint", label)
                continue
            placement: dict[str, Any] = (
                {"VpcEndpointType": "Gateway", "RouteTableIds": private_route_tables}
                if gateway
                else {
                    "VpcEndpointType": "Interface",
                    "SubnetIds": app_subnets,
                    "SecurityGroupIds": [endpoint_sg],
                    "PrivateDnsEnabled": True,
                }
            )
            ids[ep] = ec2.create_vpc_endpoint(
                VpcId=vpc_id,
                ServiceName=service,
                TagSpecifications=tag_spec("vpc-endpoint", tags),
                **placement,
            )["VpcEndpoint"]["VpcEndpointId"]
            continue
        ids[ep] = have["VpcEndpointId"]
        changes += fix_tags(
            ec2, ids[ep], "ec2:vpc-endpoint", label, region, tags, have.get("Tags"), dry_run
        )
        drift = endpoint_drift(
            have, subnets=app_subnets, groups=[endpoint_sg], tables=private_route_tables
        )
        if not drift:
            continue
        changes.append(
            converge.update(
                "ec2:vpc-endpoint",
                label,
                region,
                {k: f"-{r}" for k, (_, r) in drift.items() if r},
                {k: f"+{a}" for k, (a, _) in drift.items() if a},
            )
        )
        if not dry_run:
            params: dict[str, Any] = {}
            for key, (add, remove) in drift.items():
                if add:
                    params[f"Add{key}"] = add
                if remove:
                    params[f"Remove{key}"] = remove
            ec2.modify_vpc_endpoint(VpcEndpointId=ids[ep], **params)
    return StepResult(changes=changes, outputs={"endpoints": ids}, applied=not dry_run)


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
    try:
        iam.get_role(RoleName=name)
    except Exception as exc:
        if not is_code(exc, "NoSuchEntity"):
            raise
        changes.append(converge.create("iam:role", name, "global", {"trust": "vpc-flow-logs"}))
        if not dry_run:
            try:
                iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(flow_log_trust(cfg.account_id)),
                    Tags=converge.tag_list(tags),
                )
            except Exception as race:  # the other region created it a moment ago
                if not is_code(race, "EntityAlreadyExists"):
                    raise
    policy = flow_log_policy(cfg)
    current = None
    if not changes:
        try:
            current = iam.get_role_policy(RoleName=name, PolicyName="flow-logs")["PolicyDocument"]
        except Exception as exc:
            if not is_code(exc, "NoSuchEntity"):
                raise
    if not converge.same_policy(current, policy):
        changes.append(
            converge.update(
                "iam:role-policy", f"{name}/flow-logs", "global", {}, {"policy": "logs"}
            )
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
            converge.create("logs:log-group", group, region, {"retention": FLOW_LOG_RETENTION_DAYS})
        )
        if not dry_run:
            logs.create_log_group(logGroupName=group, tags=names.tags("network"))
            logs.put_retention_policy(logGroupName=group, retentionInDays=FLOW_LOG_RETENTION_DAYS)
    elif found[0].get("retentionInDays") != FLOW_LOG_RETENTION_DAYS:
        changes.append(
            converge.update(
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
    if not converge.is_placeholder(vpc_id):
        existing = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])[
            "FlowLogs"
        ]
    label = f"{names.vpc} flow log"
    if not existing:
        changes.append(
            converge.create("ec2:flow-log", label, region, {"to": group, "traffic": "ALL"})
        )
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
