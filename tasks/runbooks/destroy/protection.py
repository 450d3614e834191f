"""What every step of the destroy runbook shares, and the checks it makes before deleting.

Destroy steps are ``ensure_<resource>_deleted``: describe by the stack's own names (derived from
``app`` + ``env``, or adopted under ``names:``), delete what is found, return one ``delete``
:class:`~tasks.changes.Change` per resource. Run again, they find nothing and change nothing;
with ``dry_run`` they only list. Nothing is found by anything looser than those names (or by
living inside the stack's own VPC), so nothing else in the account is ever touched.

Deletion protection is checked first (:func:`check_deletion_protection`): a protected
database or load balancer refuses the whole run before anything is deleted, unless the caller
asked to turn protection off as part of the destroy (:func:`ensure_protection_off`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import GONE_TIMEOUT_S, Action, Change, StepResult, result
from tasks.core.retry import wait_for
from tasks.core.steps import step
from tasks.resources.database.engine import protected_cluster
from tasks.resources.database.lookup import database_identifiers, describe_instance, rds_client
from tasks.resources.load_balancer import find_load_balancer


def protected_resources(dbs: list[dict[str, Any]], albs: dict[str, dict[str, str]]) -> list[str]:
    """Names of what deletion protection guards: database instances with
    ``DeletionProtection`` and load balancers whose ``deletion_protection.enabled`` is true.
    Pure; ``albs`` maps a load balancer's label to its attributes."""
    out = [f"database {d['DBInstanceIdentifier']}" for d in dbs if d.get("DeletionProtection")]
    out += [
        f"load balancer {label}"
        for label, attrs in albs.items()
        if attrs.get("deletion_protection.enabled") == "true"
    ]
    return out


def _alb_attributes(cfg: Config, role: Role) -> tuple[str, str, dict[str, str]] | None:
    lb = find_load_balancer(cfg, role)
    if lb is None:
        return None
    elb = connect(cfg).client("elbv2", names_for(cfg, role).region)
    attrs = elb.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])
    label = f"{lb['LoadBalancerName']} ({names_for(cfg, role).region})"
    return label, lb["LoadBalancerArn"], {a["Key"]: a["Value"] for a in attrs["Attributes"]}


def _instances(cfg: Config, role: Role) -> list[dict[str, Any]]:
    rds = rds_client(cfg, role)
    primary = describe_instance(rds, names_for(cfg, role).db_instance)
    found = [describe_instance(rds, i) for i in database_identifiers(cfg, role, primary)]
    return [d for d in found if d is not None]


@step("check deletion protection")
def check_deletion_protection(cfg: Config, roles: list[Role]) -> StepResult:
    """Read-only: which of the stack's databases and load balancers are protected."""
    dbs = [d for r in roles for d in _instances(cfg, r)]
    albs = {a[0]: a[2] for r in roles if (a := _alb_attributes(cfg, r))}
    found = protected_resources(dbs, albs)
    found += [
        f"cluster {c['DBClusterIdentifier']}" for r in roles if (c := protected_cluster(cfg, r))
    ]
    return StepResult(
        outputs={"protected": found},
        status="ok",
        detail="protected: " + ", ".join(found) if found else "nothing is protected",
    )


@step("turn deletion protection off")
def ensure_protection_off(cfg: Config, roles: list[Role], *, dry_run: bool = False) -> StepResult:
    """Only with ``--disable-deletion-protection``: the explicit, recorded way past it."""
    changes: list[Change] = []
    for role in roles:
        region = names_for(cfg, role).region
        rds = rds_client(cfg, role)
        for db in _instances(cfg, role):
            if not db.get("DeletionProtection"):
                continue
            ident = db["DBInstanceIdentifier"]
            changes.append(_off("rds:instance", ident, region))
            if not dry_run:
                rds.modify_db_instance(
                    DBInstanceIdentifier=ident, DeletionProtection=False, ApplyImmediately=True
                )
                wait_for(  # a database still modifying refuses DeleteDBInstance
                    partial(_db_status, rds, ident),
                    until=lambda status: status in ("available", None),
                    what=f"database {ident} available again",
                    timeout_s=GONE_TIMEOUT_S,
                )
        if cluster := protected_cluster(cfg, role):
            ident = cluster["DBClusterIdentifier"]
            changes.append(_off("rds:cluster", ident, region))
            if not dry_run:
                rds.modify_db_cluster(
                    DBClusterIdentifier=ident, DeletionProtection=False, ApplyImmediately=True
                )
        alb = _alb_attributes(cfg, role)
        if alb and alb[2].get("deletion_protection.enabled") == "true":
            changes.append(_off("elbv2:load-balancer", alb[0], region))
            if not dry_run:
                connect(cfg).client("elbv2", region).modify_load_balancer_attributes(
                    LoadBalancerArn=alb[1],
                    Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}],
                )
    return result(changes, dry_run)


def _db_status(rds: Any, ident: str) -> str | None:
    return (describe_instance(rds, ident) or {}).get("DBInstanceStatus")


def _off(resource: str, name: str, region: str) -> Change:
    return Change(
        resource=resource,
        name=name,
        action=Action.UPDATE,
        region=region,
        before={"deletion_protection": True},
        after={"deletion_protection": False},
    )
