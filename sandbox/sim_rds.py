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
from dataclasses import dataclass
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID

from sandbox.settings import Timings


@dataclass(frozen=True)
class Change:
    """An RDS call whose effect takes time: what it changes (``kind``), the status it shows
    until then, the timing that says how long, and the parameters naming the resource."""

    kind: str  # "instance" | "cluster" | "global" | "snapshot"
    status: str
    timing: str
    ids: tuple[str, ...]


_INSTANCE = ("DBInstanceIdentifier", "TargetDBInstanceIdentifier")
_SNAPSHOT = ("DBSnapshotIdentifier", "TargetDBSnapshotIdentifier")
CHANGES = {
    "CreateDBInstance": Change("instance", "creating", "rds_create_seconds", _INSTANCE),
    "CreateDBInstanceReadReplica": Change("instance", "creating", "rds_create_seconds", _INSTANCE),
    "RestoreDBInstanceFromDBSnapshot": Change(
        "instance", "creating", "rds_create_seconds", _INSTANCE
    ),
    "RestoreDBInstanceToPointInTime": Change(
        "instance", "creating", "rds_create_seconds", _INSTANCE
    ),
    "PromoteReadReplica": Change("instance", "modifying", "rds_modify_seconds", _INSTANCE),
    "ModifyDBInstance": Change("instance", "modifying", "rds_modify_seconds", _INSTANCE),
    "RebootDBInstance": Change("instance", "rebooting", "rds_modify_seconds", _INSTANCE),
    "CreateGlobalCluster": Change(
        "global", "creating", "rds_create_seconds", ("GlobalClusterIdentifier",)
    ),
    "FailoverDBCluster": Change(
        "cluster", "failing-over", "rds_modify_seconds", ("DBClusterIdentifier",)
    ),
    "CreateDBSnapshot": Change("snapshot", "creating", "rds_snapshot_seconds", _SNAPSHOT),
    "CopyDBSnapshot": Change("snapshot", "copying", "rds_snapshot_seconds", _SNAPSHOT),
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
        change = CHANGES.get(op)
        if change is None:
            return
        if op == "ModifyDBInstance" and str(params.get("ApplyImmediately", "")).lower() != "true":
            return
        ident = next((str(params[p]) for p in change.ids if params.get(p)), "")
        if change.kind in ("global", "cluster"):
            ident = ident.lower()
        if not ident:
            return
        where = GLOBAL if change.kind == "global" else region
        with self.lock:
            self.pending[(where, change.kind, ident)] = (
                change.status,
                time.time() + getattr(self.timings, change.timing),
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
