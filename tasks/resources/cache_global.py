"""The session cache as an ElastiCache Global Datastore: the primary's replication group and a
read-only member in DR, so a region move keeps the sessions.

* Found from a member's ``GlobalReplicationGroupInfo`` (either region's), else by the id under
  ``names.global_cache``, else by the suffix tierbook gives it (AWS puts a region prefix
  before it: ``xxxxx-<app>-<env>-cache``).
* Created with ``CreateGlobalReplicationGroup`` from the primary's group, then the DR member
  with ``CreateReplicationGroup`` + ``GlobalReplicationGroupId`` in DR (it inherits engine,
  version, node type and encryption; its KMS key is DR's own). A DR group that exists outside
  the datastore cannot join it: reported, not replaced.
* Promoted with ``FailoverGlobalReplicationGroup``, called in the region of the member being
  promoted (only that region answers when the other is dark).
* Deleted by disassociating the secondaries, then ``DeleteGlobalReplicationGroup`` with
  ``RetainPrimaryReplicationGroup`` (the regional groups go with the regions' caches).

https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Redis-Global-Datastore.html
"""

from __future__ import annotations

from typing import Any, Literal

from configs import defaults
from configs.errors import NotFound
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import Action, Change, StepResult, created, deleted, result, updated
from tasks.core.errors import AwsError
from tasks.core.log import logger
from tasks.core.retry import absent, is_code, wait_for, wait_gone
from tasks.core.steps import step
from tasks.core.tags import tag_list
from tasks.resources.cache import (
    converge_group,
    describe_group,
    group_settings,
)

GROUP = "elasticache:global-replication-group"
MEMBER = "elasticache:replication-group"
GLOBAL_NOT_FOUND = "GlobalReplicationGroupNotFoundFault"


def _regional(cfg: Config, region: str) -> Any:
    return connect(cfg).client("elasticache", region)


def _client(cfg: Config, role: Role) -> Any:
    return _regional(cfg, names_for(cfg, role).region)


def describe_global(ec: Any, ident: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = absent(
        lambda: ec.describe_global_replication_groups(
            GlobalReplicationGroupId=ident, ShowMemberInfo=True
        )["GlobalReplicationGroups"][0],
        GLOBAL_NOT_FOUND,
    )
    return found


def global_id_of(member: dict[str, Any] | None) -> str | None:
    """The Global Datastore a regional replication group belongs to."""
    info = (member or {}).get("GlobalReplicationGroupInfo") or {}
    return info.get("GlobalReplicationGroupId") or None


def member_of(group: dict[str, Any], ident: str, region: str) -> dict[str, Any] | None:
    return next(
        (
            m
            for m in group.get("Members") or []
            if m.get("ReplicationGroupId") == ident and m.get("ReplicationGroupRegion") == region
        ),
        None,
    )


def by_name(ec: Any, cfg: Config) -> dict[str, Any] | None:
    """The datastore named under ``names.global_cache``, else the one ending in tierbook's
    suffix, as ``ec``'s region sees it."""
    names = names_for(cfg, "primary")
    if names.global_cache:
        return describe_global(ec, names.global_cache)
    suffix = "-" + names.global_cache_suffix
    pages = ec.get_paginator("describe_global_replication_groups").paginate(ShowMemberInfo=True)
    listed = (g for page in pages for g in page["GlobalReplicationGroups"])
    return next((g for g in listed if g["GlobalReplicationGroupId"].endswith(suffix)), None)


def find_global_cache(cfg: Config, role: Role) -> dict[str, Any] | None:
    """The stack's Global Datastore as ``role``'s region sees it (only that region is read)."""
    ec = _client(cfg, role)
    ident = global_id_of(describe_group(ec, names_for(cfg, role).cache))
    return describe_global(ec, ident) if ident else by_name(ec, cfg)


def wait_settled(ec: Any, ident: str, what: str, until: Any, timeout_s: float) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: describe_global(ec, ident) or {},
        until=until,
        what=what,
        timeout_s=timeout_s,
        describe=lambda g: f"{g.get('Status')} {[m.get('Status') for m in g.get('Members', [])]}",
    )
    return found


