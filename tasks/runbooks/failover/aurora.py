"""Aurora's promotion: the DR cluster of a global database, or a cross-region replica cluster,
becomes the writer.

* In a global database: ``FailoverGlobalCluster`` with ``AllowDataLoss`` (the primary region
  may be gone; the RPO is the replication lag read before) makes the DR cluster the writer.
* A cross-region replica cluster: ``PromoteReadReplicaDBCluster`` detaches it.

A planned move (switchover, failback) of a global database uses ``SwitchoverGlobalCluster``
instead: AWS waits until the secondary has applied everything, then swaps the roles, so the
old writer becomes a secondary (the reverse replica) and nothing is lost.

moto implements none of them fully; the calls are tested against AWS's answers with botocore's
Stubber (``tests/failover/test_aurora_promote.py``).
"""

from __future__ import annotations

from typing import Any

from configs.errors import NotFound
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import StepResult, updated
from tasks.core.retry import wait_for
from tasks.resources.database.lookup import describe_cluster, global_cluster_id


def _cluster(rds: Any, ident: str) -> dict[str, Any]:
    found = describe_cluster(rds, ident)
    if found is None:
        raise NotFound(f"Aurora cluster {ident} does not exist")
    return found


def is_writer_of_global(rds: Any, global_id: str, cluster_arn: str) -> bool:
    members = rds.describe_global_clusters(GlobalClusterIdentifier=global_id)["GlobalClusters"][0][
        "GlobalClusterMembers"
    ]
    return any(m["DBClusterArn"] == cluster_arn and m.get("IsWriter") for m in members)


def became_writer(cfg: Config, role: Role, detail: str, **outputs: Any) -> StepResult:
    names = names_for(cfg, role)
    change = updated(
        "rds:cluster", names.db_cluster, names.region, {"role": "secondary"}, {"role": "writer"}
    )
    return StepResult(changes=[change], applied=True, detail=detail, outputs=outputs)


def wait_writer(rds: Any, global_id: str, arn: str, what: str, timeout_s: float) -> None:
    wait_for(
        lambda: is_writer_of_global(rds, global_id, arn),
        until=bool,
        what=what,
        timeout_s=timeout_s,
        describe=str,
    )


def in_global(cluster: dict[str, Any]) -> bool:
    return bool(
        cluster.get("GlobalClusterIdentifier") or cluster.get("GlobalWriteForwardingStatus")
    )


def uses_aws_switchover(cfg: Config, role: Role, *, rds: Any = None) -> bool:
    """Whether ``role``'s Aurora cluster is a global database member (its planned move is
    AWS's switchover, which synchronises itself)."""
    names = names_for(cfg, role)
    rds = rds or connect(cfg).client("rds", names.region)
    return in_global(_cluster(rds, names.db_cluster))


def switchover_aurora(
    cfg: Config, role: Role, *, rds: Any = None, timeout_s: float | None = None
) -> StepResult:
    """Make ``role``'s cluster the writer of its global database without losing data; a
    cluster outside a global database is promoted (its lag was confirmed 0 before)."""
    names = names_for(cfg, role)
    rds = rds or connect(cfg).client("rds", names.region)
    timeout = timeout_s if timeout_s is not None else cfg.failover.promote_timeout_seconds
    cluster = _cluster(rds, names.db_cluster)
    if not in_global(cluster):
        return promote_aurora(cfg, role, rds=rds, timeout_s=timeout)
    arn = cluster["DBClusterArn"]
    global_id = global_cluster_id(cfg)
    if is_writer_of_global(rds, global_id, arn):
        return StepResult(detail=f"{names.db_cluster} already writes for {global_id}")
    rds.switchover_global_cluster(GlobalClusterIdentifier=global_id, TargetDbClusterIdentifier=arn)
    wait_writer(rds, global_id, arn, f"{names.db_cluster} writer of {global_id}", timeout)
    return became_writer(
        cfg,
        role,
        f"global database {global_id} switched over to {names.region}: no data lost",
        rpo_verified=True,
    )


def promote_aurora(
    cfg: Config, role: Role, *, rds: Any = None, timeout_s: float | None = None
) -> StepResult:
    names = names_for(cfg, role)
    rds = rds or connect(cfg).client("rds", names.region)
    timeout = timeout_s if timeout_s is not None else cfg.failover.promote_timeout_seconds
    cluster = _cluster(rds, names.db_cluster)
    arn = cluster["DBClusterArn"]
    if in_global(cluster):
        global_id = global_cluster_id(cfg)
        if is_writer_of_global(rds, global_id, arn):
            return StepResult(detail=f"{names.db_cluster} already writes for {global_id}")
        rds.failover_global_cluster(
            GlobalClusterIdentifier=global_id, TargetDbClusterIdentifier=arn, AllowDataLoss=True
        )
        wait_writer(rds, global_id, arn, f"{names.db_cluster} writer of {global_id}", timeout)
        how = f"global database {global_id} failed over to {names.region}"
    elif cluster.get("ReplicationSourceIdentifier"):
        rds.promote_read_replica_db_cluster(DBClusterIdentifier=names.db_cluster)
        wait_for(
            lambda: _cluster(rds, names.db_cluster),
            until=lambda c: (
                c.get("Status") == "available" and not c.get("ReplicationSourceIdentifier")
            ),
            what=f"{names.db_cluster} promoted",
            timeout_s=timeout,
            describe=lambda c: str(c.get("Status")),
        )
        how = f"replica cluster {names.db_cluster} promoted"
    else:
        return StepResult(detail=f"{names.db_cluster} was already promoted")
    return became_writer(cfg, role, how)
