"""Network layer, part one: the VPC, its internet gateway and the three subnet tiers.

Resources are found by their ``Name`` tag first, then (to adopt a VPC built elsewhere) by the
address plan of :mod:`configs.layout`: a subnet with the planned CIDR in the planned AZ is the
planned subnet, whatever it is called. Found resources only ever gain tags; nothing here is
replaced. :class:`NetworkIds` is what every later layer needs of the network: pure data.

Routing lives in :mod:`tasks.resources.network.routes`, security groups in
:mod:`tasks.resources.network.security_groups`, endpoints and flow logs in
:mod:`tasks.resources.network.endpoints` and :mod:`tasks.resources.network.flow_logs`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from pydantic import BaseModel

from configs.layout import subnet_plan
from configs.models import Config
from configs.names import TIERS, Role, StackNames, Tier, names_for
from tasks.core.aws import connect
from tasks.core.changes import (
    Change,
    StepResult,
    created,
    deleted,
    is_placeholder,
    placeholder,
    result,
    tag_change,
    updated,
)
from tasks.core.errors import AwsError
from tasks.core.retry import wait_for
from tasks.core.steps import step
from tasks.core.tags import missing_tags, tag_dict, tag_list

SG_ROLES = ("alb", "app", "data", "endpoints")


class NetworkIds(BaseModel):
    """One region's network as the app and data layers need it."""

    region: str
    vpc_id: str
    subnets: dict[str, list[str]]  # tier ("public"|"app"|"data") -> subnet ids in AZ order
    security_groups: dict[str, str]  # "alb"|"app"|"data"|"endpoints" -> group id

    @property
    def complete(self) -> bool:
        """False while anything is still a placeholder (a plan on an empty account)."""
        ids = [self.vpc_id, *self.security_groups.values()]
        ids += [s for tier in self.subnets.values() for s in tier]
        return not any(is_placeholder(i) for i in ids)


def ec2_client(cfg: Config, role: Role) -> Any:
    return connect(cfg).client("ec2", names_for(cfg, role).region)


def name_of(resource: dict[str, Any]) -> str | None:
    return tag_dict(resource.get("Tags")).get("Name")


def ec2_tags(names: StackNames, component: str, name: str) -> dict[str, str]:
    return {**names.tags(component), "Name": name}


def tag_spec(kind: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": tag_list(tags)}]


def fix_tags(
    ec2: Any,
    resource_id: str,
    kind: str,
    name: str,
    region: str,
    desired: dict[str, str],
    actual: list[dict[str, str]] | None,
    dry_run: bool,
) -> list[Change]:
    """Add or correct tags on an EC2 resource; foreign tags stay."""
    change = tag_change(kind, name, region, desired, tag_dict(actual))
    if change is None:
        return []
    if not dry_run:
        todo = missing_tags(desired, tag_dict(actual))
        ec2.create_tags(Resources=[resource_id], Tags=tag_list(todo))
    return [change]


# -- finding ---------------------------------------------------------------------------------
def find_vpc(ec2: Any, names: StackNames) -> dict[str, Any] | None:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [names.vpc]}])["Vpcs"]
    return vpcs[0] if vpcs else None


def match_subnets(
    plan: dict[tuple[Tier, str], str], found: list[dict[str, Any]], names: StackNames
) -> dict[tuple[Tier, str], dict[str, Any]]:
    """Which existing subnet plays each planned (tier, AZ): by Name tag, else by CIDR + AZ."""
    by_name = {name_of(s): s for s in found if name_of(s)}
    by_place = {(s["CidrBlock"], s["AvailabilityZone"]): s for s in found}
    out: dict[tuple[Tier, str], dict[str, Any]] = {}
    for (tier, az), cidr in plan.items():
        hit = by_name.get(names.subnet(tier, az)) or by_place.get((cidr, az))
        if hit is not None:
            out[(tier, az)] = hit
    return out


def _subnets_of(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
    pages = ec2.get_paginator("describe_subnets").paginate(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
    )
    return [s for page in pages for s in page["Subnets"]]


def subnets_in_az(cfg: Config, role: Role, az: str) -> tuple[str | None, list[str]]:
    """Read-only: the VPC's id and its subnets of every tier (public, app, data) planned in
    ``az``, found by the address plan; ``(None, [])`` without the VPC."""
    names = names_for(cfg, role)
    ec2 = ec2_client(cfg, role)
    vpc = find_vpc(ec2, names)
    if vpc is None:
        return None, []
    plan = subnet_plan(getattr(cfg.network, role))
    matched = match_subnets(plan, _subnets_of(ec2, vpc["VpcId"]), names)
    return vpc["VpcId"], [
        matched[(tier, az)]["SubnetId"] for tier in TIERS if (tier, az) in matched
    ]


def find_security_groups(ec2: Any, names: StackNames, vpc_id: str) -> dict[str, dict[str, Any]]:
    if is_placeholder(vpc_id):
        return {}
    wanted = {names.security_group(r): r for r in SG_ROLES}  # type: ignore[arg-type]
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": list(wanted)},
        ]
    )["SecurityGroups"]
    return {wanted[g["GroupName"]]: g for g in groups if g["GroupName"] in wanted}