def settled(g: dict[str, Any]) -> bool:
    """Available, every member associated."""
    members = g.get("Members") or []
    return g.get("Status") == "available" and all(m.get("Status") == "associated" for m in members)


# -- pure: what the DR member's state means ---------------------------------------------------
def global_cache_findings(
    group: dict[str, Any] | None, dr_ident: str, dr_region: str
) -> tuple[Literal["pass", "warn", "fail"], str]:
    """(status, detail) of the DR member for readiness: ``pass``, ``warn`` (settling) or
    ``fail``."""
    if group is None:
        return "fail", "no Global Datastore holds the session cache: provision creates it"
    gid = group["GlobalReplicationGroupId"]
    member = member_of(group, dr_ident, dr_region)
    if member is None:
        return "fail", f"{dr_ident} in {dr_region} is not a member of {gid}: provision adds it"
    state = f"{gid} {group.get('Status')}, {dr_ident} {member.get('Role')} {member.get('Status')}"
    if member.get("Status") != "associated":
        return "fail", f"{state}: not replicating"
    if group.get("Status") != "available":
        return "warn", f"{state}: a change is under way"
    return "pass", state


# -- provision ---------------------------------------------------------------------------------
def description(cfg: Config) -> str:
    return f"{names_for(cfg, 'primary').stem} sessions"


def _converge_description(
    ec: Any, group: dict[str, Any], want: str, *, dry_run: bool
) -> list[Change]:
    """An adopted datastore takes tierbook's description (the one setting of the group itself
    that the config decides), waited for: a member cannot join a group being modified."""
    have = group.get("GlobalReplicationGroupDescription", "")
    if have == want:
        return []
    ident = group["GlobalReplicationGroupId"]
    if not dry_run:
        ec.modify_global_replication_group(
            GlobalReplicationGroupId=ident,
            ApplyImmediately=True,
            GlobalReplicationGroupDescription=want,
        )
        wait_settled(
            ec, ident, f"global cache {ident} modified", settled, defaults.GLOBAL_CACHE_TIMEOUT_S
        )
    return [updated(GROUP, ident, "", {"description": have}, {"description": want})]


def _ensure_group(cfg: Config, *, dry_run: bool) -> tuple[dict[str, Any] | None, list[Change]]:
    """The datastore, made from the primary's group when there is none (and waited for)."""
    primary = names_for(cfg, "primary")
    ec = _client(cfg, "primary")
    member = describe_group(ec, primary.cache)
    ident = global_id_of(member)
    group = describe_global(ec, ident) if ident else by_name(ec, cfg)
    if group is not None:
        return group, _converge_description(ec, group, description(cfg), dry_run=dry_run)
    change = created(GROUP, primary.global_cache_suffix, "", {"primary": primary.cache})
    if dry_run:
        return None, [change]
    if member is None:
        raise NotFound(
            f"cache {primary.cache} does not exist in {primary.region}: provision the primary "
            "region first (its Global Datastore is made from it)"
        )
    made = ec.create_global_replication_group(
        GlobalReplicationGroupIdSuffix=primary.global_cache_suffix,
        GlobalReplicationGroupDescription=description(cfg),
        PrimaryReplicationGroupId=primary.cache,
    )["GlobalReplicationGroup"]
    ident = made["GlobalReplicationGroupId"]
    change = created(GROUP, ident, "", {"primary": primary.cache})
    group = wait_settled(
        ec, ident, f"global cache {ident} available", settled, defaults.GLOBAL_CACHE_TIMEOUT_S
    )
    return group, [change]


