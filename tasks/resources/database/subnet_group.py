"""Subnet group: from database, teardown_data."""

from __future__ import annotations

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.changes import (
    StepResult,
    created,
    deleted,
    result,
    updated,
)
from tasks.core.errors import AwsError
from tasks.core.retry import absent, is_code
from tasks.core.steps import step
from tasks.core.tags import tag_list
from tasks.resources.database.lookup import (
    rds_client,
)


# -- subnet group ----------------------------------------------------------------------------
@step("ensure {role} DB subnet group")
def ensure_db_subnet_group(
    cfg: Config, role: Role, data_subnets: list[str], *, dry_run: bool = False
) -> StepResult:
    """The data subnets of every AZ, so Multi-AZ standby and readers can land anywhere."""
    names = names_for(cfg, role)
    region = names.region
    rds = rds_client(cfg, role)
    name = names.db_subnet_group
    try:
        group = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0]
    except AwsError as exc:
        if not is_code(exc, "DBSubnetGroupNotFoundFault"):
            raise
        group = None
    if group is None:
        change = created("rds:subnet-group", name, region, {"subnets": len(data_subnets)})
        if not dry_run:
            rds.create_db_subnet_group(
                DBSubnetGroupName=name,
                DBSubnetGroupDescription=f"{names.stem} data tier",
                SubnetIds=data_subnets,
                Tags=tag_list(names.tags("data")),
            )
        return StepResult(changes=[change], outputs={"name": name}, applied=not dry_run)
    have = sorted(s["SubnetIdentifier"] for s in group.get("Subnets", []))
    if have == sorted(data_subnets):
        return StepResult(outputs={"name": name})
    change = updated(
        "rds:subnet-group", name, region, {"subnets": have}, {"subnets": sorted(data_subnets)}
    )
    if not dry_run:
        rds.modify_db_subnet_group(DBSubnetGroupName=name, SubnetIds=data_subnets)
    return StepResult(changes=[change], outputs={"name": name}, applied=not dry_run)


@step("delete {role} DB subnet group")
def ensure_db_subnet_group_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    rds, name = rds_client(cfg, role), names.db_subnet_group
    found = absent(
        lambda: rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"],
        "DBSubnetGroupNotFoundFault",
    )
    if not found:
        return result([], dry_run)
    if not dry_run:
        rds.delete_db_subnet_group(DBSubnetGroupName=name)
    return result([deleted("rds:subnet-group", name, names.region)], dry_run)
