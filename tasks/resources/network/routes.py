"""Network layer, routing: NAT gateways and route tables, three steps so that the tables (which
the VPC endpoints need) and the NAT gateways (which take minutes on AWS) are built side by side.

* public: one table, default route to the internet gateway, every public subnet.
* app: one table per AZ, default route to the NAT gateway of the same AZ (so losing an AZ
  never cuts the others off; ``nat: single`` sends every AZ to the first AZ's NAT, acknowledged
  in the config).
* data: one table with the local route only. A default route found there is removed: the data
  tier has no path to the internet.
"""

from __future__ import annotations

from typing import Any

from configs.models import Config
from configs.names import Role, StackNames, Tier, names_for
from tasks.core.changes import (
    Action,
    Change,
    StepResult,
    created,
    deleted,
    is_placeholder,
    placeholder,
    result,
)
from tasks.core.retry import wait_for, wait_gone
from tasks.core.steps import step
from tasks.resources.network.vpc import (
    ec2_client,
    ec2_tags,
    fix_tags,
    in_vpc,
    name_of,
    network_of,
    tag_spec,
)

DEFAULT_ROUTE = "0.0.0.0/0"


NAT_TIMEOUT_S = 600.0


LIVE_NAT = ("pending", "available")


def desired_tables(
    names: StackNames, azs: list[str], nat: str, igw_id: str, nat_ids: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """``{table name: {tier, azs it serves, default route target or None}}``. Pure."""
    tables: dict[str, dict[str, Any]] = {
        names.route_table("public"): {"tier": "public", "azs": azs, "target": ("igw", igw_id)},
        names.route_table("data"): {"tier": "data", "azs": azs, "target": None},
    }
    for az in azs:
        via = az if nat == "per_az" else azs[0]
        target = ("nat", nat_ids[via]) if nat != "none" else None
        tables[names.route_table("app", az)] = {"tier": "app", "azs": [az], "target": target}
    return tables


def route_drift(
    routes: list[dict[str, Any]], target: tuple[str, str] | None
) -> tuple[str, dict[str, Any] | None] | None:
    """What to do about the default route: ``("create"|"replace"|"delete", current)`` or None."""
    current = next((r for r in routes if r.get("DestinationCidrBlock") == DEFAULT_ROUTE), None)
    if target is None:
        return ("delete", current) if current else None
    if current is None:
        return ("create", None)
    kind, ident = target
    have = current.get("GatewayId") if kind == "igw" else current.get("NatGatewayId")
    if have != ident or current.get("State") == "blackhole":
        return ("replace", current)
    return None


def _route_target(target: tuple[str, str]) -> dict[str, str]:
    kind, ident = target
    return {"GatewayId": ident} if kind == "igw" else {"NatGatewayId": ident}


# -- NAT gateways ----------------------------------------------------------------------------
def _find_nats(ec2: Any, vpc_id: str) -> dict[str, dict[str, Any]]:
    if is_placeholder(vpc_id):
        return {}
    found = ec2.describe_nat_gateways(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "state", "Values": list(LIVE_NAT)},
        ]
    )["NatGateways"]
    return {n["SubnetId"]: n for n in found}


def nat_azs(azs: list[str], nat: str) -> list[str]:
    return [] if nat == "none" else (azs if nat == "per_az" else azs[:1])


def _ensure_nats(
    cfg: Config, role: Role, vpc_id: str, public: dict[str, str], dry_run: bool
) -> tuple[list[Change], dict[str, str]]:
    names = names_for(cfg, role)
    region = names.region
    ec2 = ec2_client(cfg, role)
    by_subnet = _find_nats(ec2, vpc_id)
    changes: list[Change] = []
    ids: dict[str, str] = {}
    new_nats: list[str] = []
    for az in nat_azs(getattr(cfg.network, role).azs, cfg.network.nat):
        name = names.nat(az)
        tags = ec2_tags(names, "network", name)
        have = by_subnet.get(public[az])
        if have is not None:
            ids[az] = have["NatGatewayId"]
            changes += fix_tags(
                ec2, ids[az], "ec2:nat-gateway", name, region, tags, have.get("Tags"), dry_run
            )
            continue
        changes.append(created("ec2:nat-gateway", name, region, {"az": az}))
        if dry_run:
            ids[az] = placeholder("ec2:nat-gateway", name)
            continue
        eip = ec2.allocate_address(Domain="vpc", TagSpecifications=tag_spec("elastic-ip", tags))
        ids[az] = ec2.create_nat_gateway(
            SubnetId=public[az],
            AllocationId=eip["AllocationId"],
            TagSpecifications=tag_spec("natgateway", tags),
        )["NatGateway"]["NatGatewayId"]
        new_nats.append(ids[az])
    if new_nats:
        wait_for(
            lambda: ec2.describe_nat_gateways(NatGatewayIds=new_nats)["NatGateways"],
            until=lambda gws: all(g["State"] == "available" for g in gws),
            failed=lambda gws: next(
                (f"{g['NatGatewayId']} {g['State']}" for g in gws if g["State"] == "failed"), None
            ),
            what=f"NAT gateways in {region} available",
            timeout_s=NAT_TIMEOUT_S,
        )
    return changes, ids


