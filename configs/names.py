"""Resource names, derived from ``app`` + ``env`` unless the config names the resource.

Pure functions of the config, so a plan, an audit and a failover all agree on what a
resource is called. ``role`` is ``"primary"`` or ``"dr"``: regional resources carry the same
stem in both regions, while the database and buckets (whose names must differ) say which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from configs.models import Config

Role = Literal["primary", "dr"]
Tier = Literal["public", "app", "data"]
TIERS: tuple[Tier, ...] = ("public", "app", "data")


@dataclass(frozen=True)
class StackNames:
    """Every name one region's half of the stack uses."""

    cfg: Config
    role: Role

    # -- helpers -------------------------------------------------------------------------
    @property
    def stem(self) -> str:
        return self.cfg.stack

    @property
    def region(self) -> str:
        return self.cfg.regions.primary if self.role == "primary" else self.cfg.regions.dr

    def _given(self, field: str) -> str | None:
        override = getattr(self.cfg.dr_names, field) if self.role == "dr" else None
        return override or getattr(self.cfg.names, field)

    def _own(self, field: str) -> str | None:
        """This region's block only: for names the two regions must not share."""
        return getattr(self.cfg.dr_names if self.role == "dr" else self.cfg.names, field)

    # -- network -------------------------------------------------------------------------
    @property
    def vpc(self) -> str:
        return self._given("vpc") or self.stem

    def subnet(self, tier: Tier, az: str) -> str:
        return f"{self.vpc}-{tier}-{az}"

    def route_table(self, tier: Tier, az: str | None = None) -> str:
        return f"{self.vpc}-{tier}" + (f"-{az}" if az else "")

    def nat(self, az: str) -> str:
        return f"{self.vpc}-nat-{az}"

    @property
    def internet_gateway(self) -> str:
        return f"{self.vpc}-igw"

    def security_group(self, tier: Literal["alb", "app", "data", "endpoints"]) -> str:
        return f"{self.stem}-{tier}"

    @property
    def flow_log_group(self) -> str:
        return f"/vpc/{self.stem}/flow-logs"

    # -- data ----------------------------------------------------------------------------
    @property
    def kms_alias(self) -> str:
        return f"alias/{self.stem}-data"

    @property
    def db_subnet_group(self) -> str:
        return f"{self.stem}-data"

    @property
    def db_instance(self) -> str:
        """The database instance of this region: the writer in primary, the replica in DR."""
        if self.role == "dr":
            return self._own("db_instance") or f"{self.stem}-db-dr"
        return self.cfg.names.db_instance or f"{self.stem}-db"

    @property
    def db_cluster(self) -> str:
        if self.role == "dr":
            return self._own("db_cluster") or f"{self.stem}-aurora-dr"
        return self.cfg.names.db_cluster or f"{self.stem}-aurora"

    def db_read_replica(self, index: int) -> str:
        return f"{self.db_instance}-ro{index + 1}"

    @property
    def cache(self) -> str:
        return self._given("cache") or f"{self.stem}-cache"

    @property
    def global_cache_suffix(self) -> str:
        """What CreateGlobalReplicationGroup is given; AWS prefixes it (``xxxxx-<suffix>``)."""
        return f"{self.stem}-cache"

    @property
    def global_cache(self) -> str | None:
        """The full id of a Global Datastore to adopt (``names.global_cache``), else None."""
        return self.cfg.names.global_cache

    @property
    def cache_subnet_group(self) -> str:
        return f"{self.stem}-data"

    # -- app -----------------------------------------------------------------------------
    @property
    def cluster(self) -> str:
        return self._given("cluster") or self.stem

    def service(self, svc: str) -> str:
        return self._given(f"{svc}_service") or f"{self.stem}-{svc}"

    def task_family(self, svc: str) -> str:
        return self._given(f"{svc}_task_family") or f"{self.stem}-{svc}"

    def repository(self, svc: str) -> str:
        service = getattr(self.cfg.services, svc)
        return (
            self._given(f"{svc}_repository")
            or (service.image_repository if service else None)
            or f"{self.cfg.app}/{svc}"
        )

    def log_group(self, svc: str) -> str:
        return f"/ecs/{self.stem}/{svc}"

    @property
    def execution_role(self) -> str:
        return f"{self.stem}-ecs-execution"

    def task_role(self, svc: str) -> str:
        return f"{self.stem}-{svc}-task"

    @property
    def alb(self) -> str:
        return self._given("alb") or self.stem

    @property
    def target_group(self) -> str:
        return self._given("target_group") or f"{self.stem}-web"

    @property
    def web_acl(self) -> str:
        return self._given("web_acl") or self.stem

    def queue(self, name: str, *, fifo: bool = False) -> str:
        return f"{self.stem}-{name}" + (".fifo" if fifo else "")

    def dlq(self, name: str, *, fifo: bool = False) -> str:
        return f"{self.stem}-{name}-dlq" + (".fifo" if fifo else "")

    def alarm(self, signal: str) -> str:
        return f"{self.stem}-{signal}"

    @property
    def codebuild_project(self) -> str:
        return f"{self.stem}-image-build"

    # -- edge ----------------------------------------------------------------------------
    @property
    def asset_bucket(self) -> str:
        return (
            self._given("asset_bucket") or f"{self.stem}-assets-{self.cfg.account_id}-{self.region}"
        )

    @property
    def log_bucket(self) -> str:
        return self._given("log_bucket") or f"{self.stem}-logs-{self.cfg.account_id}-{self.region}"

    @property
    def drill_bucket(self) -> str:
        """The backup drill's staging bucket: where the cache's backup is exported and copied."""
        return f"{self.stem}-drills-{self.cfg.account_id}-{self.region}"

    @property
    def distribution_comment(self) -> str:
        return f"{self.stem} assets and app"

    @property
    def health_check_reference(self) -> str:
        """The Name tag of the Route 53 health check on this region's load balancer."""
        return self._own("health_check") or f"{self.stem}-{self.role}"

    @property
    def record_set_id(self) -> str:
        """The SetIdentifier of this region's failover (or weighted) record of the app name."""
        return self._own("record_set_id") or f"{self.stem}-{self.role}"

    # -- operations ----------------------------------------------------------------------
    @property
    def lock_table(self) -> str:
        return self.cfg.names.lock_table or f"{self.stem}-tierbook-locks"

    def tags(self, component: str) -> dict[str, str]:
        """Tags every resource carries: app, env, component, managed-by (plus the config's)."""
        return {
            **self.cfg.tags,
            "app": self.cfg.app,
            "env": self.cfg.env,
            "component": component,
            "managed-by": "tierbook",
        }


def names_for(cfg: Config, role: Role = "primary") -> StackNames:
    return StackNames(cfg, role)


def origin_name(cfg: Config) -> str:
    """The name the ALBs answer to: behind CloudFront, an ``origin.`` name; else the domain."""
    assert cfg.edge is not None
    return f"origin.{cfg.edge.domain}" if cfg.edge.cloudfront else cfg.edge.domain
