"""Destroy, network layer: VPC endpoints, NAT gateways and their Elastic IPs, flow logs, then
the internet gateway, route tables, subnets, security groups and the VPC itself.

The VPC is the stack's by its Name tag (``names.vpc``, derived or adopted); what lives inside
it goes with it. Elastic IPs are found by the NAT's Name tag, so a run interrupted after the
NAT gateways went still releases them. Something in the VPC that tierbook did not make (an
instance, someone's ENI) makes AWS refuse the VPC's deletion, and the step fails naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from configs.errors import AwsError
from configs.models import Config
from configs.names import Role, StackNames, names_for
from tasks.aws import connect
from tasks.changes import Change, StepResult
from tasks.endpoints import flow_log_role_name
from tasks.network import ec2_client, find_vpc, name_of
from tasks.retry import absent, wait_for
from tasks.steps import step
from tasks.teardown import deleted, result, wait_gone

LIVE_NAT = ("pending", "available", "deleting")
RELEASE_TIMEOUT_S = 600.0  # ENIs of a deleted load balancer or endpoint: minutes on AWS


def once_released(call: Callable[[], Any], what: str) -> None:
    """``call()``, retried while AWS answers ``DependencyViolation``: a network interface of
    something just deleted (load balancer, endpoint, NAT) is released some minutes later.
    Something that is not the stack's keeps it until the deadline, which then names it."""

    def attempt() -> bool:
        try:
            call()
        except AwsError as exc:
            if exc.code == "DependencyViolation":
                return False
            raise
        return True

    wait_for(attempt, until=bool, what=what, timeout_s=RELEASE_TIMEOUT_S)


def _vpc_id(cfg: Config, role: Role) -> str | None:
    vpc = find_vpc(ec2_client(cfg, role), names_for(cfg, role))
    return str(vpc["VpcId"]) if vpc else None


def _network(cfg: Config, role: Role) -> tuple[StackNames, Any, str | None]:
    """Names, EC2 client and VPC id (None once the VPC is gone) of ``role``'s network."""
    return names_for(cfg, role), ec2_client(cfg, role), _vpc_id(cfg, role)


def _in_vpc(vpc_id: str) -> list[dict[str, Any]]:
    return [{"Name": "vpc-id", "Values": [vpc_id]}]


@step("delete {role} VPC endpoints")
def ensure_endpoints_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names, ec2, vpc = _network(cfg, role)
    if vpc is None:
        return result([], dry_run)

    def live() -> list[dict[str, Any]]:
        found = ec2.describe_vpc_endpoints(Filters=_in_vpc(vpc))["VpcEndpoints"]
        return [e for e in found if e.get("State", "").lower() not in ("deleted", "failed")]

    found = live()
    todo = [e for e in found if e.get("State", "").lower() != "deleting"]
    changes = [deleted("ec2:vpc-endpoint", e["ServiceName"], names.region) for e in todo]
    if not dry_run and todo:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[e["VpcEndpointId"] for e in todo])
    if not dry_run and found:
        wait_gone(live, f"VPC endpoints of {vpc} deleted")
    return result(changes, dry_run)


@step("delete {role} NAT gateways")
def ensure_nat_gateways_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names, ec2, vpc = _network(cfg, role)
    changes: list[Change] = []
    if vpc is not None:
        filters = [*_in_vpc(vpc), {"Name": "state", "Values": list(LIVE_NAT)}]

        def live() -> list[dict[str, Any]]:
            return list(ec2.describe_nat_gateways(Filters=filters)["NatGateways"])

        found = live()
        for nat in found:
            if nat["State"] == "deleting":
                continue
            changes.append(
                deleted("ec2:nat-gateway", name_of(nat) or nat["NatGatewayId"], names.region)
            )
            if not dry_run:
                ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
        if not dry_run and found:
            wait_gone(live, f"NAT gateways of {vpc} deleted")
    nat_names = [names.nat(az) for az in getattr(cfg.network, role).azs]
    eips = ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": nat_names}])["Addresses"]
    for eip in eips:
        changes.append(deleted("ec2:elastic-ip", eip.get("PublicIp", ""), names.region))
        if not dry_run:
            if eip.get("AssociationId"):  # still held by a NAT gateway that just went
                ec2.disassociate_address(AssociationId=eip["AssociationId"])
            ec2.release_address(AllocationId=eip["AllocationId"])
    return result(changes, dry_run)


