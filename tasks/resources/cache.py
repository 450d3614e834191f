"""Data layer: the ElastiCache (Valkey/Redis) replication group of the primary region.

A primary and ``replicas`` replicas spread over the AZs, automatic failover and Multi-AZ on,
encrypted in transit and at rest (with the stack's KMS key), in the data subnets behind the
data security group. Encryption cannot be switched on in place: drift there is reported, not
"fixed" by replacing a cache that holds sessions.
"""

from __future__ import annotations

from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import Action, Change, StepResult, created, deleted, diff, result, updated
from tasks.core.retry import absent, wait_gone
from tasks.core.steps import step
from tasks.core.tags import tag_list


def _client(cfg: Config) -> Any:
    return connect(cfg).client("elasticache", cfg.regions.primary)


def spread(azs: list[str], count: int) -> list[str]:
    """One AZ per node, round-robin: the primary and its replicas never share an AZ if avoidable."""
    return [azs[i % len(azs)] for i in range(count)]


def group_settings(cfg: Config, data_sg: str) -> dict[str, Any]:
    """What ``ModifyReplicationGroup`` converges. Pure."""
    c = cfg.cache
    assert c is not None
    return {
        "AutomaticFailoverEnabled": c.automatic_failover,
        "MultiAZEnabled": c.automatic_failover,
        "SnapshotRetentionLimit": c.snapshot_retention_days,
        "SecurityGroupIds": [data_sg],
    }


def observed_group(g: dict[str, Any], members: list[str]) -> dict[str, Any]:
    return {
        "AutomaticFailoverEnabled": g.get("AutomaticFailover") in ("enabled", "enabling"),
        "MultiAZEnabled": g.get("MultiAZ") == "enabled",
        "SnapshotRetentionLimit": g.get("SnapshotRetentionLimit"),
        "SecurityGroupIds": members,
    }


def _security_groups(ec: Any, g: dict[str, Any]) -> list[str] | None:
    """The groups of the group's first node; None when the nodes cannot be described."""
    clusters = g.get("MemberClusters") or []
    if not clusters:
        return None
    found = absent(
        lambda: ec.describe_cache_clusters(CacheClusterId=clusters[0])["CacheClusters"],
        "CacheClusterNotFound",
        "CacheClusterNotFoundFault",
    )
    if found is None:
        return None
    return sorted(s["SecurityGroupId"] for s in (found[0].get("SecurityGroups") or []))


@step("ensure {role} cache subnet group")
def ensure_cache_subnet_group(
    cfg: Config, role: Role, data_subnets: list[str], *, dry_run: bool = False
) -> StepResult:
    """``role``'s cache subnet group over its data subnets (DR's holds a Global Datastore's
    member)."""
    names = names_for(cfg, role)
    ec = connect(cfg).client("elasticache", names.region)
    name = names.cache_subnet_group
    g = absent(
        lambda: ec.describe_cache_subnet_groups(CacheSubnetGroupName=name)["CacheSubnetGroups"][0],
        "CacheSubnetGroupNotFoundFault",
    )
    if g is None:
        if not dry_run:
            ec.create_cache_subnet_group(
                CacheSubnetGroupName=name,
                CacheSubnetGroupDescription=f"{names.stem} data tier",
                SubnetIds=data_subnets,
                Tags=tag_list(names.tags("data")),
            )
        change = created("elasticache:subnet-group", name, names.region, {})
        return StepResult(changes=[change], outputs={"name": name}, applied=not dry_run)
    have = sorted(s["SubnetIdentifier"] for s in g.get("Subnets", []))
    if have == sorted(data_subnets):
        return StepResult(outputs={"name": name})
    if not dry_run:
        ec.modify_cache_subnet_group(CacheSubnetGroupName=name, SubnetIds=data_subnets)
    change = updated(
        "elasticache:subnet-group",
        name,
        names.region,
        {"subnets": have},
        {"subnets": sorted(data_subnets)},
    )
    return StepResult(changes=[change], outputs={"name": name}, applied=not dry_run)