@step("ensure global cache")
def ensure_global_cache(
    cfg: Config, kms_key_arn: str, data_sg: str, *, dry_run: bool = False
) -> StepResult:
    """The Global Datastore and its DR member (encrypted with DR's key, in DR's data subnets
    behind DR's data security group), the member converged like the primary's group; run
    twice, the second run changes nothing."""
    if not cfg.global_cache:
        return StepResult(skipped="cache.global_datastore is off")
    assert cfg.cache is not None
    dr = names_for(cfg, "dr")
    group, changes = _ensure_group(cfg, dry_run=dry_run)
    ident = group["GlobalReplicationGroupId"] if group else dr.global_cache_suffix
    ec = _client(cfg, "dr")
    member = describe_group(ec, dr.cache)
    if member is None:
        nodes = 1 + cfg.cache.replicas
        changes.append(created(MEMBER, dr.cache, dr.region, {"global": ident, "nodes": nodes}))
        if not dry_run:
            ec.create_replication_group(
                ReplicationGroupId=dr.cache,
                ReplicationGroupDescription=f"{dr.stem} cache (DR member of {ident})",
                GlobalReplicationGroupId=ident,
                NumCacheClusters=nodes,
                PreferredCacheClusterAZs=[
                    cfg.network.dr.azs[i % len(cfg.network.dr.azs)] for i in range(nodes)
                ],
                CacheSubnetGroupName=dr.cache_subnet_group,
                KmsKeyId=kms_key_arn,
                Tags=tag_list(dr.tags("data")),
                **group_settings(cfg, data_sg),
            )
            wait_settled(
                ec,
                ident,
                f"{dr.cache} associated with {ident}",
                lambda g: member_of(g, dr.cache, dr.region) is not None and settled(g),
                defaults.GLOBAL_CACHE_TIMEOUT_S,
            )
    elif global_id_of(member) != ident:
        changes.append(
            Change(
                resource=MEMBER,
                name=dr.cache,
                action=Action.REPLACE,
                region=dr.region,
                detail=f"exists outside {ident}: an existing group cannot join a Global "
                "Datastore; delete it, or name another under dr_names.cache. Not done",
            )
        )
    else:
        changes += converge_group(cfg, ec, member, dr.region, data_sg, dry_run=dry_run)
    return result(changes, dry_run, global_cache=ident)


# -- region moves ------------------------------------------------------------------------------
@step("promote session cache in {to}")
def promote_session_cache(cfg: Config, to: Role, *, timeout_s: float | None = None) -> StepResult:
    """``to``'s member becomes the datastore's primary; called in ``to``'s region, the only
    one read or written (the other may be dark)."""
    if not cfg.global_cache:
        return StepResult(skipped="cache.global_datastore is off")
    names = names_for(cfg, to)
    ec = _client(cfg, to)
    ident = global_id_of(describe_group(ec, names.cache))
    if ident is None:
        raise NotFound(
            f"cache {names.cache} in {names.region} belongs to no Global Datastore: run "
            "`tierbook provision` (readiness reports it)"
        )
    timeout = timeout_s if timeout_s is not None else cfg.failover.promote_timeout_seconds

    def primary_here(g: dict[str, Any]) -> bool:
        m = member_of(g, names.cache, names.region)
        return bool(m and m.get("Role") == "PRIMARY" and g.get("Status") == "available")

    group = describe_global(ec, ident) or {}
    if primary_here(group):
        return StepResult(detail=f"{names.cache} is already the primary of {ident}")
    try:
        # AWS allows a promotion while other changes are in progress
        ec.failover_global_replication_group(
            GlobalReplicationGroupId=ident,
            PrimaryRegion=names.region,
            PrimaryReplicationGroupId=names.cache,
        )
    except AwsError as exc:
        if not is_code(exc, "InvalidGlobalReplicationGroupState"):
            raise
        logger().info("%s: %s; waiting for it", ident, exc)  # a failover already under way
    wait_settled(ec, ident, f"{names.cache} primary of {ident}", primary_here, timeout)
    change = updated(MEMBER, names.cache, names.region, {"role": "SECONDARY"}, {"role": "PRIMARY"})
    return StepResult(
        changes=[change], applied=True, detail=f"{ident} failed over to {names.region}"
    )


