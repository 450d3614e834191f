"""Destroy, data layer for Aurora: the cluster's instances, then the cluster.

In DR, the secondary cluster is first removed from the global database (it then stands alone)
and goes without a snapshot: the primary's final snapshot is the copy that is kept. In the
primary, the instances go, the cluster leaves the global database, the global cluster (now
empty) is deleted, then the cluster with a final cluster snapshot unless told to skip it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.aurora import describe_global_cluster, global_cluster_id
from tasks.changes import Change, StepResult
from tasks.database import describe_cluster, describe_instance, rds_client
from tasks.retry import is_code, wait_for
from tasks.teardown import GONE_TIMEOUT_S, deleted, result, wait_gone
from tasks.teardown_data import final_snapshot_id, newest_final


def cluster_protected(cfg: Config, role: Role) -> dict[str, Any] | None:
    """The stack's cluster in ``role`` when deletion protection is on."""
    found = describe_cluster(rds_client(cfg, role), names_for(cfg, role).db_cluster)
    return found if found and found.get("DeletionProtection") else None


def _delete_instances(
    rds: Any, cluster: dict[str, Any], region: str, dry_run: bool
) -> list[Change]:
    """Readers before the writer (a writer going first fails over to a reader)."""
    members = sorted(cluster.get("DBClusterMembers", []), key=lambda m: m["IsClusterWriter"])
    changes: list[Change] = []
    for m in members:
        ident = m["DBInstanceIdentifier"]
        db = describe_instance(rds, ident)
        if db is None:
            continue
        if db.get("DBInstanceStatus") != "deleting":
            changes.append(deleted("rds:cluster-instance", ident, region))
            if not dry_run:
                try:
                    rds.delete_db_instance(DBInstanceIdentifier=ident)
                except Exception as exc:  # a retried delete whose first attempt went through
                    if not is_code(exc, "DBInstanceNotFound", "DBInstanceNotFoundFault"):
                        raise
        if not dry_run:
            wait_gone(partial(describe_instance, rds, ident), f"instance {ident} deleted")
    return changes


def _leave_global(cfg: Config, role: Role, cluster: dict[str, Any], dry_run: bool) -> list[Change]:
    """Detach ``cluster`` from the stack's global database (DR goes first: the primary can only
    leave once no secondary is left); the primary's turn deletes the global cluster too."""
    prds, gid = rds_client(cfg, "primary"), global_cluster_id(cfg)
    found = describe_global_cluster(prds, gid)
    if found is None:
        return []
    changes: list[Change] = []
    arn, ident = cluster["DBClusterArn"], cluster["DBClusterIdentifier"]
    members = [m["DBClusterArn"] for m in found.get("GlobalClusterMembers", [])]
    if arn in members:
        changes.append(deleted("rds:global-cluster-member", ident, names_for(cfg, role).region))
        if not dry_run:
            prds.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=arn)
            wait_for(
                lambda: describe_global_cluster(prds, gid),
                until=lambda g: (
                    arn
                    not in [m["DBClusterArn"] for m in (g or {}).get("GlobalClusterMembers", [])]
                ),
                what=f"{ident} out of {gid}",
                timeout_s=GONE_TIMEOUT_S,
                describe=lambda g: str((g or {}).get("GlobalClusterMembers")),
            )
    leaving = {arn}
    if dry_run and role == "primary":  # the plan: the DR half, planned first, will have left
        leaving.add((_dr_cluster(cfg) or {}).get("DBClusterArn", ""))
    if role == "primary" and not [m for m in members if m not in leaving]:
        changes.append(deleted("rds:global-cluster", gid, "global"))
        if not dry_run:
            prds.delete_global_cluster(GlobalClusterIdentifier=gid)
    return changes


def _dr_cluster(cfg: Config) -> dict[str, Any] | None:
    return describe_cluster(rds_client(cfg, "dr"), names_for(cfg, "dr").db_cluster)


def delete_aurora(
    cfg: Config, role: Role, skip_final_snapshot: bool, *, dry_run: bool = False
) -> StepResult:
    """The body of ``delete {role} databases`` for an Aurora stack."""
    names = names_for(cfg, role)
    rds, region, ident = rds_client(cfg, role), names.region, names.db_cluster
    cluster = describe_cluster(rds, ident)
    snapshot = None
    take = role == "primary" and not skip_final_snapshot
    if cluster is None:
        return result([], dry_run, final_snapshot=_earlier(rds, ident) if take else None)
    changes = _delete_instances(rds, cluster, region, dry_run)
    changes += _leave_global(cfg, role, cluster, dry_run)
    if cluster.get("Status") != "deleting":
        snapshot = final_snapshot_id(ident) if take else None
        detail = f"final snapshot {snapshot}" if snapshot else "no final snapshot"
        changes.append(deleted("rds:cluster", ident, region, detail))
        if not dry_run:
            params: dict[str, Any] = {"DBClusterIdentifier": ident}
            if snapshot:
                params["FinalDBSnapshotIdentifier"] = snapshot
            else:
                params["SkipFinalSnapshot"] = True
            rds.delete_db_cluster(**params, DeleteAutomatedBackups=True)
    if not dry_run:
        wait_gone(partial(describe_cluster, rds, ident), f"cluster {ident} deleted")
        if snapshot:
            wait_for(
                lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)[
                    "DBClusterSnapshots"
                ][0]["Status"],
                until=lambda s: s == "available",
                what=f"final snapshot {snapshot} available",
                timeout_s=GONE_TIMEOUT_S,
            )
    return result(changes, dry_run, final_snapshot=snapshot)


def _earlier(rds: Any, ident: str) -> str | None:
    """The newest final snapshot of the cluster: a run that stopped after deleting it."""
    snaps = rds.describe_db_cluster_snapshots(DBClusterIdentifier=ident, SnapshotType="manual")
    return newest_final(
        ident, [s["DBClusterSnapshotIdentifier"] for s in snaps["DBClusterSnapshots"]]
    )
