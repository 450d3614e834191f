"""AZ network isolation for the game day: one AZ's subnets cut off by a deny-all network ACL.

The cut (:func:`isolate_az`) creates a network ACL in the stack's primary VPC with no rules
but the implicit deny (a new ACL denies everything in and out), tagged for the drill, and moves
every subnet of the AZ (public, app and data tiers, found by the address plan) onto it with
``ReplaceNetworkAclAssociation``. Before the first subnet moves, each subnet's original ACL is
written down in the DR region's lock table (which also keeps the locks, the readiness scorecard
and the pending fences), so a run killed mid-cut leaves what it takes to undo it.

:func:`restore_isolation` undoes it: every subnet still on the drill's ACL goes back to its
original ACL, the drill's ACL is deleted, then the record. The game day restores at its end and
after any failure or abort; a later game day, or the readiness drill, restores what a crashed
one left (:func:`pending_isolation`), unless a game day holds its lock right now.

::

    isolation record   "<app>-<env>/isolation/<region>", kind "isolation" (tasks.core.records):
                       the fields of :class:`Isolation` — environment, region, az, vpc_id,
                       acl_id (the deny-all ACL), subnets (subnet id -> its original ACL id),
                       since, run (the game day's flow run)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from configs.errors import BadInput, StepFailed
from configs.models import Config
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.changes import Action, Change, StepResult
from tasks.core.events import current_run
from tasks.core.locks import ensure_lock_table, lock_key, view_of
from tasks.core.records import NO_TABLE, delete_record, get_record, put_record
from tasks.core.retry import absent
from tasks.core.steps import step
from tasks.resources.network.vpc import ec2_tags, subnets_in_az, tag_spec

KIND = "isolation"
ACL_GONE = "InvalidNetworkAclID.NotFound"


@dataclass(frozen=True)
class Isolation:
    """An AZ whose subnets a game day moved onto its deny-all network ACL."""

    environment: str
    region: str
    az: str
    vpc_id: str
    acl_id: str
    subnets: dict[str, str] = field(default_factory=dict)  # subnet id -> original ACL id
    since: float = 0.0
    run: str = ""

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.since))
        run = f" by run {self.run}" if self.run else ""
        return (
            f"{len(self.subnets)} subnet(s) of {self.az} on deny-all network ACL {self.acl_id} "
            f"since {since} UTC{run}"
        )


# -- pure: names and what an item says --------------------------------------------------------
def isolation_id(stack: str, region: str) -> str:
    return f"{stack}/isolation/{region}"


def deny_all_name(cfg: Config) -> str:
    return f"{cfg.stack}-game-day-deny-all"


def isolation_of(fields: dict[str, Any]) -> Isolation:
    """An isolation from its record's fields (pure)."""
    known = {f.name for f in dataclass_fields(Isolation)}
    return Isolation(
        **{
            **{k: v for k, v in fields.items() if k in known},
            "subnets": {str(k): str(v) for k, v in (fields.get("subnets") or {}).items()},
            "since": float(fields.get("since", 0)),
        }
    )


