"""Backup drill steps: prove a backup restores, in the DR region, and measure how long it takes.

A snapshot of the primary database (a new one, or the latest automated one) is copied to the DR
region under the DR region's KMS key, restored into a temporary instance in the DR data
subnets, optionally checked, and deleted again. The temporary instance and the drill's
snapshots carry the drill id ``<app>-<env>-drill-<UTC stamp>-<random>``; the delete step refuses any
identifier without that prefix, so a drill can never delete a real database.

The SQL check runs only through a hook (``TIERBOOK_BACKUP_CHECK_HOOK``, a command that gets the
restored endpoint and the SQL in its environment and exits 0 when the check passes): tierbook
carries no database driver. Without a hook the check is recorded as skipped, with the reason.
"""

from __future__ import annotations

import os
import secrets
import shlex
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

from configs.errors import NotFound, Refused, StepFailed
from configs.models import Config
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.changes import Action, Change, StepResult, created, temporary
from tasks.core.errors import AwsError
from tasks.core.retry import is_code, wait_for
from tasks.core.steps import step
from tasks.core.tags import tag_list
from tasks.resources.database.copies import copy_to_dr, wait_snapshot
from tasks.resources.database.lookup import describe_instance

SNAPSHOT_TIMEOUT_S = 3600.0


COPY_TIMEOUT_S = 7200.0


RESTORE_TIMEOUT_S = 3600.0


DELETE_TIMEOUT_S = 1800.0


CHECK_TIMEOUT_S = 300.0


CHECK_HOOK_ENV = "TIERBOOK_BACKUP_CHECK_HOOK"


DRILL_TAG = "tierbook-drill"