# -- destroy -------------------------------------------------------------------------------------
@step("delete global cache")
def ensure_global_cache_deleted(
    cfg: Config, member: bool = True, *, dry_run: bool = False
) -> StepResult:
    """Secondaries disassociated, the datastore deleted (its primary kept as a regional
    group), then DR's member and its subnet group (not ``member``: DR's group is left, a
    regional one); the primary's group is the primary region's ``ensure_cache_deleted``."""
    changes: list[Change] = []
    dr = names_for(cfg, "dr")
    # from the primary when DR's member is to stay (a destroy of the primary alone)
    group = find_global_cache(cfg, "dr" if member else "primary") if cfg.global_cache else None
    if group is not None:
        changes += _delete_group(cfg, group, dry_run=dry_run)
    if not member:
        return result(changes, dry_run)
    ec = _client(cfg, "dr")
    found = describe_group(ec, dr.cache)
    if found is not None and (cfg.global_cache or global_id_of(found)):
        if found.get("Status") != "deleting":
            changes.append(deleted(MEMBER, dr.cache, dr.region))
            if not dry_run:
                ec.delete_replication_group(ReplicationGroupId=dr.cache, RetainPrimaryCluster=False)
        if not dry_run:
            wait_gone(lambda: describe_group(ec, dr.cache), f"cache {dr.cache} deleted")
    subnets = absent(
        lambda: ec.describe_cache_subnet_groups(CacheSubnetGroupName=dr.cache_subnet_group)[
            "CacheSubnetGroups"
        ],
        "CacheSubnetGroupNotFoundFault",
    )
    if subnets:
        changes.append(deleted("elasticache:subnet-group", dr.cache_subnet_group, dr.region))
        if not dry_run:
            ec.delete_cache_subnet_group(CacheSubnetGroupName=dr.cache_subnet_group)
    return result(changes, dry_run)


def _delete_group(cfg: Config, group: dict[str, Any], *, dry_run: bool) -> list[Change]:
    """Called in the region of the datastore's primary member."""
    ident = group["GlobalReplicationGroupId"]
    members = group.get("Members") or []
    primary = next((m for m in members if m.get("Role") == "PRIMARY"), None)
    region = primary["ReplicationGroupRegion"] if primary else cfg.regions.dr
    ec = _regional(cfg, region)
    changes: list[Change] = []
    for m in members:
        if m.get("Role") == "PRIMARY" or m.get("Status") == "disassociating":
            continue
        changes.append(
            deleted(
                "elasticache:global-member",
                m["ReplicationGroupId"],
                m["ReplicationGroupRegion"],
                f"disassociated from {ident}",
            )
        )
        if not dry_run:
            wait_settled(ec, ident, f"{ident} available", settled, defaults.GLOBAL_CACHE_TIMEOUT_S)
            ec.disassociate_global_replication_group(
                GlobalReplicationGroupId=ident,
                ReplicationGroupId=m["ReplicationGroupId"],
                ReplicationGroupRegion=m["ReplicationGroupRegion"],
            )
    if group.get("Status") != "deleting":
        changes.append(deleted(GROUP, ident, "", "primary kept as a regional group"))
        if not dry_run:
            wait_settled(
                ec,
                ident,
                f"{ident} down to its primary",
                lambda g: settled(g) and len(g.get("Members") or []) <= 1,
                defaults.GLOBAL_CACHE_TIMEOUT_S,
            )
            ec.delete_global_replication_group(
                GlobalReplicationGroupId=ident, RetainPrimaryReplicationGroup=True
            )
    if not dry_run:
        wait_gone(
            lambda: describe_global(ec, ident),
            f"global cache {ident} deleted",
            timeout_s=defaults.GLOBAL_CACHE_TIMEOUT_S,
        )
    return changes
