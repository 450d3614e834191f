"""Database: from failover."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from configs.errors import NotFound, StepFailed
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import StepResult, created, deleted, updated
from tasks.core.retry import absent, wait_for, wait_gone
from tasks.core.steps import step
from tasks.core.tags import tag_dict, tag_list
from tasks.resources.database.copies import (
    COPY_TIMEOUT_S,
    SOURCE_CREATED_TAG,
    copy_id,
    newest_copy,
    source_created,
    utcnow,
    wait_snapshot,
)
from tasks.resources.database.lookup import (
    INSTANCE_NOT_FOUND,
    describe_instance,
    describe_snapshot,
    is_aurora,
    is_replica,
)
from tasks.resources.database.postgres import instance_settings
from tasks.resources.database.replicas import replica_params
from tasks.resources.network.vpc import find_network
from tasks.runbooks.failover.aurora import promote_aurora, switchover_aurora
from tasks.runbooks.failover.readiness import lag_points, replica_lag_of, worst_lag

RESTORED_FROM_TAG = "tierbook:restored-from"


def _db(cfg: Config, role: Role) -> dict[str, Any]:
    names = names_for(cfg, role)
    found = describe_instance(connect(cfg).client("rds", names.region), names.db_instance)
    if found is None:
        raise NotFound(f"database {names.db_instance} does not exist in {names.region}")
    return found


def wait_available(cfg: Config, role: Role, what: str, timeout_s: float) -> dict[str, Any]:
    return wait_for(
        lambda: _db(cfg, role),
        until=lambda d: d.get("DBInstanceStatus") == "available",
        failed=lambda d: (
            f"status {d.get('DBInstanceStatus')}"
            if d.get("DBInstanceStatus") in ("failed", "incompatible-parameters", "storage-full")
            else None
        ),
        what=what,
        timeout_s=timeout_s,
        describe=lambda d: str(d.get("DBInstanceStatus")),
    )


@step("promote {role} replica")
def promote_replica(cfg: Config, role: Role) -> StepResult:
    """Make ``role``'s cross-region replica a standalone, writable instance."""
    if is_aurora(cfg):
        return promote_aurora(cfg, role)
    names = names_for(cfg, role)
    timeout = cfg.failover.promote_timeout_seconds
    db = _db(cfg, role)
    if not is_replica(db):
        if db.get("DBInstanceStatus") != "available":
            wait_available(cfg, role, f"{names.db_instance} available", timeout)
        return StepResult(detail=f"{names.db_instance} was already promoted")
    if db.get("DBInstanceStatus") != "available":
        db = wait_available(cfg, role, f"replica {names.db_instance} available", timeout)
    rds = connect(cfg).client("rds", names.region)
    rds.promote_read_replica(
        DBInstanceIdentifier=names.db_instance,
        BackupRetentionPeriod=cfg.database.backup_retention_days,
    )
    wait_for(
        lambda: _db(cfg, role),
        until=lambda d: d.get("DBInstanceStatus") == "available" and not is_replica(d),
        what=f"{names.db_instance} promoted",
        timeout_s=timeout,
        describe=lambda d: f"{d.get('DBInstanceStatus')}, replica={is_replica(d)}",
    )
    return StepResult(
        changes=[
            updated(
                "rds:instance",
                names.db_instance,
                names.region,
                {"role": "read replica"},
                {"role": "standalone primary"},
            )
        ],
        applied=True,
    )


def hardening(cfg: Config, db: dict[str, Any]) -> dict[str, Any]:
    """What a promoted instance lacks as a primary. Pure."""
    want = {
        "MultiAZ": cfg.database.multi_az,
        "BackupRetentionPeriod": cfg.database.backup_retention_days,
        "DeletionProtection": cfg.database.deletion_protection,
    }
    return {k: v for k, v in want.items() if db.get(k) != v}


@step("harden {role} database")
def harden_database(cfg: Config, role: Role) -> StepResult:
    """Multi-AZ, backups and deletion protection on a newly promoted primary."""
    if is_aurora(cfg):
        return StepResult(skipped="an Aurora cluster keeps its settings through promotion")
    names = names_for(cfg, role)
    db = _db(cfg, role)
    todo = hardening(cfg, db)
    if not todo:
        return StepResult(detail="Multi-AZ, backups and deletion protection already on")
    connect(cfg).client("rds", names.region).modify_db_instance(
        DBInstanceIdentifier=names.db_instance, ApplyImmediately=True, **todo
    )
    wait_available(cfg, role, f"{names.db_instance} modified", cfg.failover.promote_timeout_seconds)
    return StepResult(
        changes=[
            updated(
                "rds:instance", names.db_instance, names.region, {k: db.get(k) for k in todo}, todo
            )
        ],
        applied=True,
    )