@step("delete {role} flow logs")
def ensure_flow_logs_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names, ec2, vpc = _network(cfg, role)
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


@step("delete {role} VPC")
def ensure_vpc_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Internet gateway → route tables → subnets → security groups (rules first: they refer
    to each other) → the VPC."""
    names, ec2, vpc = _network(cfg, role)
    region = names.region
    if vpc is None:
        return result([], dry_run)
    changes: list[Change] = []
    for igw in ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}]
    )["InternetGateways"]:
        changes.append(
            deleted("ec2:internet-gateway", name_of(igw) or igw["InternetGatewayId"], region)
        )
        if not dry_run:
            once_released(
                partial(
                    ec2.detach_internet_gateway,
                    InternetGatewayId=igw["InternetGatewayId"],
                    VpcId=vpc,
                ),
                f"internet gateway {igw['InternetGatewayId']} detached",
            )
            ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    for table in ec2.describe_route_tables(Filters=_in_vpc(vpc))["RouteTables"]:
        if any(a.get("Main") for a in table.get("Associations", [])):
            continue  # the main table goes with the VPC
        changes.append(deleted("ec2:route-table", name_of(table) or table["RouteTableId"], region))
        if not dry_run:
            for assoc in table.get("Associations", []):
                ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
            ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for subnet in ec2.describe_subnets(Filters=_in_vpc(vpc))["Subnets"]:
        changes.append(deleted("ec2:subnet", name_of(subnet) or subnet["SubnetId"], region))
        if not dry_run:
            once_released(
                partial(ec2.delete_subnet, SubnetId=subnet["SubnetId"]),
                f"subnet {subnet['SubnetId']} deleted (nothing left in it)",
            )
    groups = [
        g
        for g in ec2.describe_security_groups(Filters=_in_vpc(vpc))["SecurityGroups"]
        if g["GroupName"] != "default"
    ]
    for g in groups:
        changes.append(deleted("ec2:security-group", g["GroupName"], region))
        if dry_run:
            continue
        if g.get("IpPermissions"):
            ec2.revoke_security_group_ingress(
                GroupId=g["GroupId"], IpPermissions=g["IpPermissions"]
            )
        if g.get("IpPermissionsEgress"):
            ec2.revoke_security_group_egress(
                GroupId=g["GroupId"], IpPermissions=g["IpPermissionsEgress"]
            )
    for g in groups if not dry_run else []:
        once_released(
            partial(ec2.delete_security_group, GroupId=g["GroupId"]),
            f"security group {g['GroupName']} deleted (no interface left using it)",
        )
    changes.append(deleted("ec2:vpc", names.vpc, region, vpc))
    if not dry_run:
        once_released(partial(ec2.delete_vpc, VpcId=vpc), f"VPC {vpc} deleted")
    return result(changes, dry_run)


@step("delete flow-log role")
def ensure_flow_log_role_deleted(
    cfg: Config, roles: list[Role], *, dry_run: bool = False
) -> StepResult:
    """One role serves both regions: it goes once no VPC of the stack is left to log."""
    others = [r for r in ("primary", "dr") if r not in roles]
    if any(_vpc_id(cfg, r) for r in others):  # type: ignore[arg-type]
        return StepResult(skipped="the other region's VPC still logs through it")
    return result(delete_roles(cfg, [flow_log_role_name(cfg)], None, dry_run), dry_run)


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