FAILED_STATES = {"failed", "incompatible-restore", "incompatible-parameters", "storage-full"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def drill_prefix(cfg: Config) -> str:
    return f"{cfg.stack}-drill-"


def drill_id(cfg: Config, started: datetime) -> str:
    """``<app>-<env>-drill-YYYYmmddHHMMSS-xxxx``: a valid RDS and ElastiCache identifier
    (at most 51 characters), unique even for two drills started in the same second."""
    return f"{drill_prefix(cfg)}{started.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(2)}"


def drill_tags(cfg: Config, drill: str) -> list[dict[str, str]]:
    return tag_list({**names_for(cfg).tags("drill"), DRILL_TAG: drill})


def _rds(cfg: Config, region: str) -> Any:
    return connect(cfg).client("rds", region)


def stamp_of(ident: str, prefix: str) -> datetime | None:
    """The UTC time a drill id was made, read back from its name. Pure."""
    if not ident.startswith(prefix):
        return None
    try:
        stamp = ident[len(prefix) : len(prefix) + 14]
        return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def latest_automated(snapshots: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest available automated snapshot. Pure."""
    ready = [s for s in snapshots if s.get("Status") == "available" and s.get("SnapshotCreateTime")]
    return max(ready, key=lambda s: s["SnapshotCreateTime"], default=None)


def expired(
    snapshots: list[dict[str, Any]],
    *,
    prefix: str,
    now: datetime,
    keep_days: int,
    created_key: str,
    id_key: str,
    keep: frozenset[str] = frozenset(),
) -> list[str]:
    """Drill snapshots (by ``prefix``) older than ``keep_days``, never those in ``keep``. Pure."""
    cutoff = now - timedelta(days=keep_days)
    out = []
    for s in snapshots:
        ident, created = s.get(id_key, ""), s.get(created_key)
        if not ident.startswith(prefix) or ident in keep or created is None:
            continue
        if created < cutoff:
            out.append(ident)
    return sorted(out)


# -- snapshot ----------------------------------------------------------------------------------
@step("snapshot primary database ({source})")
def take_db_snapshot(
    cfg: Config, drill: str, source: str = "new", *, timeout_s: float = SNAPSHOT_TIMEOUT_S
) -> StepResult:
    """Not idempotent by name: each drill takes its own snapshot (``source='new'``), or picks
    the newest automated one (``source='automated'``)."""
    names = names_for(cfg, "primary")
    rds = _rds(cfg, names.region)
    if describe_instance(rds, names.db_instance) is None:
        raise NotFound(f"primary database {names.db_instance} not found in {names.region}")
    if source == "automated":
        found = rds.describe_db_snapshots(
            DBInstanceIdentifier=names.db_instance, SnapshotType="automated"
        )["DBSnapshots"]
        snap = latest_automated(found)
        if snap is None:
            raise StepFailed(f"{names.db_instance} has no available automated snapshot")
    elif source == "new":
        rds.create_db_snapshot(
            DBInstanceIdentifier=names.db_instance,
            DBSnapshotIdentifier=drill,
            Tags=drill_tags(cfg, drill),
        )
        snap = wait_snapshot(rds, drill, f"snapshot {drill} available", timeout_s)
    else:
        raise Refused(f"snapshot source must be 'new' or 'automated' (got {source!r})")
    return StepResult(
        outputs={
            "id": snap["DBSnapshotIdentifier"],
            "arn": snap["DBSnapshotArn"],
            "created": snap["SnapshotCreateTime"].isoformat(),
            "type": snap.get("SnapshotType", source),
        },
        status="ok",
        detail=f"{snap['DBSnapshotIdentifier']} ({snap.get('SnapshotType', source)})",
    )


@step("copy snapshot to DR")
def copy_snapshot_to_dr(
    cfg: Config, source_arn: str, drill: str, *, timeout_s: float = COPY_TIMEOUT_S
) -> StepResult:
    """Copy into the DR region, re-encrypted with the DR region's key (an encrypted snapshot
    cannot use a key of another region). A copy already made by this drill is reused."""
    dr = names_for(cfg, "dr")
    started = utcnow()
    tags = {**names_for(cfg).tags("drill"), DRILL_TAG: drill}
    snap = copy_to_dr(cfg, source_arn, drill, tags, timeout_s)
    key_arn = str(snap.get("KmsKeyId", ""))
    seconds = (utcnow() - started).total_seconds()
    return StepResult(
        outputs={"id": drill, "arn": snap["DBSnapshotArn"], "seconds": seconds, "key": key_arn},
        status="ok",
        detail=f"{drill} in {dr.region} under {dr.kms_alias} ({seconds:.1f}s)",
    )


# -- restore -----------------------------------------------------------------------------------
def dr_data_groups(cfg: Config) -> list[str]:
    dr = names_for(cfg, "dr")
    ec2 = connect(cfg).client("ec2", dr.region)
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [dr.security_group("data")]}]
    )["SecurityGroups"]
    return [groups[0]["GroupId"]] if groups else []


@step("restore temporary instance in DR")
def restore_temporary_instance(
    cfg: Config, snapshot: str, instance: str, *, timeout_s: float = RESTORE_TIMEOUT_S
) -> StepResult:
    """Restore into the DR data subnets (provision's DB subnet group) behind the data group;
    single-AZ, no deletion protection: it lives only as long as the drill."""
    dr = names_for(cfg, "dr")
    rds = _rds(cfg, dr.region)
    started = utcnow()
    if describe_instance(rds, instance) is None:
        params: dict[str, Any] = {
            "DBInstanceIdentifier": instance,
            "DBSnapshotIdentifier": snapshot,
            "DBSubnetGroupName": dr.db_subnet_group,
            "DBInstanceClass": cfg.database.instance_class,
            "MultiAZ": False,
            "PubliclyAccessible": False,
            "DeletionProtection": False,
            "Tags": drill_tags(cfg, instance),
        }
        if groups := dr_data_groups(cfg):
            params["VpcSecurityGroupIds"] = groups
        rds.restore_db_instance_from_db_snapshot(**params)
    db = wait_for(
        lambda: describe_instance(rds, instance) or {"DBInstanceStatus": "missing"},
        until=lambda d: d.get("DBInstanceStatus") == "available",
        failed=lambda d: (
            f"instance is {d['DBInstanceStatus']}"
            if d.get("DBInstanceStatus") in FAILED_STATES | {"missing"}
            else None
        ),
        what=f"restored instance {instance} available",
        timeout_s=timeout_s,
        describe=lambda d: str(d.get("DBInstanceStatus")),
    )
    seconds = (utcnow() - started).total_seconds()
    endpoint = db.get("Endpoint") or {}
    return StepResult(
        outputs={
            "seconds": seconds,
            "host": endpoint.get("Address", ""),
            "port": int(endpoint.get("Port") or cfg.database.port),
            "vpc": (db.get("DBSubnetGroup") or {}).get("VpcId", ""),
        },
        status="ok",
        detail=f"{instance} available in {dr.region} ({seconds:.1f}s)",
    )


def _reachable(host: str, port: int, timeout_s: float = 3.0) -> bool:
    if not host:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@step("check restored data")
def check_restored_data(cfg: Config, instance: str, host: str, port: int) -> StepResult:
    """Run ``drills.backup_restore.check_sql`` through the check hook; never a pretend pass."""
    sql = cfg.drills.backup_restore.check_sql
    if not sql:
        return StepResult(skipped="no check_sql configured")
    hook = os.environ.get(CHECK_HOOK_ENV, "").strip()
    if not hook:
        where = "reachable" if _reachable(host, port) else "not reachable from here"
        return StepResult(
            skipped=f"not run: no check hook ({CHECK_HOOK_ENV}) and {host}:{port} is {where}; "
            "tierbook carries no database driver"
        )
    env = {
        **os.environ,
        "TIERBOOK_CHECK_HOST": host,
        "TIERBOOK_CHECK_PORT": str(port),
        "TIERBOOK_CHECK_DB": cfg.database.db_name,
        "TIERBOOK_CHECK_USER": cfg.database.master_username,
        "TIERBOOK_CHECK_INSTANCE": instance,
        "TIERBOOK_CHECK_REGION": cfg.regions.dr,
        "TIERBOOK_CHECK_SQL": sql,
    }
    try:
        done = subprocess.run(
            shlex.split(hook), env=env, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StepFailed(f"check hook could not run: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-300:]
        raise StepFailed(f"check failed (hook exit {done.returncode}): {tail}")
    return StepResult(status="passed", detail=(done.stdout.strip()[-200:] or "check passed"))


# -- cleanup -----------------------------------------------------------------------------------
@step("delete temporary instance")
def delete_temporary_instance(
    cfg: Config, instance: str, *, timeout_s: float = DELETE_TIMEOUT_S
) -> StepResult:
    """Always runs, also after a failed step. Refuses anything not named like a drill."""
    if not instance.startswith(drill_prefix(cfg)):
        raise Refused(f"{instance} is not a drill instance; not deleting it")
    rds = _rds(cfg, cfg.regions.dr)
    db = describe_instance(rds, instance)
    if db is None:
        return StepResult(status="ok", detail=f"{instance} was never created: nothing to delete")
    if db.get("DBInstanceStatus") != "deleting":
        try:
            rds.delete_db_instance(
                DBInstanceIdentifier=instance, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
            )
        except AwsError as exc:
            if not is_code(exc, "InvalidDBInstanceState"):
                raise
            # still creating or modifying: wait until RDS accepts the delete
            wait_for(
                lambda: describe_instance(rds, instance) or {"DBInstanceStatus": "gone"},
                until=lambda d: (
                    d.get("DBInstanceStatus")
                    in ("available", "failed", "stopped", "deleting", "gone")
                ),
                what=f"{instance} ready to delete",
                timeout_s=timeout_s,
            )
            if describe_instance(rds, instance) is not None:
                rds.delete_db_instance(
                    DBInstanceIdentifier=instance,
                    SkipFinalSnapshot=True,
                    DeleteAutomatedBackups=True,
                )
    left = describe_instance(rds, instance)
    state = left.get("DBInstanceStatus") if left else "gone"
    if state not in ("deleting", "gone"):
        raise StepFailed(f"{instance} is still {state} after its delete")
    return StepResult(status="ok", detail=f"{instance} {state}")


# -- cache -------------------------------------------------------------------------------------
@step("snapshot cache")
def snapshot_cache(cfg: Config, drill: str, *, timeout_s: float = SNAPSHOT_TIMEOUT_S) -> StepResult:
    if cfg.cache is None:
        return StepResult(skipped="the config has no cache")
    name = names_for(cfg, "primary").cache
    ec = connect(cfg).client("elasticache", cfg.regions.primary)
    try:
        ec.create_snapshot(ReplicationGroupId=name, SnapshotName=drill, Tags=drill_tags(cfg, drill))
    except AwsError as exc:
        if is_code(exc, "ReplicationGroupNotFoundFault"):
            raise NotFound(f"cache {name} not found in {cfg.regions.primary}") from exc
        if not is_code(exc, "SnapshotAlreadyExistsFault"):
            raise
    wait_for(
        lambda: ec.describe_snapshots(SnapshotName=drill)["Snapshots"][0]["SnapshotStatus"],
        until=lambda s: s == "available",
        failed=lambda s: f"snapshot is {s}" if s == "failed" else None,
        what=f"cache snapshot {drill} available",
        timeout_s=timeout_s,
    )
    return StepResult(status="ok", detail=f"{drill} of {name}")


# -- pruning -----------------------------------------------------------------------------------
def expired_drill_snapshots(
    cfg: Config, keep: list[str], now: datetime | None = None
) -> list[tuple[str, str, str]]:
    """``(service, region, id)`` of drill snapshots older than ``keep_days``: both regions'
    database snapshots and the cache's, never this drill's own. Read-only."""
    days = cfg.drills.backup_restore.keep_days
    now = now or utcnow()
    prefix = drill_prefix(cfg)
    out: list[tuple[str, str, str]] = []
    for region in (cfg.regions.primary, cfg.regions.dr):
        pages = (
            _rds(cfg, region).get_paginator("describe_db_snapshots").paginate(SnapshotType="manual")
        )
        snaps = [s for p in pages for s in p["DBSnapshots"]]
        out += [
            ("rds", region, ident)
            for ident in expired(
                snaps,
                prefix=prefix,
                now=now,
                keep_days=days,
                created_key="SnapshotCreateTime",
                id_key="DBSnapshotIdentifier",
                keep=frozenset(keep),
            )
        ]
    if cfg.cache is not None:
        ec = connect(cfg).client("elasticache", cfg.regions.primary)
        entries = [
            {
                "id": s["SnapshotName"],
                # AWS dates each node's snapshot; emulators may not, the drill id always does
                "created": min(
                    (n["SnapshotCreateTime"] for n in s.get("NodeSnapshots") or []),
                    default=stamp_of(s["SnapshotName"], prefix),
                ),
            }
            for s in ec.describe_snapshots(SnapshotSource="manual")["Snapshots"]
        ]
        out += [
            ("elasticache", cfg.regions.primary, ident)
            for ident in expired(
                entries,
                prefix=prefix,
                now=now,
                keep_days=days,
                created_key="created",
                id_key="id",
                keep=frozenset(keep),
            )
        ]
    return out


@step("prune old drill snapshots")
def prune_drill_snapshots(cfg: Config, keep: list[str], now: datetime | None = None) -> StepResult:
    """Delete drill snapshots older than ``drills.backup_restore.keep_days``."""
    deleted: list[str] = []
    for service, region, ident in expired_drill_snapshots(cfg, keep, now):
        if service == "rds":
            _rds(cfg, region).delete_db_snapshot(DBSnapshotIdentifier=ident)
            deleted.append(f"rds {region} {ident}")
        else:
            connect(cfg).client("elasticache", region).delete_snapshot(SnapshotName=ident)
            deleted.append(f"elasticache {ident}")
    days = cfg.drills.backup_restore.keep_days
    return StepResult(
        outputs={"deleted": deleted},
        status="changed" if deleted else "ok",
        detail=f"deleted {len(deleted)} older than {days} day(s)"
        + (f": {', '.join(deleted)}" if deleted else ""),
    )


# -- plan --------------------------------------------------------------------------------------
@step("plan backup drill")
def plan_backup_drill(cfg: Config, drill: str, source: str) -> StepResult:
    """What the drill would make and delete, found with read-only calls only."""
    primary, dr = names_for(cfg, "primary"), names_for(cfg, "dr")
    rds = _rds(cfg, primary.region)
    if describe_instance(rds, primary.db_instance) is None:
        raise NotFound(f"primary database {primary.db_instance} not found in {primary.region}")
    changes: list[Change] = []
    if source == "automated":
        found = rds.describe_db_snapshots(
            DBInstanceIdentifier=primary.db_instance, SnapshotType="automated"
        )["DBSnapshots"]
        snap = latest_automated(found)
        if snap is None:
            raise StepFailed(f"{primary.db_instance} has no available automated snapshot")
        origin = snap["DBSnapshotIdentifier"]
    else:
        origin = drill
        changes.append(created("rds:snapshot", drill, primary.region, {"of": primary.db_instance}))
    changes += [
        created("rds:snapshot", drill, dr.region, {"copy_of": origin, "key": dr.kms_alias}),
        *temporary(
            "rds:instance",
            drill,
            dr.region,
            {"restored_from": drill, "subnet_group": dr.db_subnet_group, "multi_az": False},
            "temporary: deleted at the end of the drill",
        ),
    ]
    if cfg.cache is not None:
        changes.append(
            created("elasticache:snapshot", drill, primary.region, {"of": primary.cache})
        )
    for service, region, ident in expired_drill_snapshots(cfg, [drill]):
        changes.append(
            Change(
                resource=f"{service}:snapshot",
                name=ident,
                action=Action.DELETE,
                region=region,
                detail=f"older than {cfg.drills.backup_restore.keep_days} day(s)",
            )
        )
    return StepResult(changes=changes, applied=False)