def retired_name(ident: str, stamp: str) -> str:
    return f"{ident}-retired-{stamp}"[:63]


def newest_retired(rds: Any, ident: str) -> dict[str, Any] | None:
    """The most recently retired copy of ``ident`` in this region (the stamp sorts), if any."""
    prefix = retired_name(ident, "")
    found = [
        d
        for page in rds.get_paginator("describe_db_instances").paginate()
        for d in page["DBInstances"]
        if d["DBInstanceIdentifier"].startswith(prefix)
    ]
    return max(found, key=lambda d: d["DBInstanceIdentifier"], default=None)


@step("retire {role} database")
def retire_database(cfg: Config, role: Role, stamp: str) -> StepResult:
    """Move a database that is not (or no longer) the copy ``role`` needs out of the way: it
    is renamed, not deleted, so its data stays for whoever needs to look at it."""
    names = names_for(cfg, role)
    rds = connect(cfg).client("rds", names.region)
    db = describe_instance(rds, names.db_instance)
    if db is None:
        return StepResult(detail=f"no {names.db_instance} in {names.region}")
    if is_replica(db):
        return StepResult(detail=f"{names.db_instance} is already a replica")
    new = retired_name(names.db_instance, stamp)
    if db.get("DBInstanceStatus") != "available":
        wait_available(
            cfg, role, f"{names.db_instance} available", cfg.failover.promote_timeout_seconds
        )
    rds.modify_db_instance(
        DBInstanceIdentifier=names.db_instance, NewDBInstanceIdentifier=new, ApplyImmediately=True
    )
    wait_for(
        lambda: describe_instance(rds, new),
        until=lambda d: d is not None and d.get("DBInstanceStatus") == "available",
        what=f"{names.db_instance} renamed to {new}",
        timeout_s=cfg.failover.promote_timeout_seconds,
        describe=lambda d: str((d or {}).get("DBInstanceStatus")),
    )
    return StepResult(
        changes=[
            updated(
                "rds:instance",
                names.db_instance,
                names.region,
                {"identifier": names.db_instance},
                {"identifier": new},
                detail="kept for inspection; delete it when done",
            )
        ],
        applied=True,
        outputs={"retired": new},
    )


@step("replicate {source} database into {role}")
def replicate_database(cfg: Config, role: Role, source: Role) -> StepResult:
    """A cross-region read replica of ``source``'s database as ``role``'s database."""
    names, src = names_for(cfg, role), names_for(cfg, source)
    rds = connect(cfg).client("rds", names.region)
    have = describe_instance(rds, names.db_instance)
    if have is None:
        origin = _db(cfg, source)
        like = newest_retired(rds, names.db_instance)
        if like is not None:
            # Placed like the database it replaces: right for a stack built elsewhere too.
            subnet_group = like["DBSubnetGroup"]["DBSubnetGroupName"]
            groups = [g["VpcSecurityGroupId"] for g in like.get("VpcSecurityGroups", [])]
            key: str | None = like.get("KmsKeyId")  # None: unencrypted, so is its copy
        else:
            subnet_group = names.db_subnet_group
            groups = [find_network(cfg, role).security_groups["data"]]
            key = f"arn:aws:kms:{names.region}:{cfg.account_id}:{names.kms_alias}"
        params = {
            k: v
            for k, v in replica_params(cfg, names.db_instance, groups[0]).items()
            if k != "CopyTagsToSnapshot"
        }
        rds.create_db_instance_read_replica(
            SourceDBInstanceIdentifier=origin["DBInstanceArn"],
            SourceRegion=src.region,
            DBSubnetGroupName=subnet_group,
            **{**params, "VpcSecurityGroupIds": groups, **({"KmsKeyId": key} if key else {})},
        )
        changes = [
            created(
                "rds:cross-region-replica",
                names.db_instance,
                names.region,
                {"source": origin["DBInstanceArn"]},
            )
        ]
    elif not is_replica(have):
        raise StepFailed(
            f"{names.db_instance} in {names.region} is a standalone database; retire it first"
        )
    else:
        changes = []
    wait_available(
        cfg, role, f"replica {names.db_instance} available", cfg.failover.promote_timeout_seconds
    )
    return StepResult(changes=changes, applied=True, detail=f"{names.db_instance} replicating")


