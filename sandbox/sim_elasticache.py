"""ElastiCache Global Datastore, which moto 5.2 lacks: one global replication group seen from
each of its members' regions, with AWS's progressions and refusals.

* ``CreateGlobalReplicationGroup`` makes ``<prefix>-<suffix>`` from a regional primary:
  ``creating`` → ``available`` (the primary ``associating`` → ``associated``).
* ``CreateReplicationGroup`` with ``GlobalReplicationGroupId`` adds a secondary in the caller's
  region, inheriting engine, version, node type and encryption flags: the group ``modifying``
  and the member ``associating`` → ``associated``. Refused while the group is not available.
* ``FailoverGlobalReplicationGroup``: ``modifying`` for a while, then the roles swap; allowed
  while another change is under way, refused while a failover is. The group is ``available``
  again only when the last change under way has ended.
* ``DisassociateGlobalReplicationGroup``: the member ``disassociating``, then a standalone
  replication group. ``DeleteGlobalReplicationGroup`` (``RetainPrimaryReplicationGroup``)
  refuses while a secondary is left: ``deleting``, then gone.
* A secondary cannot be deleted while it is associated.

Errors are AWS's codes (``GlobalReplicationGroupNotFoundFault``,
``InvalidGlobalReplicationGroupState``, ``GlobalReplicationGroupAlreadyExistsFault``,
``InvalidReplicationGroupState``, ``InvalidParameterValue``). Timings come from
``Timings.cache_global_seconds``. The prefix AWS puts before the suffix depends on the region;
here it is ``sgaui`` for every region.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.settings import Timings

PREFIX = "sgaui"
# what a secondary inherits from the global group (moto's attribute and keyword names)
INHERITED = (
    "engine",
    "engine_version",
    "cache_node_type",
    "transit_encryption_enabled",
    "at_rest_encryption_enabled",
)


@dataclass
class Member:
    group: str
    region: str
    role: str  # PRIMARY | SECONDARY
    status: str  # associating | associated | disassociating


@dataclass
class GlobalGroup:
    ident: str
    description: str
    settings: dict[str, Any]  # the primary's engine, version, node type, encryption, port
    status: str = "creating"
    members: list[Member] = field(default_factory=list)
    failing_over: bool = False
    changes: int = 0  # changes under way; the group is available again when the last ends

    def begin(self) -> None:
        self.changes += 1
        self.status = "modifying"

    def end(self) -> None:
        self.changes -= 1
        if self.changes == 0:
            self.status = "available"

    def visible_from(self, region: str) -> bool:
        return any(m.region == region for m in self.members)

    def member(self, group: str, region: str) -> Member | None:
        return next((m for m in self.members if m.group == group and m.region == region), None)


def fault(code: str, message: str) -> Exception:
    from moto.elasticache.exceptions import ElastiCacheException

    class Fault(ElastiCacheException):
        pass

    Fault.code = code
    return Fault(message)


class GlobalDatastores:
    """The global groups of the account (they belong to no one region) and their pending
    progressions, applied lazily on each call."""

    def __init__(self) -> None:
        self.timings = Timings()
        self.groups: dict[str, GlobalGroup] = {}
        self.pending: list[tuple[float, Callable[[], None]]] = []
        self.lock = threading.RLock()

    def reset(self) -> None:
        with self.lock:
            self.groups.clear()
            self.pending.clear()

    def later(self, action: Callable[[], None]) -> None:
        self.pending.append((time.time() + self.timings.cache_global_seconds, action))

    def tick(self) -> None:
        now = time.time()
        due = [a for at, a in self.pending if at <= now]
        self.pending = [(at, a) for at, a in self.pending if at > now]
        for action in due:
            action()

    def get(self, ident: str, region: str) -> GlobalGroup:
        self.tick()
        g = self.groups.get(ident)
        if g is None or not g.visible_from(region):
            raise fault(
                "GlobalReplicationGroupNotFoundFault", f"Global replication group {ident} not found"
            )
        return g

    def of(self, group: str, region: str) -> tuple[GlobalGroup, Member] | None:
        """The global group a regional replication group belongs to, and its membership."""
        self.tick()
        for g in self.groups.values():
            m = g.member(group, region)
            if m is not None:
                return g, m
        return None

    def available_member(
        self, ident: str, region: str, group: str, group_region: str, *states: str
    ) -> tuple[GlobalGroup, Member]:
        """A global group in one of ``states`` (default: available), asked from ``region``,
        and one of its members."""
        g = self.get(ident, region)
        self.require(g, *(states or ("available",)))
        found = g.member(group, group_region)
        if found is None:
            raise fault(
                "InvalidParameterValue", f"{group} in {group_region} is not a member of {ident}"
            )
        return g, found

    @staticmethod
    def require(g: GlobalGroup, *states: str) -> None:
        if g.status not in states:
            raise fault(
                "InvalidGlobalReplicationGroupState",
                f"Global replication group {g.ident} is {g.status}, not {' or '.join(states)}",
            )

    # -- the API ---------------------------------------------------------------------------
    def create(self, region: str, suffix: str, primary: Any, description: str) -> GlobalGroup:
        with self.lock:
            self.tick()
            ident = f"{PREFIX}-{suffix}"
            if ident in self.groups:
                raise fault(
                    "GlobalReplicationGroupAlreadyExistsFault",
                    f"Global replication group {ident} already exists",
                )
            if self.of(primary.replication_group_id, region) is not None:
                raise fault(
                    "InvalidReplicationGroupState",
                    f"Replication group {primary.replication_group_id} already belongs to a "
                    "global replication group",
                )
            settings = {k: getattr(primary, k, None) for k in INHERITED}
            g = GlobalGroup(ident, description, settings)
            g.members.append(Member(primary.replication_group_id, region, "PRIMARY", "associating"))
            self.groups[ident] = g

            def created() -> None:
                g.status = "available"
                g.members[0].status = "associated"

            self.later(created)
            return g

    def add_secondary(
        self, ident: str, region: str, group: str, given: dict[str, Any]
    ) -> dict[str, Any]:
        """A secondary joins; returns the settings it inherits (a different one given for it
        is refused)."""
        with self.lock:
            self.tick()
            g = self.groups.get(ident)
            if g is None:
                raise fault(
                    "GlobalReplicationGroupNotFoundFault",
                    f"Global replication group {ident} not found",
                )
            self.require(g, "available")
            if any(m.region == region for m in g.members):
                raise fault(
                    "InvalidParameterValue",
                    f"Global replication group {ident} already has a member in {region}",
                )
            for key, value in g.settings.items():
                if given.get(key) is not None and given[key] != value:
                    raise fault(
                        "InvalidParameterCombination",
                        f"{key} is inherited from global replication group {ident} ({value}); "
                        f"got {given[key]}",
                    )
            member = Member(group, region, "SECONDARY", "associating")
            g.members.append(member)
            g.begin()

            def associated() -> None:
                member.status = "associated"
                g.end()

            self.later(associated)
            return dict(g.settings)

    def failover(self, ident: str, region: str, new_primary: str, new_region: str) -> GlobalGroup:
        with self.lock:
            # "Promotion is allowed anytime, even if other modifications are in progress"
            # (AWS's guide, promoting the secondary to primary); not a second one at once.
            g, target = self.available_member(
                ident, region, new_primary, new_region, "available", "modifying"
            )
            if g.failing_over:
                raise fault(
                    "InvalidGlobalReplicationGroupState",
                    f"Global replication group {ident} is already failing over",
                )
            if target.role == "PRIMARY":
                raise fault(
                    "InvalidParameterValue", f"{new_primary} is already the primary of {ident}"
                )
            if target.status != "associated":
                raise fault(
                    "InvalidGlobalReplicationGroupState", f"{new_primary} is {target.status}"
                )
            g.failing_over = True
            g.begin()

            def swapped() -> None:
                for m in g.members:
                    m.role = "PRIMARY" if m is target else "SECONDARY"
                g.failing_over = False
                g.end()

            self.later(swapped)
            return g

    def disassociate(self, ident: str, region: str, group: str, group_region: str) -> GlobalGroup:
        with self.lock:
            g, m = self.available_member(ident, region, group, group_region)
            if m.role == "PRIMARY":
                raise fault(
                    "InvalidParameterValue",
                    f"{group} is the primary of {ident}: delete the global replication group "
                    "instead",
                )
            m.status = "disassociating"
            g.begin()

            def gone() -> None:
                g.members.remove(m)
                g.end()

            self.later(gone)
            return g

    def delete(self, ident: str, region: str, retain: str | None) -> GlobalGroup:
        with self.lock:
            if str(retain).lower() != "true":
                raise fault(
                    "InvalidParameterValue",
                    "the sandbox keeps the primary: RetainPrimaryReplicationGroup must be true",
                )
            g = self.get(ident, region)
            self.require(g, "available", "primary-only")
            if len(g.members) > 1:
                raise fault(
                    "InvalidGlobalReplicationGroupState",
                    f"Global replication group {ident} still has secondary members: "
                    "disassociate them first",
                )
            g.status = "deleting"

            def gone() -> None:
                self.groups.pop(ident, None)

            self.later(gone)
            return g

    def modify(self, ident: str, region: str, description: str | None) -> GlobalGroup:
        with self.lock:
            g = self.get(ident, region)
            self.require(g, "available")
            g.begin()

            def modified() -> None:
                if description is not None:
                    g.description = description
                g.end()

            self.later(modified)
            return g

    def describe(self, region: str, ident: str | None) -> list[GlobalGroup]:
        with self.lock:
            if ident:
                return [self.get(ident, region)]
            self.tick()
            return [g for g in self.groups.values() if g.visible_from(region)]


SIM = GlobalDatastores()


def shape(g: GlobalGroup, account: str, members: bool) -> dict[str, Any]:
    """A ``GlobalReplicationGroup`` as AWS describes it."""
    s = g.settings
    out: dict[str, Any] = {
        "GlobalReplicationGroupId": g.ident,
        "GlobalReplicationGroupDescription": g.description,
        "Status": g.status,
        "CacheNodeType": s.get("cache_node_type"),
        "Engine": s.get("engine"),
        "EngineVersion": s.get("engine_version"),
        "ClusterEnabled": False,
        "AuthTokenEnabled": False,
        "TransitEncryptionEnabled": bool(s.get("transit_encryption_enabled")),
        "AtRestEncryptionEnabled": bool(s.get("at_rest_encryption_enabled")),
        "ARN": f"arn:aws:elasticache::{account}:globalreplicationgroup:{g.ident}",
    }
    if members:
        out["Members"] = [
            {
                "ReplicationGroupId": m.group,
                "ReplicationGroupRegion": m.region,
                "Role": m.role,
                "AutomaticFailover": "enabled",
                "Status": m.status,
            }
            for m in g.members
        ]
    return out


def install() -> None:
    """Teach moto's ElastiCache the global datastore calls (once, from ``moto_fixes``)."""
    from moto.core.responses import ActionResult
    from moto.elasticache.exceptions import ReplicationGroupNotFound
    from moto.elasticache.models import ElastiCacheBackend, ReplicationGroup
    from moto.elasticache.responses import ElastiCacheResponse

    def region_of(rg: Any) -> str:
        return str(rg.arn.split(":")[3])

    def one(self: Any) -> ActionResult:
        g = SIM.get(self._get_param("GlobalReplicationGroupId"), self.region)
        return ActionResult({"GlobalReplicationGroup": shape(g, self.current_account, True)})

    def create_global(self: Any) -> ActionResult:
        primary_id = self._get_param("PrimaryReplicationGroupId")
        primary = self.elasticache_backend.replication_groups.get(primary_id)
        if primary is None:
            raise ReplicationGroupNotFound(primary_id)
        g = SIM.create(
            self.region,
            self._get_param("GlobalReplicationGroupIdSuffix"),
            primary,
            self._get_param("GlobalReplicationGroupDescription") or "",
        )
        return ActionResult({"GlobalReplicationGroup": shape(g, self.current_account, True)})

    def describe_global(self: Any) -> ActionResult:
        found = SIM.describe(self.region, self._get_param("GlobalReplicationGroupId"))
        members = self._get_bool_param("ShowMemberInfo") or False
        return ActionResult(
            {"GlobalReplicationGroups": [shape(g, self.current_account, members) for g in found]}
        )

    def acting(method: Callable[..., GlobalGroup], *params: str) -> Callable[[Any], Any]:
        """A call on one global group: the group's id, the caller's region, ``params``."""

        def handler(self: Any) -> ActionResult:
            given = [self._get_param(p) for p in params]
            method(self._get_param("GlobalReplicationGroupId"), self.region, *given)
            return one(self)

        return handler

    ElastiCacheResponse.create_global_replication_group = create_global  # type: ignore[attr-defined]
    ElastiCacheResponse.describe_global_replication_groups = describe_global  # type: ignore[attr-defined]
    calls = {
        "failover": acting(SIM.failover, "PrimaryReplicationGroupId", "PrimaryRegion"),
        "disassociate": acting(SIM.disassociate, "ReplicationGroupId", "ReplicationGroupRegion"),
        "delete": acting(SIM.delete, "RetainPrimaryReplicationGroup"),
        "modify": acting(SIM.modify, "GlobalReplicationGroupDescription"),
    }
    for verb, handler in calls.items():
        setattr(ElastiCacheResponse, f"{verb}_global_replication_group", handler)

    create = ElastiCacheBackend.create_replication_group
    delete = ElastiCacheBackend.delete_replication_group

    def create_replication_group(self: Any, **kwargs: Any) -> Any:
        ident = kwargs.get("global_replication_group_id")
        if ident:
            given = {k: kwargs.get(k) for k in INHERITED}
            kwargs.update(
                SIM.add_secondary(ident, self.region_name, kwargs["replication_group_id"], given)
            )
        return create(self, **kwargs)

    def delete_replication_group(self: Any, replication_group_id: str, **kwargs: Any) -> Any:
        found = SIM.of(replication_group_id, self.region_name)
        if found is not None:
            raise fault(
                "InvalidReplicationGroupState",
                f"Replication group {replication_group_id} is a member of global replication "
                f"group {found[0].ident}: disassociate it (or delete the global group) first",
            )
        return delete(self, replication_group_id, **kwargs)

    def global_info(self: Any) -> dict[str, str] | None:
        found = SIM.of(self.replication_group_id, region_of(self))
        if found is None:
            return None
        return {
            "GlobalReplicationGroupId": found[0].ident,
            "GlobalReplicationGroupMemberRole": found[1].role,
        }

    ElastiCacheBackend.create_replication_group = create_replication_group  # type: ignore[method-assign,assignment]
    ElastiCacheBackend.delete_replication_group = delete_replication_group  # type: ignore[method-assign,assignment]
    ReplicationGroup.global_replication_group_info = property(global_info)  # type: ignore[method-assign,assignment]