def network_ids(
    cfg: Config,
    role: Role,
    vpc_id: str,
    subnets: dict[tuple[Tier, str], str],
    groups: dict[str, str],
) -> NetworkIds:
    """Assemble :class:`NetworkIds`, with placeholders for whatever does not exist yet."""
    names = names_for(cfg, role)
    azs = getattr(cfg.network, role).azs
    return NetworkIds(
        region=names.region,
        vpc_id=vpc_id,
        subnets={
            tier: [
                subnets.get((tier, az)) or placeholder("ec2:subnet", names.subnet(tier, az))
                for az in azs
            ]
            for tier in TIERS
        },
        security_groups={
            r: groups.get(r) or placeholder("ec2:security-group", names.security_group(r))  # type: ignore[arg-type]
            for r in SG_ROLES
        },
    )


@step("find {role} network")
def find_network(cfg: Config, role: Role) -> NetworkIds:
    """Read-only: the VPC by Name tag, its subnets by the address plan, groups by name."""
    names = names_for(cfg, role)
    ec2 = ec2_client(cfg, role)
    vpc = find_vpc(ec2, names)
    if vpc is None:
        return network_ids(cfg, role, placeholder("ec2:vpc", names.vpc), {}, {})
    plan = subnet_plan(getattr(cfg.network, role))
    matched = match_subnets(plan, _subnets_of(ec2, vpc["VpcId"]), names)
    groups = find_security_groups(ec2, names, vpc["VpcId"])
    return network_ids(
        cfg,
        role,
        vpc["VpcId"],
        {k: s["SubnetId"] for k, s in matched.items()},
        {r: g["GroupId"] for r, g in groups.items()},
    )


# -- VPC and internet gateway ----------------------------------------------------------------
@step("ensure {role} VPC")
def ensure_vpc(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """The VPC (DNS support and hostnames on: interface endpoints need both) and its IGW."""
    names = names_for(cfg, role)
    region = names.region
    ec2 = ec2_client(cfg, role)
    cidr = getattr(cfg.network, role).cidr
    tags = ec2_tags(names, "network", names.vpc)
    changes: list[Change] = []
    vpc = find_vpc(ec2, names)
    if vpc is None:
        changes.append(created("ec2:vpc", names.vpc, region, {"cidr": cidr}))
        if dry_run:
            vpc_id = placeholder("ec2:vpc", names.vpc)
        else:
            vpc_id = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tag_spec("vpc", tags))["Vpc"][
                "VpcId"
            ]
        dns = {"EnableDnsSupport": False, "EnableDnsHostnames": False}
    else:
        vpc_id = vpc["VpcId"]
        changes += fix_tags(
            ec2, vpc_id, "ec2:vpc", names.vpc, region, tags, vpc.get("Tags"), dry_run
        )
        dns = {
            attr: ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attr[0].lower() + attr[1:])[
                attr
            ]["Value"]
            for attr in ("EnableDnsSupport", "EnableDnsHostnames")
        }
    for attr, on in dns.items():
        if on:
            continue
        if vpc is not None:
            changes.append(updated("ec2:vpc", names.vpc, region, {attr: False}, {attr: True}))
        if not dry_run:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{attr: {"Value": True}})
    igw_changes, igw_id = _ensure_igw(ec2, names, vpc_id, dry_run)
    return StepResult(
        changes=changes + igw_changes,
        outputs={"vpc_id": vpc_id, "igw_id": igw_id},
        applied=not dry_run,
    )


def _ensure_igw(
    ec2: Any, names: StackNames, vpc_id: str, dry_run: bool
) -> tuple[list[Change], str]:
    region = names.region
    name = names.internet_gateway
    tags = ec2_tags(names, "network", name)
    found: list[dict[str, Any]] = []
    if not is_placeholder(vpc_id):
        found = ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
        )["InternetGateways"]
    if found:
        igw = found[0]
        changes = fix_tags(
            ec2,
            igw["InternetGatewayId"],
            "ec2:internet-gateway",
            name,
            region,
            tags,
            igw.get("Tags"),
            dry_run,
        )
        return changes, igw["InternetGatewayId"]
    change = created("ec2:internet-gateway", name, region, {"vpc": vpc_id})
    if dry_run:
        return [change], placeholder("ec2:internet-gateway", name)
    igw_id = ec2.create_internet_gateway(TagSpecifications=tag_spec("internet-gateway", tags))[
        "InternetGateway"
    ]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    return [change], igw_id