@step("wait for {role} replica to catch up")
def wait_caught_up(cfg: Config, role: Role, max_lag_s: float) -> StepResult:
    lag = wait_for(
        lambda: replica_lag_of(cfg, role),
        until=lambda v: v is not None and v <= max_lag_s,
        what=f"{role} replica lag ≤ {max_lag_s:g}s",
        timeout_s=cfg.failover.promote_timeout_seconds,
        describe=lambda v: "no data" if v is None else f"{v:g}s",
    )
    return StepResult(status="passed", detail=f"lag {lag:g}s", outputs={"lag_s": lag})


def lag_after(
    points: list[dict[str, Any]], since: datetime, *, aurora: bool = False
) -> float | None:
    """The worst lag among the periods that began at or after ``since`` (a period that began
    before it may hold lag from before the fence); None while there is none. Pure."""
    return worst_lag([p for p in points if p["Timestamp"] >= since], aurora=aurora)


@step("confirm {role} replica lag 0")
def confirm_caught_up(cfg: Config, role: Role, fenced_at: float) -> StepResult:
    """After the writers were fenced (at ``fenced_at``, epoch seconds): wait until ``role``'s
    replica has reported a lag of 0, and nothing else, for ``switchover_quiet_seconds`` —
    everything written before the fence has been applied. Fails when the replica stops being
    one (nothing would apply the rest)."""
    names = names_for(cfg, role)
    quiet = cfg.failover.switchover_quiet_seconds
    since = datetime.fromtimestamp(math.ceil(fenced_at), UTC)
    aurora = is_aurora(cfg)

    def read() -> tuple[float, float | None]:
        if not aurora:
            db = _db(cfg, role)
            if not is_replica(db) or db.get("DBInstanceStatus") != "available":
                raise StepFailed(
                    f"{names.db_instance} stopped replicating "
                    f"({db.get('DBInstanceStatus')}, replica={is_replica(db)}); not promoting"
                )
        end = datetime.now(UTC) + timedelta(minutes=1)
        worst = lag_after(lag_points(cfg, role, since, end), since, aurora=aurora)
        return time.time() - fenced_at, worst

    waited, _ = wait_for(
        read,
        until=lambda r: r[1] == 0 and r[0] >= quiet,
        what=f"{names.db_instance} replica lag 0 for {quiet:g}s after the fence",
        timeout_s=cfg.failover.promote_timeout_seconds,
        describe=lambda r: "no data since the fence" if r[1] is None else f"lag {r[1]:g}s",
    )
    return StepResult(
        status="passed",
        detail=f"lag 0 for {waited:.1f}s since the fence (≥ {quiet:g}s)",
        outputs={"lag_s": 0.0, "verified": True},
    )


@step("switch {role} database to writer")
def switch_database(cfg: Config, role: Role) -> StepResult:
    """The planned promotion. An Aurora global database switches over (AWS waits until the
    secondary has everything, then swaps: no data lost); an instance replica, whose lag was
    confirmed 0 after the fence, is promoted."""
    if is_aurora(cfg):
        return switchover_aurora(cfg, role)
    return promote_replica.fn(cfg, role)


@step("delete the {role} database set aside by {stamp}")
def drop_retired(cfg: Config, role: Role, stamp: str) -> StepResult:
    """Delete the copy a planned move of this run set aside (renamed with ``stamp``). Only
    for a move that verified an RPO of 0: every row it holds is in the live database."""
    names = names_for(cfg, role)
    rds = connect(cfg).client("rds", names.region)
    ident = retired_name(names.db_instance, stamp)
    db = describe_instance(rds, ident)
    if db is None or db.get("DBInstanceStatus") == "deleting":
        return StepResult(detail=f"no {ident} in {names.region}")
    if db.get("DeletionProtection"):
        rds.modify_db_instance(
            DBInstanceIdentifier=ident, DeletionProtection=False, ApplyImmediately=True
        )
    absent(
        lambda: rds.delete_db_instance(
            DBInstanceIdentifier=ident, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
        ),
        *INSTANCE_NOT_FOUND,
    )
    return StepResult(
        changes=[deleted("rds:instance", ident, names.region, detail="set aside by this run")],
        applied=True,
    )


