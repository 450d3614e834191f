"""RDS instances and snapshots that take time: creating / modifying / rebooting → available.
An Aurora cluster told to fail over (``FailoverDBCluster``) reports ``failing-over`` for as long
as a reboot takes (moto swaps its writer at once, which is where a failover ends).

moto finishes every RDS change at once. The sandbox remembers when a change started and, until
its configured time has passed, rewrites the status in moto's answers. Read replicas report a
settable ``ReplicaLag`` CloudWatch metric, as the readiness checks read it. The default lag, and
one set "while writers run", models writes in flight: the replica lags while any ECS service of
its source's region wants tasks, and reads 0 once they are all fenced to 0 (it has caught up).
A lag set without it lasts whatever the services do.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID

from sandbox.settings import Timings

# operation -> (status while in progress, timing key)
INSTANCE_CHANGES = {
    "CreateDBInstance": ("creating", "rds_create_seconds"),
    "CreateDBInstanceReadReplica": ("creating", "rds_create_seconds"),
    "RestoreDBInstanceFromDBSnapshot": ("creating", "rds_create_seconds"),
    "RestoreDBInstanceToPointInTime": ("creating", "rds_create_seconds"),
    "PromoteReadReplica": ("modifying", "rds_modify_seconds"),
    "ModifyDBInstance": ("modifying", "rds_modify_seconds"),
    "RebootDBInstance": ("rebooting", "rds_modify_seconds"),
}
GLOBAL_CHANGES = {"CreateGlobalCluster": ("creating", "rds_create_seconds")}
CLUSTER_CHANGES = {"FailoverDBCluster": ("failing-over", "rds_modify_seconds")}
SNAPSHOT_CHANGES = {
    "CreateDBSnapshot": ("creating", "rds_snapshot_seconds"),
    "CopyDBSnapshot": ("copying", "rds_snapshot_seconds"),
}
_BLOCK = {
    "instance": (
        re.compile(r"<DBInstance>.*?</DBInstance>", re.S),
        "DBInstanceIdentifier",
        "DBInstanceStatus",
    ),
    "snapshot": (
        re.compile(r"<DBSnapshot>.*?</DBSnapshot>", re.S),
        "DBSnapshotIdentifier",
        "Status",
    ),
    "cluster": (
        # the cluster's own Status comes before its members' and security groups' (AWS's order)
        re.compile(r"<DBCluster>.*?</DBCluster>", re.S),
        "DBClusterIdentifier",
        "Status",
    ),
    "global": (
        # a described global cluster is a <GlobalClusterMember>, and so is each of its members
        # (which carry no GlobalClusterIdentifier): the status comes before the members
        re.compile(r"<(GlobalCluster(?:Member)?)>.*?</\1>", re.S),
        "GlobalClusterIdentifier",
        "Status",
    ),
}
GLOBAL = "global"  # global clusters belong to no region: their progressions are kept once


class RdsSim:
    def __init__(
        self, timings: Timings, writers: Callable[[str, str], bool] = lambda region, db: False
    ):
        self.timings = timings
        self.writers = writers  # (region, database) -> whether anything still writes to it
        self.pending: dict[
            tuple[str, str, str], tuple[str, float]
        ] = {}  # (region, kind, id) -> (status, until)
        self.lag: dict[str, float] = {}  # identifier or "*" -> seconds
        self.in_flight: set[str] = set()  # identifiers (or "*") whose lag lasts while writers run
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.pending.clear()
            self.lag.clear()
            self.in_flight.clear()

    def set_lag(self, identifier: str, seconds: float, *, while_writers_run: bool = False) -> None:
        key = identifier or "*"
        with self.lock:
            self.lag[key] = float(seconds)
            if while_writers_run:
                self.in_flight.add(key)
            else:
                self.in_flight.discard(key)

    def lag_of(self, ident: str, source: str, region: str) -> float:
        """The lag ``ident`` reports now; ``source`` is its source's identifier or ARN."""
        with self.lock:
            key = ident if ident in self.lag else "*"
            lag = self.lag.get(key, self.timings.replica_lag_seconds)
            # The default lag is writes in flight too: a fenced source's replica catches up.
            in_flight = key in self.in_flight or key not in self.lag
        if in_flight:
            parts = source.split(":")
            source_region = parts[3] if source.startswith("arn:") and len(parts) > 3 else region
            if not self.writers(source_region, parts[-1]):
                return 0.0
        return lag

    def record(self, region: str, op: str, params: dict[str, Any]) -> None:
        now = time.time()
        with self.lock:
            if op in INSTANCE_CHANGES:
                status, key = INSTANCE_CHANGES[op]
                ident = str(
                    params.get("DBInstanceIdentifier")
                    or params.get("TargetDBInstanceIdentifier")
                    or ""
                )
                if (
                    op == "ModifyDBInstance"
                    and str(params.get("ApplyImmediately", "")).lower() != "true"
                ):
                    return
                if ident:
                    self.pending[(region, "instance", ident)] = (
                        status,
                        now + getattr(self.timings, key),
                    )
            elif op in GLOBAL_CHANGES:
                status, key = GLOBAL_CHANGES[op]
                ident = str(params.get("GlobalClusterIdentifier") or "").lower()
                if ident:
                    self.pending[(GLOBAL, "global", ident)] = (
                        status,
                        now + getattr(self.timings, key),
                    )
            elif op in CLUSTER_CHANGES:
                status, key = CLUSTER_CHANGES[op]
                ident = str(params.get("DBClusterIdentifier") or "").lower()
                if ident:
                    self.pending[(region, "cluster", ident)] = (
                        status,
                        now + getattr(self.timings, key),
                    )
            elif op in SNAPSHOT_CHANGES:
                status, key = SNAPSHOT_CHANGES[op]
                ident = str(
                    params.get("DBSnapshotIdentifier")
                    or params.get("TargetDBSnapshotIdentifier")
                    or ""
                )
                if ident:
                    self.pending[(region, "snapshot", ident)] = (
                        status,
                        now + getattr(self.timings, key),
                    )

    def refuse(self, op: str, params: dict[str, Any]) -> str | None:
        """Why AWS would refuse this call now: a cluster cannot join a global cluster that is
        still being created (``InvalidGlobalClusterStateFault``)."""
        ident = str(params.get("GlobalClusterIdentifier") or "").lower()
        if op != "CreateDBCluster" or not ident:
            return None
        with self.lock:
            pending = self.pending.get((GLOBAL, "global", ident))
        if pending and pending[1] > time.time():
            return f"Global cluster {ident} is {pending[0]}, not available"
        return None

    def rewrite(self, region: str, body: bytes) -> bytes:
        text = body.decode("utf-8")
        now = time.time()
        with self.lock:
            for kind, (block_rx, id_tag, status_tag) in _BLOCK.items():

                def fix(
                    m: re.Match[str],
                    kind: str = kind,
                    id_tag: str = id_tag,
                    status_tag: str = status_tag,
                ) -> str:
                    block = m.group(0)
                    ident = re.search(rf"<{id_tag}>([^<]+)</{id_tag}>", block)
                    if not ident:
                        return block
                    where = GLOBAL if kind == "global" else region
                    pending = self.pending.get((where, kind, ident.group(1)))
                    if not pending or pending[1] <= now:
                        return block
                    return re.sub(
                        rf"<{status_tag}>[^<]*</{status_tag}>",
                        f"<{status_tag}>{pending[0]}</{status_tag}>",
                        block,
                        count=1,
                    )

                text = block_rx.sub(fix, text)
        return text.encode("utf-8")

    def publish_lag(self, region: str) -> None:
        """Put a fresh ReplicaLag datapoint for every read replica in ``region``."""
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.rds.models import rds_backends

        backend = rds_backends[DEFAULT_ACCOUNT_ID][region]
        replicas = [
            db
            for db in list(backend.databases.values())
            if getattr(db, "source_db_instance_identifier", None)
        ]
        if not replicas:
            return
        data = []
        for db in replicas:
            lag = self.lag_of(
                db.db_instance_identifier, str(db.source_db_instance_identifier), region
            )
            data.append(
                {
                    "MetricName": "ReplicaLag",
                    "Dimensions": [
                        {"Name": "DBInstanceIdentifier", "Value": db.db_instance_identifier}
                    ],
                    "Value": lag,
                    "Unit": "Seconds",
                }
            )
        cloudwatch_backends[DEFAULT_ACCOUNT_ID][region].put_metric_data("AWS/RDS", data)