# -- subnets ---------------------------------------------------------------------------------
@step("ensure {role} subnets")
def ensure_subnets(cfg: Config, role: Role, vpc_id: str, *, dry_run: bool = False) -> StepResult:
    """Public, app and data subnets in every configured AZ. Only public ones map public IPs."""
    names = names_for(cfg, role)
    region = names.region
    ec2 = ec2_client(cfg, role)
    plan = subnet_plan(getattr(cfg.network, role))
    found = [] if is_placeholder(vpc_id) else _subnets_of(ec2, vpc_id)
    matched = match_subnets(plan, found, names)
    changes: list[Change] = []
    ids: dict[tuple[Tier, str], str] = {}
    for (tier, az), cidr in plan.items():
        name = names.subnet(tier, az)
        tags = ec2_tags(names, f"network-{tier}", name)
        public = tier == "public"
        have = matched.get((tier, az))
        if have is None:
            changes.append(
                created("ec2:subnet", name, region, {"cidr": cidr, "az": az, "tier": tier})
            )
            if dry_run:
                continue
            have = ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=cidr,
                AvailabilityZone=az,
                TagSpecifications=tag_spec("subnet", tags),
            )["Subnet"]
            if public:
                ec2.modify_subnet_attribute(
                    SubnetId=have["SubnetId"], MapPublicIpOnLaunch={"Value": True}
                )
            ids[(tier, az)] = have["SubnetId"]
            continue
        ids[(tier, az)] = have["SubnetId"]
        changes += fix_tags(
            ec2, have["SubnetId"], "ec2:subnet", name, region, tags, have.get("Tags"), dry_run
        )
        if bool(have.get("MapPublicIpOnLaunch")) != public:
            changes.append(
                updated(
                    "ec2:subnet",
                    name,
                    region,
                    {"map_public_ip": not public},
                    {"map_public_ip": public},
                )
            )
            if not dry_run:
                ec2.modify_subnet_attribute(
                    SubnetId=have["SubnetId"], MapPublicIpOnLaunch={"Value": public}
                )
    net = network_ids(cfg, role, vpc_id, ids, {})
    return StepResult(
        changes=changes,
        outputs={"subnets": net.subnets, "by_az": {f"{t}/{az}": i for (t, az), i in ids.items()}},
        applied=not dry_run,
    )


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


def vpc_id_of(cfg: Config, role: Role) -> str | None:
    """The id of ``role``'s VPC, or None when there is none (yet, or any more)."""
    vpc = find_vpc(ec2_client(cfg, role), names_for(cfg, role))
    return str(vpc["VpcId"]) if vpc else None


def network_of(cfg: Config, role: Role) -> tuple[StackNames, Any, str | None]:
    """Names, EC2 client and VPC id (None once the VPC is gone) of ``role``'s network."""
    return names_for(cfg, role), ec2_client(cfg, role), vpc_id_of(cfg, role)


def in_vpc(vpc_id: str) -> list[dict[str, Any]]:
    """The EC2 ``Filters`` that keep what lives in ``vpc_id``."""
    return [{"Name": "vpc-id", "Values": [vpc_id]}]


@step("delete {role} VPC")
def ensure_vpc_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Internet gateway → route tables → subnets → security groups (rules first: they refer
    to each other) → the VPC."""
    names, ec2, vpc = network_of(cfg, role)
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
    for table in ec2.describe_route_tables(Filters=in_vpc(vpc))["RouteTables"]:
        if any(a.get("Main") for a in table.get("Associations", [])):
            continue  # the main table goes with the VPC
        changes.append(deleted("ec2:route-table", name_of(table) or table["RouteTableId"], region))
        if not dry_run:
            for assoc in table.get("Associations", []):
                ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
            ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for subnet in ec2.describe_subnets(Filters=in_vpc(vpc))["Subnets"]:
        changes.append(deleted("ec2:subnet", name_of(subnet) or subnet["SubnetId"], region))
        if not dry_run:
            once_released(
                partial(ec2.delete_subnet, SubnetId=subnet["SubnetId"]),
                f"subnet {subnet['SubnetId']} deleted (nothing left in it)",
            )
    groups = [
        g
        for g in ec2.describe_security_groups(Filters=in_vpc(vpc))["SecurityGroups"]
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
