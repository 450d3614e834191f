"""Typed model of one environment. Pure: no boto3, no Prefect.

Every block forbids unknown keys, so a typo is an error rather than a silent default. Names of
AWS resources are not stored here but derived in :mod:`configs.names` from ``app`` + ``env``,
unless the file names a resource under ``names:`` (to adopt a stack built elsewhere).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from configs import defaults

AWS_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
ARN = r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:.+$"
CRON = r"^(\S+\s+){4}\S+$"

# Env names that look like credentials; a plain value for one is the seeds' "password in the
# task definition" anti-pattern.
SECRET_LIKE = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.I)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RetrySettings(Strict):
    max_attempts: Annotated[int, Field(ge=1, le=20)] = defaults.RETRY_MAX_ATTEMPTS
    deadline_seconds: Annotated[float, Field(gt=0, le=900)] = defaults.RETRY_DEADLINE_S
    initial_backoff_seconds: Annotated[float, Field(gt=0, le=10)] = defaults.RETRY_INITIAL_BACKOFF_S
    max_backoff_seconds: Annotated[float, Field(gt=0, le=60)] = defaults.RETRY_MAX_BACKOFF_S


class AwsAccess(Strict):
    """How to reach AWS: a named profile, a role to assume, or an endpoint (the sandbox)."""

    profile: str | None = None
    role_arn: Annotated[str | None, Field(pattern=ARN)] = None
    external_id: str | None = None
    endpoint_url: Annotated[str | None, Field(pattern=r"^https?://")] = None
    # One emulator rarely has every service: e.g. LocalStack's SQS with the run locks'
    # DynamoDB on the sandbox. Service name (botocore's: dynamodb, sqs) → its endpoint.
    service_endpoints: dict[
        Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")],
        Annotated[str, Field(pattern=r"^https?://")],
    ] = {}
    connect_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = defaults.CONNECT_TIMEOUT_S
    read_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = defaults.READ_TIMEOUT_S
    retry: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _one_way_in(self) -> AwsAccess:
        if self.endpoint_url and (self.profile or self.role_arn):
            raise ValueError("endpoint_url (sandbox) cannot be combined with profile or role_arn")
        if self.service_endpoints and not self.endpoint_url:
            raise ValueError("service_endpoints: only next to endpoint_url (emulators)")
        if self.external_id and not self.role_arn:
            raise ValueError("external_id needs role_arn")
        return self


class Regions(Strict):
    primary: Annotated[str, Field(pattern=AWS_REGION)]
    dr: Annotated[str, Field(pattern=AWS_REGION)]

    @model_validator(mode="after")
    def _distinct(self) -> Regions:
        if self.primary == self.dr:
            raise ValueError("primary and dr must be different regions")
        return self


class RegionNetwork(Strict):
    cidr: str
    azs: Annotated[list[str], Field(min_length=1, max_length=6)]

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        net = ipaddress.ip_network(v, strict=True)
        if not 16 <= net.prefixlen <= 20:
            raise ValueError("VPC CIDR prefix must be between /16 and /20")
        return str(net)

    @field_validator("azs")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("availability zones must be distinct")
        return v


VpcEndpoint = Literal[
    "s3", "ecr.api", "ecr.dkr", "secretsmanager", "logs", "ecs", "sqs", "monitoring"
]


class Network(Strict):
    primary: RegionNetwork
    dr: RegionNetwork
    nat: Literal["per_az", "single", "none"] = "per_az"
    endpoints: list[VpcEndpoint] = ["s3", "ecr.api", "ecr.dkr", "secretsmanager", "logs", "ecs"]
    flow_logs: bool = True
    # Extra sources allowed to reach the data tier besides the app security group.
    data_ingress_cidrs: list[str] = []

    @field_validator("data_ingress_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(c, strict=False)) for c in v]


class Database(Strict):
    engine: Literal["postgres", "aurora-postgresql"] = "postgres"
    engine_version: str = "16.4"
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.r6g.large"
    allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 100
    storage_type: Literal["gp3", "gp2", "io1", "io2"] = "gp3"
    multi_az: bool = True
    backup_retention_days: Annotated[int, Field(ge=0, le=35)] = 14
    deletion_protection: bool = True
    performance_insights: bool = True
    iam_auth: bool = True
    read_replicas: Annotated[int, Field(ge=0, le=15)] = 0
    dr_replica: bool = True
    port: Annotated[int, Field(ge=1150, le=65535)] = 5432
    db_name: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9_]{0,62}$")] = "app"
    master_username: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9_]{0,15}$")] = "app"

    @model_validator(mode="after")
    def _backups(self) -> Database:
        if self.dr_replica and self.backup_retention_days == 0:
            raise ValueError("a DR replica needs backups: backup_retention_days must be > 0")
        return self


class Cache(Strict):
    engine: Literal["valkey", "redis"] = "valkey"
    engine_version: str = "7.2"
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.r7g.large"
    replicas: Annotated[int, Field(ge=0, le=5)] = 1
    automatic_failover: bool = True
    port: Annotated[int, Field(ge=1024, le=65535)] = 6379
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = 7
    # An ElastiCache Global Datastore: the DR region keeps a read-only member that a region
    # move promotes, so sessions survive it (a warm standby only: see Config).
    global_datastore: bool = False

    @model_validator(mode="after")
    def _failover_needs_replica(self) -> Cache:
        if self.automatic_failover and self.replicas < 1:
            raise ValueError("automatic_failover needs at least 1 replica")
        # https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Redis-Global-Datastores-Getting-Started.html
        if self.global_datastore and self.node_type.startswith("cache.t"):
            raise ValueError(
                f"global_datastore: a Global Datastore needs an M or R node type, not "
                f"{self.node_type} (set node_type, e.g. cache.r7g.large)"
            )
        return self


class Scaling(Strict):
    requests_per_target: Annotated[int | None, Field(ge=1)] = 1000
    cpu_percent: Annotated[float | None, Field(gt=0, le=100)] = 60
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0)] = 60
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0)] = 300

    @model_validator(mode="after")
    def _cooldowns(self) -> Scaling:
        if self.scale_in_cooldown_seconds <= self.scale_out_cooldown_seconds:
            raise ValueError(
                "scale_in_cooldown_seconds must be longer than scale_out_cooldown_seconds"
            )
        return self


class Service(Strict):
    """One ECS service (``web`` behind the ALB, ``worker`` on the queues)."""

    image_repository: str | None = None  # ECR repository name; default "<app>/<service>"
    image_tag: str = "latest"
    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = 512
    memory: Annotated[int, Field(ge=512, le=122880)] = 1024
    port: Annotated[int | None, Field(ge=1, le=65535)] = None
    health_path: Annotated[str, Field(pattern=r"^/")] = "/healthz"
    desired: Annotated[int, Field(ge=0)] = 2
    min: Annotated[int, Field(ge=0)] = 2
    max: Annotated[int, Field(ge=1)] = 10
    dr_warm_desired: Annotated[int, Field(ge=0)] = 1
    scaling: Scaling = Scaling()
    environment: dict[str, str] = {}
    secrets: dict[str, Annotated[str, Field(pattern=ARN)]] = {}
    command: list[str] | None = None

    @model_validator(mode="after")
    def _counts(self) -> Service:
        if not self.min <= self.desired <= self.max:
            raise ValueError(
                f"need min <= desired <= max (got {self.min}, {self.desired}, {self.max})"
            )
        overlap = set(self.environment) & set(self.secrets)
        if overlap:
            raise ValueError(f"{sorted(overlap)} given both as environment and as secrets")
        return self


class Services(Strict):
    web: Service = Service(port=8080)
    worker: Service | None = Service(desired=1, min=1, max=5)

    @model_validator(mode="after")
    def _web_port(self) -> Services:
        if self.web.port is None:
            raise ValueError("web.port: required (the ALB forwards to it)")
        return self

    def items(self) -> list[tuple[str, Service]]:
        return [("web", self.web)] + ([("worker", self.worker)] if self.worker else [])


class Queue(Strict):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,40}$")]
    fifo: bool = False
    visibility_timeout_seconds: Annotated[int, Field(ge=0, le=43200)] = 60
    max_receive_count: Annotated[int, Field(ge=1, le=1000)] = 5
    retention_seconds: Annotated[int, Field(ge=60, le=1209600)] = 345600
    dlq_retention_seconds: Annotated[int, Field(ge=60, le=1209600)] = 1209600

    @model_validator(mode="after")
    def _dlq_outlives_source(self) -> Queue:
        if self.dlq_retention_seconds <= self.retention_seconds:
            raise ValueError(
                "dlq_retention_seconds must be longer than retention_seconds, or messages expire "
                "in the DLQ before anyone can redrive them"
            )
        return self


class Edge(Strict):
    domain: Annotated[str, Field(pattern=r"^([a-z0-9-]+\.)+[a-z]{2,}$")]
    hosted_zone: Annotated[str, Field(pattern=r"^([a-z0-9-]+\.)+[a-z]{2,}$")]
    # Create the public hosted zone when it is missing (a sandbox; usually it exists already).
    manage_zone: bool = False
    certificate_arn: Annotated[str | None, Field(pattern=ARN)] = None
    dr_certificate_arn: Annotated[str | None, Field(pattern=ARN)] = None
    cloudfront: bool = True
    cloudfront_certificate_arn: Annotated[str | None, Field(pattern=ARN)] = None
    waf_rate_limit: Annotated[int, Field(ge=10, le=2_000_000_000)] = 2000

    @model_validator(mode="after")
    def _domain_in_zone(self) -> Edge:
        if not (self.domain == self.hosted_zone or self.domain.endswith("." + self.hosted_zone)):
            raise ValueError(f"domain {self.domain} is not inside hosted_zone {self.hosted_zone}")
        return self


class HealthCheck(Strict):
    path: Annotated[str, Field(pattern=r"^/")] = "/healthz"
    interval_seconds: Literal[10, 30] = 10
    failure_threshold: Annotated[int, Field(ge=1, le=10)] = 3
    # How Route 53 reaches a load balancer. Unset: as the primary's existing check does, else
    # as tierbook's own listeners answer (HTTPS on 443).
    protocol: Literal["HTTP", "HTTPS"] | None = None
    port: Annotated[int | None, Field(ge=1, le=65535)] = None


class ArcControls(Strict):
    cluster_arn: Annotated[str, Field(pattern=ARN)]
    cluster_endpoints: Annotated[
        list[Annotated[str, Field(pattern=r"^https://")]], Field(min_length=1)
    ]
    primary_control_arn: Annotated[str, Field(pattern=ARN)]
    dr_control_arn: Annotated[str, Field(pattern=ARN)]


class Dns(Strict):
    strategy: Literal["failover", "weighted", "arc"] = "failover"
    ttl_seconds: Annotated[int, Field(ge=0, le=86400)] = 60
    health_check: HealthCheck = HealthCheck()
    arc: ArcControls | None = None

    @model_validator(mode="after")
    def _arc(self) -> Dns:
        if self.strategy == "arc" and self.arc is None:
            raise ValueError("strategy 'arc' needs the arc block (cluster and routing controls)")
        return self


class FailoverPolicy(Strict):
    max_replica_lag_seconds: Annotated[float, Field(gt=0)] = 30
    require_approval: bool = True
    fence_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 20
    promote_timeout_seconds: Annotated[float, Field(gt=0)] = 1800
    rollout_timeout_seconds: Annotated[float, Field(gt=0)] = 900
    dns_timeout_seconds: Annotated[float, Field(gt=0)] = 300
    # Replica lag (the RPO estimate) is the worst value over this window, not the newest.
    rpo_window_seconds: Annotated[float, Field(ge=60, le=3600)] = 300
    # A planned move (switchover, failback) promotes only once the replica has reported a lag
    # of 0 for this long after the writers were fenced (RDS publishes ReplicaLag each minute).
    switchover_quiet_seconds: Annotated[float, Field(ge=0, le=3600)] = 60


class Schedule(Strict):
    cron: Annotated[str | None, Field(pattern=CRON)] = None
    timezone: str = "UTC"


class SnapshotCopy(Schedule):
    """The routine copy of a backup-and-restore posture: a fresh snapshot of the primary's
    database copied to DR under the DR key on ``cron`` (a deployment's schedule), the oldest
    copies beyond ``keep`` deleted. Readiness fails once the newest copy is older than
    ``rpo_budget_minutes``: it is the data a failover would lose."""

    cron: Annotated[str | None, Field(pattern=CRON)] = "0 * * * *"
    keep: Annotated[int, Field(ge=1, le=100)] = 3
    rpo_budget_minutes: Annotated[float, Field(gt=0, le=10080)] = 90


class DisasterRecovery(Strict):
    """What the DR region keeps running between failovers (AWS's DR strategies).

    * ``warm_standby``: the whole app stack at its warm size (``dr_warm_desired``); failover
      scales it.
    * ``pilot_light``: the network, the database replica, the secret and the images, and what
      costs nothing or keeps failover free of global control planes (load balancer and
      listeners so the DNS records stand, IAM roles, task definitions, web ACL); failover
      creates the services, their autoscaling and alarms, in parallel with the promotion.
    * ``backup_restore``: what pilot light keeps but the database: copies of the primary's
      snapshots instead (``snapshot_copy``); failover restores the newest copy, then creates
      the app layer on it.
    """

    # What DR runs between moves: warm_standby (the app at its warm size), pilot_light (no
    # services: a move creates them while the database is promoted) or backup_restore (no
    # database either: a move restores the newest snapshot copy).
    posture: Literal["warm_standby", "pilot_light", "backup_restore"] = "warm_standby"
    # backup_restore: how the primary's snapshots reach DR.
    snapshot_copy: SnapshotCopy = SnapshotCopy()


class BackupDrill(Schedule):
    check_sql: str | None = None
    keep_days: Annotated[int, Field(ge=1, le=365)] = 7


class GameDay(Schedule):
    stop_alarms: list[str] = []
    recovery_timeout_seconds: Annotated[float, Field(gt=0)] = 900


class Drills(Strict):
    backup_restore: BackupDrill = BackupDrill(cron="0 3 * * 1")
    # The region rotation: a switchover to DR and back, quarterly; a run pauses for approval.
    region: Schedule = Schedule(cron="0 4 1 */3 *")
    readiness: Schedule = Schedule(cron="*/30 * * * *")
    game_day: GameDay = GameDay()
    audit: Schedule = Schedule(cron="0 6 * * *")


class Acknowledge(Strict):
    """Risks accepted on purpose. Each one the seeds name as an anti-pattern."""

    single_az_database: bool = False
    single_nat: bool = False
    single_az: bool = False
    open_data_tier: bool = False
    no_cache_failover: bool = False
    plain_env_secrets: list[str] = []


# Spellings of the DR database's name that are refused, and the ``dr_names:`` field to use.
RETIRED_DR_DB_NAMES = {"dr_db_instance": "db_instance", "dr_db_cluster": "db_cluster"}


class Names(Strict):
    """Names of existing resources to adopt; anything left out derives from app + env."""

    vpc: str | None = None
    cluster: str | None = None
    web_service: str | None = None
    worker_service: str | None = None
    alb: Annotated[str | None, Field(max_length=32)] = None
    target_group: Annotated[str | None, Field(max_length=32)] = None
    db_instance: Annotated[str | None, Field(max_length=63)] = None
    db_cluster: Annotated[str | None, Field(max_length=63)] = None
    cache: Annotated[str | None, Field(max_length=40)] = None
    # An existing Global Datastore's full id (AWS puts a region prefix before the suffix
    # given at creation, e.g. "sgaui-shop-prod-cache"); only under ``names:``.
    global_cache: Annotated[str | None, Field(pattern=r"^[a-z]{5}-[a-zA-Z0-9-]{1,40}$")] = None
    web_repository: str | None = None
    worker_repository: str | None = None
    web_task_family: str | None = None
    worker_task_family: str | None = None
    asset_bucket: str | None = None
    log_bucket: str | None = None
    web_acl: str | None = None
    lock_table: str | None = None
    # Route 53 is global: these two are never shared between ``names:`` and ``dr_names:``.
    health_check: Annotated[str | None, Field(max_length=255)] = None  # its Name tag
    record_set_id: Annotated[str | None, Field(max_length=128)] = None  # the SetIdentifier

    @model_validator(mode="before")
    @classmethod
    def _one_way_to_name_the_dr_database(cls, data: object) -> object:
        """The DR database is named under ``dr_names:`` only (``dr_names.db_instance``), like
        every other DR resource; the older ``names.dr_db_*`` spelling is refused, not merged."""
        if isinstance(data, dict):
            for old, new in RETIRED_DR_DB_NAMES.items():
                if old in data:
                    raise ValueError(
                        f"{old}: no longer accepted; name the DR database as dr_names.{new}"
                    )
        return data


class Config(Strict):
    app: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,14}$")]
    env: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,9}$")]
    account_id: Annotated[str, Field(pattern=r"^\d{12}$")]
    protected: bool = False
    regions: Regions
    aws: AwsAccess = AwsAccess()
    tags: dict[str, str] = {}
    network: Network
    database: Database = Database()
    cache: Cache | None = Cache()
    services: Services = Services()
    queues: list[Queue] = []
    edge: Edge | None = None
    dns: Dns = Dns()
    failover: FailoverPolicy = FailoverPolicy()
    dr: DisasterRecovery = DisasterRecovery()
    drills: Drills = Drills()
    acknowledge: Acknowledge = Acknowledge()
    names: Names = Names()
    dr_names: Names = Names()

    @property
    def stack(self) -> str:
        """``<app>-<env>``: the stem of every derived name."""
        return f"{self.app}-{self.env}"

    @model_validator(mode="after")
    def _regions_match_azs(self) -> Config:
        for role, region in (("primary", self.regions.primary), ("dr", self.regions.dr)):
            net: RegionNetwork = getattr(self.network, role)
            wrong = [az for az in net.azs if not az.startswith(region)]
            if wrong:
                raise ValueError(f"network.{role}.azs: {wrong} are not in region {region}")
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ValueError("queues: queue names must be unique")
        if self.dr.posture == "pilot_light" and not self.database.dr_replica:
            raise ValueError(
                "dr.posture pilot_light keeps the data in DR: set database.dr_replica: true"
            )
        if self.cache is not None and self.cache.global_datastore and not self.warm_standby:
            raise ValueError(
                f"cache.global_datastore: keeps a live cache member in DR, which only dr.posture "
                f"warm_standby runs ({self.dr.posture} starts DR with an empty cache): set "
                "dr.posture: warm_standby or cache.global_datastore: false"
            )
        if self.dr_names.global_cache:
            raise ValueError(
                "dr_names.global_cache: one Global Datastore spans both regions; name it under "
                "names.global_cache"
            )
        if self.names.global_cache and not self.global_cache:
            raise ValueError("names.global_cache: adopting one needs cache.global_datastore: true")
        if self.dr.posture == "backup_restore":
            if self.database.dr_replica:
                raise ValueError(
                    "dr.posture backup_restore keeps snapshot copies in DR, not a replica: set "
                    "database.dr_replica: false"
                )
            if self.database.engine != "postgres":
                raise ValueError(
                    "dr.posture backup_restore restores RDS instances (database.engine: "
                    "postgres); for Aurora use pilot_light with its global database"
                )
        return self

    @property
    def warm_standby(self) -> bool:
        """The DR region runs the whole app stack at its warm size between moves."""
        return self.dr.posture == "warm_standby"

    @property
    def global_cache(self) -> bool:
        """The session cache is an ElastiCache Global Datastore with a member in DR."""
        return self.cache is not None and self.cache.global_datastore

    @property
    def pilot_light(self) -> bool:
        """The DR region runs no services until a move there creates them."""
        return self.dr.posture == "pilot_light"

    @property
    def restores(self) -> bool:
        """The DR region keeps snapshot copies and no database: a move restores one."""
        return self.dr.posture == "backup_restore"

    def runs_services(self, role: Literal["primary", "dr"]) -> bool:
        """Whether ``role``'s region keeps its services between moves (not the DR of a pilot
        light or of a backup and restore: there a move creates them from the task definitions
        kept current)."""
        return not (role == "dr" and self.dr.posture != "warm_standby")
