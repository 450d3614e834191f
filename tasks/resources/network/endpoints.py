"""Network layer, private paths and records: VPC endpoints and flow logs.

Endpoints keep AWS API traffic of the app tier off the NAT gateways (cheaper, and still working
while a NAT is impaired): S3 as a gateway endpoint on the private route tables, the others
(ECR api/dkr, Secrets Manager, CloudWatch Logs, ECS…) as interface endpoints in the app
subnets behind the endpoints security group, with private DNS.
Flow logs of the whole VPC go to a CloudWatch log group through a role only the flow-logs
service can assume.
"""

from __future__ import annotations

from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.changes import (
    Change,
    StepResult,
    created,
    deleted,
    is_placeholder,
    placeholder,
    result,
    updated,
)
from tasks.core.retry import wait_gone
from tasks.core.steps import step
from tasks.resources.network.vpc import (
    ec2_client,
    ec2_tags,
    fix_tags,
    in_vpc,
    network_of,
    tag_spec,
)

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
    if not is_placeholder(vpc_id):
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
                created(
                    "ec2:vpc-endpoint",
                    label,
                    region,
                    {"service": service, "type": "Gateway" if gateway else "Interface"},
                )
            )
            if dry_run:
                ids[ep] = placeholder("ec2:vpc-endpoint", label)
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
            updated(
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


@step("delete {role} VPC endpoints")
def ensure_endpoints_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names, ec2, vpc = network_of(cfg, role)
    if vpc is None:
        return result([], dry_run)

    def live() -> list[dict[str, Any]]:
        found = ec2.describe_vpc_endpoints(Filters=in_vpc(vpc))["VpcEndpoints"]
        return [e for e in found if e.get("State", "").lower() not in ("deleted", "failed")]

    found = live()
    todo = [e for e in found if e.get("State", "").lower() != "deleting"]
    changes = [deleted("ec2:vpc-endpoint", e["ServiceName"], names.region) for e in todo]
    if not dry_run and todo:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[e["VpcEndpointId"] for e in todo])
    if not dry_run and found:
        wait_gone(live, f"VPC endpoints of {vpc} deleted")
    return result(changes, dry_run)
