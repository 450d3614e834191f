"""The seeds' anti-patterns, refused in config unless acknowledged under ``acknowledge:``."""

from __future__ import annotations

from configs.errors import Problem
from configs.models import SECRET_LIKE, Config


def anti_patterns(cfg: Config) -> list[Problem]:
    """Every dangerous choice in ``cfg`` that the file did not acknowledge explicitly."""
    ack = cfg.acknowledge
    found: list[Problem] = []
    for role in ("primary", "dr"):
        azs = getattr(cfg.network, role).azs
        if len(azs) < 2 and not ack.single_az:
            found.append(
                Problem(
                    f"network.{role}.azs",
                    f"only {len(azs)} availability zone: one AZ outage takes the stack down; "
                    "give at least 2 (or set acknowledge.single_az: true)",
                )
            )
    if cfg.network.nat == "single" and not ack.single_nat:
        found.append(
            Problem(
                "network.nat",
                "one NAT gateway for all AZs is a single point of failure for app-tier egress; "
                "use per_az (or set acknowledge.single_nat: true)",
            )
        )
    if not cfg.database.multi_az and not ack.single_az_database:
        found.append(
            Problem(
                "database.multi_az",
                "a single-AZ database turns every patch or reboot into an outage; "
                "set multi_az: true (or acknowledge.single_az_database: true)",
            )
        )
    for i, cidr in enumerate(cfg.network.data_ingress_cidrs):
        if ack.open_data_tier:
            continue
        why = "the whole internet" if cidr.endswith("/0") else "a whole CIDR block"
        found.append(
            Problem(
                f"network.data_ingress_cidrs.{i}",
                f"{cidr} opens the data tier to {why}; only the app security group may reach it "
                "(or set acknowledge.open_data_tier: true)",
            )
        )
    if cfg.cache is not None and not cfg.cache.automatic_failover and not ack.no_cache_failover:
        found.append(
            Problem(
                "cache.automatic_failover",
                "a cache without automatic failover turns a node loss into an outage and a "
                "thundering herd on the database (or set acknowledge.no_cache_failover: true)",
            )
        )
    for name, svc in cfg.services.items():
        for key in svc.environment:
            if SECRET_LIKE.search(key) and key not in ack.plain_env_secrets:
                found.append(
                    Problem(
                        f"services.{name}.environment.{key}",
                        "looks like a credential given as a plain value; put it in Secrets "
                        "Manager and list its ARN under secrets (or add it to "
                        "acknowledge.plain_env_secrets)",
                    )
                )
    return found