# -- route tables ----------------------------------------------------------------------------
def _tables(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
    if is_placeholder(vpc_id):
        return []
    return ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[  # type: ignore[no-any-return]
        "RouteTables"
    ]


def _subnet_ids(subnets: dict[str, list[str]], azs: list[str]) -> dict[tuple[str, str], str]:
    return {(tier, az): ids[i] for tier, ids in subnets.items() for i, az in enumerate(azs)}


@step("ensure {role} NAT gateways")
def ensure_nat_gateways(
    cfg: Config, role: Role, vpc_id: str, public_subnets: list[str], *, dry_run: bool = False
) -> StepResult:
    """One NAT gateway per AZ (or the first AZ's only, or none, as the config says), each in
    its AZ's public subnet with an Elastic IP; waits until they are available."""
    azs: list[str] = getattr(cfg.network, role).azs
    changes, nat_ids = _ensure_nats(
        cfg, role, vpc_id, dict(zip(azs, public_subnets, strict=True)), dry_run
    )
    return StepResult(changes=changes, outputs={"nat_gateways": nat_ids}, applied=not dry_run)


@step("ensure {role} route tables")
def ensure_route_tables(
    cfg: Config,
    role: Role,
    vpc_id: str,
    igw_id: str,
    subnets: dict[str, list[str]],
    *,
    dry_run: bool = False,
) -> StepResult:
    """The route tables and their subnet associations; the public table's default route to
    the internet gateway, none on the data table. The app tables' default routes go to NAT
    gateways (:func:`ensure_nat_routes`), so the tables (which the VPC endpoints need) do not
    wait for the NAT gateways to become available."""
    names = names_for(cfg, role)
    region = names.region
    ec2 = ec2_client(cfg, role)
    azs: list[str] = getattr(cfg.network, role).azs
    by_az = _subnet_ids(subnets, azs)
    existing = _tables(ec2, vpc_id)
    by_name = {name_of(t): t for t in existing if name_of(t)}
    associated = {
        a["SubnetId"]: (a["RouteTableAssociationId"], t["RouteTableId"])
        for t in existing
        for a in t.get("Associations", [])
        if a.get("SubnetId")
    }
    changes: list[Change] = []
    table_ids: dict[str, str] = {}
    nat = cfg.network.nat
    nat_ids_unused = {az: "" for az in azs}  # the app tables' routes are the next step's
    for name, want in desired_tables(names, azs, nat, igw_id, nat_ids_unused).items():
        tier: Tier = want["tier"]
        tags = ec2_tags(names, f"network-{tier}", name)
        table = by_name.get(name)
        if table is None:
            changes.append(created("ec2:route-table", name, region, {"tier": tier}))
            if dry_run:
                table_ids[name] = placeholder("ec2:route-table", name)
                continue
            table = ec2.create_route_table(
                VpcId=vpc_id, TagSpecifications=tag_spec("route-table", tags)
            )["RouteTable"]
        else:
            changes += fix_tags(
                ec2,
                table["RouteTableId"],
                "ec2:route-table",
                name,
                region,
                tags,
                table.get("Tags"),
                dry_run,
            )
        table_id = table["RouteTableId"]
        table_ids[name] = table_id
        if tier != "app" or nat == "none":
            changes += _converge_route(ec2, table, name, region, want["target"], dry_run)
        for az in want["azs"]:
            subnet = by_az[(tier, az)]
            current = associated.get(subnet)
            if current and current[1] == table_id:
                continue
            changes.append(
                Change(
                    resource="ec2:route-table-association",
                    name=f"{name} ↔ {names.subnet(tier, az)}",
                    action=Action.UPDATE if current else Action.CREATE,
                    region=region,
                    before={"route_table": current[1]} if current else None,
                    after={"route_table": name},
                )
            )
            if dry_run or is_placeholder(subnet):
                continue
            if current:
                ec2.replace_route_table_association(AssociationId=current[0], RouteTableId=table_id)
            else:
                ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet)
    return StepResult(
        changes=changes,
        outputs={
            "route_tables": table_ids,
            "private_route_tables": [
                i for n, i in table_ids.items() if n != names.route_table("public")
            ],
        },
        applied=not dry_run,
    )