# -- backup and restore: the DR database made at a move, and put away after --------------------
@step("restore {role} database from the newest snapshot copy")
def restore_database(cfg: Config, role: Role) -> StepResult:
    """Backup and restore: ``role``'s database restored from the newest snapshot copy held
    there (reads and writes in ``role``'s region only), placed as provision places it (its DB
    subnet group, behind its data group), Multi-AZ and protected as the config asks. A
    database already there (a re-run) is waited on, not restored again. Outputs the copy and
    the time its data was taken: the RPO is the moment of the move minus that."""
    names = names_for(cfg, role)
    rds = connect(cfg).client("rds", names.region)
    db = describe_instance(rds, names.db_instance)
    changes = []
    if db is None:
        copy = newest_copy(cfg)
        if copy is None:
            raise NotFound(
                f"no snapshot copy in {names.region} to restore {names.db_instance} from: "
                "run `tierbook snapshot-copy` while the primary answers"
            )
        ident = copy["DBSnapshotIdentifier"]
        data_sg = find_network(cfg, role).security_groups["data"]
        # Performance Insights is not a restore parameter (the restored instance runs without)
        settings = {
            k: v
            for k, v in instance_settings(cfg, data_sg).items()
            if k != "EnablePerformanceInsights"
        }
        rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=names.db_instance,
            DBSnapshotIdentifier=ident,
            DBSubnetGroupName=names.db_subnet_group,
            Tags=tag_list({**names.tags("data"), RESTORED_FROM_TAG: ident}),
            **settings,
        )
        taken = source_created(copy)
        changes = [created("rds:instance", names.db_instance, names.region, {"snapshot": ident})]
    else:
        ident = tag_dict(db.get("TagList")).get(RESTORED_FROM_TAG, "")
        copy = describe_snapshot(rds, ident) if ident else None
        taken = source_created(copy) if copy else None
    wait_available(cfg, role, f"{names.db_instance} restored", cfg.failover.promote_timeout_seconds)
    return StepResult(
        changes=changes,
        applied=True,
        outputs={"snapshot": ident, "taken": taken.isoformat() if taken else None},
        detail=f"{names.db_instance} from {ident or 'an earlier run'}",
    )


@step("put the {role} database away as a snapshot copy")
def put_away_database(cfg: Config, role: Role) -> StepResult:
    """Backup and restore, once the stack is home: ``role``'s database (restored by the move,
    now replicated home and left behind) deleted with a final snapshot that is itself the
    newest copy — the data as the planned move home left it (RPO 0 verified)."""
    names = names_for(cfg, role)
    rds = connect(cfg).client("rds", names.region)
    db = describe_instance(rds, names.db_instance)
    if db is None:
        return StepResult(detail=f"no {names.db_instance} in {names.region}")
    final = copy_id(cfg, utcnow())
    if db.get("DBInstanceStatus") != "deleting":
        if db.get("DeletionProtection"):
            rds.modify_db_instance(
                DBInstanceIdentifier=names.db_instance,
                DeletionProtection=False,
                ApplyImmediately=True,
            )
        absent(
            lambda: rds.delete_db_instance(
                DBInstanceIdentifier=names.db_instance,
                FinalDBSnapshotIdentifier=final,
                DeleteAutomatedBackups=True,
            ),
            *INSTANCE_NOT_FOUND,
        )
    wait_gone(lambda: describe_instance(rds, names.db_instance), f"{names.db_instance} deleted")
    if describe_snapshot(rds, final) is not None:
        snap = wait_snapshot(rds, final, f"final snapshot {final} available", COPY_TIMEOUT_S)
        rds.add_tags_to_resource(
            ResourceName=snap["DBSnapshotArn"],
            Tags=tag_list({SOURCE_CREATED_TAG: snap["SnapshotCreateTime"].isoformat()}),
        )
    return StepResult(
        changes=[deleted("rds:instance", names.db_instance, names.region, f"final copy {final}")],
        applied=True,
    )