def describe_group(ec: Any, ident: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = absent(
        lambda: ec.describe_replication_groups(ReplicationGroupId=ident)["ReplicationGroups"][0],
        "ReplicationGroupNotFoundFault",
    )
    return found


@step("ensure cache")
def ensure_cache(
    cfg: Config, kms_key_arn: str, data_sg: str, *, dry_run: bool = False
) -> StepResult:
    if cfg.cache is None:
        return StepResult(skipped="no cache in the config")
    c = cfg.cache
    names = names_for(cfg, "primary")
    region = names.region
    ec = _client(cfg)
    ident = names.cache
    g = describe_group(ec, ident)
    nodes = 1 + c.replicas
    if g is None:
        change = created(
            "elasticache:replication-group",
            ident,
            region,
            {
                "engine": c.engine,
                "nodes": nodes,
                "failover": c.automatic_failover,
                "encrypted": True,
            },
        )
        if not dry_run:
            ec.create_replication_group(
                ReplicationGroupId=ident,
                ReplicationGroupDescription=f"{names.stem} cache",
                Engine=c.engine,
                EngineVersion=c.engine_version,
                CacheNodeType=c.node_type,
                NumCacheClusters=nodes,
                PreferredCacheClusterAZs=spread(cfg.network.primary.azs, nodes),
                CacheSubnetGroupName=names.cache_subnet_group,
                TransitEncryptionEnabled=True,
                AtRestEncryptionEnabled=True,
                KmsKeyId=kms_key_arn,
                Port=c.port,
                Tags=tag_list(names.tags("data")),
                **group_settings(cfg, data_sg),
            )
        return StepResult(changes=[change], outputs={"cache": ident}, applied=not dry_run)
    changes = converge_group(cfg, ec, g, region, data_sg, dry_run=dry_run)
    return StepResult(changes=changes, outputs={"cache": ident}, applied=not dry_run)


def converge_group(
    cfg: Config, ec: Any, g: dict[str, Any], region: str, data_sg: str, *, dry_run: bool
) -> list[Change]:
    """An existing replication group (the primary's, or a Global Datastore's DR member)
    brought to the config: settings modified, replicas added; encryption only reported."""
    c = cfg.cache
    assert c is not None
    ident = g["ReplicationGroupId"]
    changes: list[Change] = []
    cannot = [k for k in ("TransitEncryptionEnabled", "AtRestEncryptionEnabled") if not g.get(k)]
    if cannot:
        changes.append(
            Change(
                resource="elasticache:replication-group",
                name=ident,
                action=Action.REPLACE,
                region=region,
                detail=f"{', '.join(cannot)} off: cannot change in place, not done",
            )
        )
    want = group_settings(cfg, data_sg)
    members = _security_groups(ec, g)
    if members is None:
        want.pop("SecurityGroupIds")
    before, after = diff(want, observed_group(g, members or []))
    if after:
        changes.append(updated("elasticache:replication-group", ident, region, before, after))
        if not dry_run:
            ec.modify_replication_group(ReplicationGroupId=ident, ApplyImmediately=True, **after)
    have_nodes, nodes = len(g.get("MemberClusters") or []), 1 + c.replicas
    if have_nodes < nodes:
        changes.append(
            updated(
                "elasticache:replication-group",
                ident,
                region,
                {"nodes": have_nodes},
                {"nodes": nodes},
            )
        )
        if not dry_run:
            ec.increase_replica_count(
                ReplicationGroupId=ident, NewReplicaCount=c.replicas, ApplyImmediately=True
            )
    return changes


@step("delete cache")
def ensure_cache_deleted(cfg: Config, *, dry_run: bool = False) -> StepResult:
    """The replication group (its nodes go with it), then its subnet group."""
    names = names_for(cfg, "primary")
    ec = connect(cfg).client("elasticache", names.region)
    ident, group = names.cache, names.cache_subnet_group

    def describe() -> Any:
        return absent(
            lambda: ec.describe_replication_groups(ReplicationGroupId=ident)["ReplicationGroups"],
            "ReplicationGroupNotFoundFault",
        )

    changes: list[Change] = []
    found = describe()
    if found:
        if found[0].get("Status") != "deleting":
            changes.append(deleted("elasticache:replication-group", ident, names.region))
            if not dry_run:
                ec.delete_replication_group(ReplicationGroupId=ident, RetainPrimaryCluster=False)
        if not dry_run:
            wait_gone(describe, f"cache {ident} deleted")
    subnets = absent(
        lambda: ec.describe_cache_subnet_groups(CacheSubnetGroupName=group)["CacheSubnetGroups"],
        "CacheSubnetGroupNotFoundFault",
    )
    if subnets:
        changes.append(deleted("elasticache:subnet-group", group, names.region))
        if not dry_run:
            ec.delete_cache_subnet_group(CacheSubnetGroupName=group)
    return result(changes, dry_run)