def associations_of(acls: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Subnet id -> (its network ACL, the association's id), from ``DescribeNetworkAcls``."""
    return {
        a["SubnetId"]: (acl["NetworkAclId"], a["NetworkAclAssociationId"])
        for acl in acls
        for a in acl.get("Associations", [])
    }


# -- the record, in the DR region's lock table ------------------------------------------------
def record_isolation(cfg: Config, iso: Isolation) -> None:
    ensure_lock_table(cfg, cfg.regions.dr)
    put_record(cfg, isolation_id(iso.environment, iso.region), KIND, asdict(iso))


def pending_isolation(cfg: Config) -> Isolation | None:
    """What a game day's cut left in the primary region; None without a record or a table."""
    found = get_record(cfg, isolation_id(cfg.stack, cfg.regions.primary))
    return isolation_of(found) if found else None


def clear_isolation(cfg: Config, region: str) -> None:
    delete_record(cfg, isolation_id(cfg.stack, region))


def game_day_running(cfg: Config) -> bool:
    """A game day holds its lock (primary region) with a live lease: its cut is not left over."""
    ddb = connect(cfg).client("dynamodb", cfg.regions.primary)
    key = {"lock_id": {"S": lock_key(cfg, "game-day")}}
    found = absent(
        lambda: ddb.get_item(TableName=names_for(cfg).lock_table, Key=key, ConsistentRead=True),
        NO_TABLE,
    )
    item = (found or {}).get("Item")
    return item is not None and view_of(item, cfg.regions.primary).lease_left(time.time()) > 0


# -- EC2 --------------------------------------------------------------------------------------
def _acls(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
    pages = ec2.get_paginator("describe_network_acls").paginate(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
    )
    return [acl for page in pages for acl in page["NetworkAcls"]]


def _deny_all_ids(cfg: Config, acls: list[dict[str, Any]]) -> list[str]:
    """The drill's ACLs among ``acls``, by their Name tag."""
    name = deny_all_name(cfg)
    return [
        acl["NetworkAclId"]
        for acl in acls
        if {"Key": "Name", "Value": name} in acl.get("Tags", []) and not acl.get("IsDefault")
    ]


def _change(region: str, name: str, action: Action, detail: str) -> Change:
    return Change(
        resource="ec2:network-acl-association" if action == Action.REPLACE else "ec2:network-acl",
        name=name,
        action=action,
        region=region,
        detail=detail,
    )


@step("isolate the network of {az}")
def isolate_az(cfg: Config, az: str) -> StepResult:
    """Move every subnet of ``az`` onto a deny-all network ACL, its original ACLs recorded
    first."""
    names = names_for(cfg, "primary")
    region = names.region
    ec2 = connect(cfg).client("ec2", region)
    vpc_id, subnets = subnets_in_az(cfg, "primary", az)
    if vpc_id is None or not subnets:
        raise BadInput(f"no subnets of {names.vpc} found in {az} ({region})")
    acls = _acls(ec2, vpc_id)
    now = associations_of(acls)
    drills = _deny_all_ids(cfg, acls)
    if on_drill := [s for s in subnets if now.get(s, ("", ""))[0] in drills]:
        raise StepFailed(
            f"subnet(s) {', '.join(on_drill)} already on the game day's deny-all ACL with no "
            "record of their original ACL: associate them by hand"
        )
    if unassociated := [s for s in subnets if s not in now]:
        raise StepFailed(f"subnet(s) {', '.join(unassociated)} have no network ACL association")
    changes: list[Change] = []
    if drills:  # made by a run that died before recording it: reuse it
        acl_id = drills[0]
    else:
        acl_id = ec2.create_network_acl(
            VpcId=vpc_id,
            TagSpecifications=tag_spec(
                "network-acl", ec2_tags(names, "game-day", deny_all_name(cfg))
            ),
        )["NetworkAcl"]["NetworkAclId"]
        changes.append(_change(region, deny_all_name(cfg), Action.CREATE, f"deny all, {acl_id}"))
    run = current_run()
    record_isolation(
        cfg,
        Isolation(
            environment=cfg.stack,
            region=region,
            az=az,
            vpc_id=vpc_id,
            acl_id=acl_id,
            subnets={s: now[s][0] for s in subnets},
            since=time.time(),
            run=run.flow_run_id if run else "",
        ),
    )
    for subnet in subnets:
        ec2.replace_network_acl_association(AssociationId=now[subnet][1], NetworkAclId=acl_id)
        changes.append(_change(region, subnet, Action.REPLACE, f"{now[subnet][0]} → {acl_id}"))
    return StepResult(
        changes=changes,
        applied=True,
        outputs={"acl": acl_id, "subnets": subnets, "at": time.time()},
        status="ok",
        detail=f"{len(subnets)} subnet(s) of {az} on deny-all network ACL {acl_id}",
    )


def _delete_acl(ec2: Any, acl_id: str) -> bool:
    """Delete the network ACL; False when it was already gone."""
    return absent(lambda: ec2.delete_network_acl(NetworkAclId=acl_id), ACL_GONE) is not None


@step("restore the network of {iso.az}")
def restore_isolation(cfg: Config, iso: Isolation) -> StepResult:
    """Every subnet still on the drill's ACL back on its original one; the drill's ACL and the
    record deleted. Safe to repeat: what is already restored is left alone."""
    region = iso.region
    ec2 = connect(cfg).client("ec2", region)
    acls = _acls(ec2, iso.vpc_id)
    drills = set(_deny_all_ids(cfg, acls)) | {iso.acl_id}
    now = associations_of(acls)
    changes: list[Change] = []
    for subnet, original in iso.subnets.items():
        acl, association = now.get(subnet, ("", ""))
        if acl in drills and acl != original:
            ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=original)
            changes.append(_change(region, subnet, Action.REPLACE, f"{acl} → {original}"))
    for acl_id in sorted(drills):
        if _delete_acl(ec2, acl_id):
            changes.append(_change(region, deny_all_name(cfg), Action.DELETE, acl_id))
    clear_isolation(cfg, region)
    restored = sum(c.action == Action.REPLACE for c in changes)
    return StepResult(
        changes=changes,
        applied=bool(changes),
        outputs={"restored": restored},
        status="ok",
        detail=f"{restored} subnet(s) of {iso.az} back on their network ACLs",
    )


def plan_isolation(cfg: Config, az: str) -> list[Change]:
    """What :func:`isolate_az` would change, read-only."""
    region = cfg.regions.primary
    _, subnets = subnets_in_az(cfg, "primary", az)
    return [
        _change(region, deny_all_name(cfg), Action.CREATE, "deny all, for the game day"),
        *(
            _change(region, s, Action.REPLACE, f"onto {deny_all_name(cfg)}, restored at the end")
            for s in subnets
        ),
    ]