@step("ensure {role} NAT routes")
def ensure_nat_routes(
    cfg: Config,
    role: Role,
    route_tables: dict[str, str],
    nat_ids: dict[str, str],
    *,
    dry_run: bool = False,
) -> StepResult:
    """Each app table's default route to its NAT gateway (the same AZ's, or the first AZ's
    with ``nat: single``); nothing with ``nat: none`` (the tables' step removes the route)."""
    names = names_for(cfg, role)
    azs: list[str] = getattr(cfg.network, role).azs
    nat = cfg.network.nat
    if nat == "none":
        return result([], dry_run)
    ec2 = ec2_client(cfg, role)
    wanted = {
        name: want
        for name, want in desired_tables(names, azs, nat, "", nat_ids).items()
        if want["tier"] == "app"
    }
    real = [route_tables[n] for n in wanted if not is_placeholder(route_tables[n])]
    found = (
        {t["RouteTableId"]: t for t in ec2.describe_route_tables(RouteTableIds=real)["RouteTables"]}
        if real
        else {}
    )
    changes: list[Change] = []
    for name, want in wanted.items():
        table_id = route_tables[name]
        table = found.get(table_id, {"RouteTableId": table_id, "Routes": []})
        changes += _converge_route(ec2, table, name, names.region, want["target"], dry_run)
    return result(changes, dry_run)


def _converge_route(
    ec2: Any,
    table: dict[str, Any],
    name: str,
    region: str,
    target: tuple[str, str] | None,
    dry_run: bool,
) -> list[Change]:
    todo = route_drift(table.get("Routes", []), target)
    if todo is None:
        return []
    verb, current = todo
    before = {DEFAULT_ROUTE: _describe_route(current)} if current else None
    after = {DEFAULT_ROUTE: f"{target[0]} {target[1]}"} if target else None
    action = {"create": Action.CREATE, "replace": Action.UPDATE, "delete": Action.DELETE}[verb]
    change = Change(
        resource="ec2:route",
        name=f"{name} {DEFAULT_ROUTE}",
        action=action,
        region=region,
        before=before,
        after=after,
    )
    if dry_run:
        return [change]
    table_id = table["RouteTableId"]
    if verb == "delete":
        ec2.delete_route(RouteTableId=table_id, DestinationCidrBlock=DEFAULT_ROUTE)
    elif verb == "replace":
        ec2.replace_route(
            RouteTableId=table_id,
            DestinationCidrBlock=DEFAULT_ROUTE,
            **_route_target(target),  # type: ignore[arg-type]
        )
    else:
        ec2.create_route(
            RouteTableId=table_id,
            DestinationCidrBlock=DEFAULT_ROUTE,
            **_route_target(target),  # type: ignore[arg-type]
        )
    return [change]


def _describe_route(route: dict[str, Any]) -> str:
    for key in ("NatGatewayId", "GatewayId", "TransitGatewayId", "NetworkInterfaceId"):
        if route.get(key):
            return f"{key} {route[key]}"
    return str(route.get("State", "?"))


NAT_NOT_GONE = ("pending", "available", "deleting")


@step("delete {role} NAT gateways")
def ensure_nat_gateways_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names, ec2, vpc = network_of(cfg, role)
    changes: list[Change] = []
    if vpc is not None:
        filters = [*in_vpc(vpc), {"Name": "state", "Values": list(NAT_NOT_GONE)}]

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
