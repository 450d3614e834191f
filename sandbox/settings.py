"""Timings of the AWS-like progressions, and fault rules. Plain data, JSON in and out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

FaultKind = Literal["throttle", "error", "latency", "down"]


@dataclass
class Timings:
    """Seconds each asynchronous change takes in the sandbox (0 = at the next describe)."""

    ecs_deployment_seconds: float = 3.0
    ecs_task_replace_seconds: float = 2.0
    rds_create_seconds: float = 3.0
    rds_modify_seconds: float = 3.0
    rds_snapshot_seconds: float = 2.0
    route53_sync_seconds: float = 2.0
    codebuild_seconds: float = 3.0
    replica_lag_seconds: float = 1.0  # the ReplicaLag every read replica reports
    # A custom-metric alarm is evaluated over the last min(its Period, this) seconds of data.
    alarm_period_seconds: float = 1.0
    # An ElastiCache global datastore's changes: create, a member joining or leaving, failover.
    cache_global_seconds: float = 2.0

    @classmethod
    def preset(cls, name: str) -> Timings:
        if name == "fast":
            return cls(0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0, cache_global_seconds=0.5)
        if name == "realistic":
            return cls(
                45, 20, 300, 60, 30, 30, 90, 2.0, alarm_period_seconds=60, cache_global_seconds=600
            )
        return cls()

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown timing(s) {sorted(unknown)}; known: {sorted(known)}")
        for key, value in values.items():
            setattr(self, key, float(value))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class FaultRule:
    """One fault: which requests it hits (empty filter = all) and what it does to them.

    kind: ``throttle`` (the service's throttling error), ``error`` (``code``/``status``, default
    a 503), ``latency`` (``latency_ms`` added, then answered normally), ``down`` (the request is
    held ``hang_seconds`` and then dropped with a 504: a region that does not answer).
    """

    kind: FaultKind
    rate: float = 1.0
    services: list[str] = field(default_factory=list)  # signing names: ecs, rds, sqs, ...
    regions: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    code: str = ""
    status: int = 0
    latency_ms: float = 0.0
    hang_seconds: float = 30.0

    def matches(self, service: str, region: str, operation: str) -> bool:
        return (
            (not self.services or service in self.services)
            and (not self.regions or region in self.regions)
            and (not self.operations or operation in self.operations)
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}")
        rule = cls(**data)
        if rule.kind not in ("throttle", "error", "latency", "down"):
            raise ValueError(f"unknown fault kind {rule.kind!r}")
        return rule
