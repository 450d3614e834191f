"""Audit rules: a live stack checked against the seeds' anti-patterns. Pure.

Each rule takes AWS-shaped dicts (what a ``Describe*`` call returns) and returns
:class:`Finding`s, so every rule is testable without AWS. The describe calls that feed them
live in :mod:`tasks.audit_checks`. A risk the config accepts under ``acknowledge:`` is still
reported, at ``low`` severity, so it stays visible without failing the audit.

Finding ids, one per anti-pattern:

==========================  ========  =====================================================
id                          severity  anti-pattern
==========================  ========  =====================================================
db-single-az                high      the database has no synchronous standby
db-unencrypted              high      database storage not encrypted at rest
db-no-deletion-protection   medium    the database can be deleted by one API call
db-no-backups               high      no automated backups (no PITR, no replica source)
data-port-open-world        high      a database/cache port open to 0.0.0.0/0 or ::/0
data-port-broad-cidr        high      a database/cache port open to a whole network range
nat-shared                  high      one NAT gateway carries the egress of several AZs
alb-stickiness              high      sticky sessions: the app tier keeps state
http-no-redirect            medium    an HTTP listener that serves instead of redirecting
plain-env-secret            high      a credential as a plain task-definition env value
cache-no-failover           high      cache without automatic failover (or no replica)
cache-unencrypted           medium    cache not encrypted at rest
cache-not-global            medium    a warm standby's session cache is not a Global
                                      Datastore: DR starts empty (high when the config
                                      asks for one)
queue-no-dlq                medium    a work queue without a dead-letter queue
dlq-retention-short         medium    a DLQ that does not outlive its source queue
dr-replica-missing          high      no database replica in the DR region
==========================  ========  =====================================================
"""

from __future__ import annotations

import ipaddress
import json
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel

from configs.models import SECRET_LIKE

Severity = Literal["high", "medium", "low"]


SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


# A source wider than this many hosts is "a whole network", not one peer (a /24 or narrower
# is taken as a deliberate, small range such as a bastion subnet).
BROAD_PREFIX_V4 = 24


BROAD_PREFIX_V6 = 64


class Finding(BaseModel):
    id: str
    severity: Severity
    resource: str
    region: str = ""
    message: str


def finding(
    id: str,
    severity: Severity,
    resource: str,
    region: str,
    message: str,
    *,
    acknowledged: bool = False,
) -> Finding:
    if acknowledged:
        return Finding(
            id=id,
            severity="low",
            resource=resource,
            region=region,
            message=f"{message} (accepted under acknowledge:)",
        )
    return Finding(id=id, severity=severity, resource=resource, region=region, message=message)


def ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.id, f.resource))


# -- database ----------------------------------------------------------------------------------
def database_findings(
    db: dict[str, Any], region: str, *, single_az_ok: bool = False
) -> list[Finding]:
    """Rules for one writer: a ``DescribeDBInstances`` or ``DescribeDBClusters`` entry."""
    cluster = "DBClusterIdentifier" in db and "DBInstanceIdentifier" not in db
    ident = db.get("DBClusterIdentifier") if cluster else db.get("DBInstanceIdentifier")
    resource = f"rds:{'cluster' if cluster else 'instance'} {ident}"
    out: list[Finding] = []
    # A cluster's MultiAZ says whether its instances span AZs. Its AvailabilityZones are where
    # instances *can* be created (every Aurora cluster lists three): a writer alone is
    # single-AZ however many it lists.
    if not db.get("MultiAZ"):
        out.append(
            finding(
                "db-single-az",
                "high",
                resource,
                region,
                "single-AZ: a patch, reboot or host failure is a full outage",
                acknowledged=single_az_ok,
            )
        )
    if not db.get("StorageEncrypted"):
        out.append(finding("db-unencrypted", "high", resource, region, "storage not encrypted"))
    if not db.get("DeletionProtection"):
        out.append(
            finding(
                "db-no-deletion-protection", "medium", resource, region, "deletion protection off"
            )
        )
    if not db.get("BackupRetentionPeriod"):
        out.append(
            finding(
                "db-no-backups",
                "high",
                resource,
                region,
                "automated backups off (BackupRetentionPeriod 0): no point-in-time recovery",
            )
        )
    return out


def in_global_database(
    primary_arn: str, dr_dbs: list[dict[str, Any]], global_clusters: list[dict[str, Any]]
) -> bool:
    """An Aurora global database whose writer is the primary and which has a secondary (a
    reader) among ``dr_dbs``. A global secondary names no ``ReplicationSourceIdentifier``:
    its global cluster's members are where the replication shows."""
    dr_arns = {db.get("DBClusterArn") for db in dr_dbs} - {None}
    for group in global_clusters:
        members = group.get("GlobalClusterMembers") or []
        writes = any(m.get("DBClusterArn") == primary_arn and m.get("IsWriter") for m in members)
        follows = any(m.get("DBClusterArn") in dr_arns and not m.get("IsWriter") for m in members)
        if writes and follows:
            return True
    return False


def dr_replica_findings(
    primary_arn: str,
    primary_id: str,
    dr_dbs: list[dict[str, Any]],
    dr_region: str,
    global_clusters: list[dict[str, Any]] | None = None,
) -> list[Finding]:
    """The DR region must hold a replica of the primary: a read replica of the instance, a
    cluster replicating from the cluster, or the secondary of the cluster's global database
    (``global_clusters``: ``DescribeGlobalClusters`` entries)."""
    for db in dr_dbs:
        source = db.get("ReadReplicaSourceDBInstanceIdentifier") or db.get(
            "ReplicationSourceIdentifier"
        )
        if source in (primary_arn, primary_id):
            return []
    if in_global_database(primary_arn, dr_dbs, global_clusters or []):
        return []
    return [
        finding(
            "dr-replica-missing",
            "high",
            f"rds {primary_id}",
            dr_region,
            f"no replica of {primary_id} in {dr_region}: a regional outage loses the data tier",
        )
    ]


# -- network -----------------------------------------------------------------------------------
def _covers(perm: dict[str, Any], port: int) -> bool:
    if perm.get("IpProtocol") in ("-1", -1, "all"):
        return True
    if perm.get("IpProtocol") not in ("tcp", "6", 6):
        return False
    low, high = perm.get("FromPort"), perm.get("ToPort")
    return low is not None and high is not None and int(low) <= port <= int(high)


def _sources(perm: dict[str, Any]) -> list[str]:
    return [r["CidrIp"] for r in perm.get("IpRanges") or [] if r.get("CidrIp")] + [
        r["CidrIpv6"] for r in perm.get("Ipv6Ranges") or [] if r.get("CidrIpv6")
    ]


def security_group_findings(
    group: dict[str, Any],
    data_ports: dict[int, str],
    region: str,
    *,
    allowed_cidrs: list[str] | None = None,
    acknowledged: bool = False,
) -> list[Finding]:
    """Database/cache ports reachable from the internet or a whole network range.

    ``data_ports`` maps port → what listens there. ``allowed_cidrs`` (the config's
    ``network.data_ingress_cidrs``) are accepted sources. One finding per group and kind.
    """
    allowed = {str(ipaddress.ip_network(c, strict=False)) for c in allowed_cidrs or []}
    world: dict[str, set[str]] = defaultdict(set)
    broad: dict[str, set[str]] = defaultdict(set)
    for perm in group.get("IpPermissions") or []:
        hit = [name for port, name in data_ports.items() if _covers(perm, port)]
        if not hit:
            continue
        for cidr in _sources(perm):
            net = ipaddress.ip_network(cidr, strict=False)
            if str(net) in allowed:
                continue
            if net.prefixlen == 0:
                world[str(net)].update(hit)
            elif net.prefixlen < (BROAD_PREFIX_V4 if net.version == 4 else BROAD_PREFIX_V6):
                broad[str(net)].update(hit)
    resource = f"ec2:security-group {group.get('GroupId')} ({group.get('GroupName')})"
    out: list[Finding] = []
    if world:
        what = "; ".join(f"{', '.join(sorted(v))} from {k}" for k, v in sorted(world.items()))
        out.append(
            finding(
                "data-port-open-world",
                "high",
                resource,
                region,
                f"data tier open to the internet: {what}",
                acknowledged=acknowledged,
            )
        )
    if broad:
        what = "; ".join(f"{', '.join(sorted(v))} from {k}" for k, v in sorted(broad.items()))
        out.append(
            finding(
                "data-port-broad-cidr",
                "high",
                resource,
                region,
                f"data tier open to a whole range (chain security groups instead): {what}",
                acknowledged=acknowledged,
            )
        )
    return out


def nat_findings(
    subnets: list[dict[str, Any]],
    route_tables: list[dict[str, Any]],
    region: str,
    *,
    acknowledged: bool = False,
) -> list[Finding]:
    """A NAT gateway that is the default route of subnets in more than one AZ."""
    main = next(
        (t for t in route_tables if any(a.get("Main") for a in t.get("Associations") or [])), None
    )
    table_of = {
        a["SubnetId"]: t
        for t in route_tables
        for a in t.get("Associations") or []
        if a.get("SubnetId")
    }
    served: dict[str, set[str]] = defaultdict(set)
    for subnet in subnets:
        table = table_of.get(subnet["SubnetId"], main)
        for route in (table or {}).get("Routes") or []:
            if route.get("DestinationCidrBlock") == "0.0.0.0/0" and route.get("NatGatewayId"):
                served[route["NatGatewayId"]].add(subnet["AvailabilityZone"])
    return [
        finding(
            "nat-shared",
            "high",
            f"ec2:nat-gateway {nat}",
            region,
            f"one NAT carries the egress of {len(azs)} AZs ({', '.join(sorted(azs))}): "
            "if its AZ fails, every AZ loses egress",
            acknowledged=acknowledged,
        )
        for nat, azs in sorted(served.items())
        if len(azs) > 1
    ]


# -- load balancer -----------------------------------------------------------------------------
def target_group_findings(
    tg: dict[str, Any], attributes: list[dict[str, str]], region: str
) -> list[Finding]:
    attrs = {a["Key"]: a.get("Value") for a in attributes}
    if str(attrs.get("stickiness.enabled", "false")).lower() != "true":
        return []
    return [
        finding(
            "alb-stickiness",
            "high",
            f"elbv2:target-group {tg.get('TargetGroupName')}",
            region,
            "sticky sessions on: a task that goes away takes its users' sessions with it",
        )
    ]


def listener_findings(listener: dict[str, Any], region: str) -> list[Finding]:
    if listener.get("Protocol") != "HTTP":
        return []
    for action in listener.get("DefaultActions") or []:
        redirect = action.get("RedirectConfig") or {}
        if action.get("Type") == "redirect" and redirect.get("Protocol") == "HTTPS":
            return []
    return [
        finding(
            "http-no-redirect",
            "medium",
            f"elbv2:listener {listener.get('ListenerArn')}",
            region,
            f"HTTP listener on port {listener.get('Port')} serves traffic instead of "
            "redirecting to HTTPS",
        )
    ]


# -- app tier ----------------------------------------------------------------------------------
def task_definition_findings(
    td: dict[str, Any], region: str, *, accepted: list[str] | None = None
) -> list[Finding]:
    """Plain env values whose name looks like a credential (``secrets`` are fine)."""
    out: list[Finding] = []
    family = f"{td.get('family')}:{td.get('revision')}"
    for container in td.get("containerDefinitions") or []:
        for env in container.get("environment") or []:
            name = env.get("name", "")
            if SECRET_LIKE.search(name) and env.get("value"):
                out.append(
                    finding(
                        "plain-env-secret",
                        "high",
                        f"ecs:task-definition {family}",
                        region,
                        f"container {container.get('name')}: {name} is a plain environment "
                        "value; use secrets (Secrets Manager) or IAM auth",
                        acknowledged=name in (accepted or []),
                    )
                )
    return out


# -- cache -------------------------------------------------------------------------------------
def cache_findings(
    group: dict[str, Any],
    region: str,
    *,
    no_failover_ok: bool = False,
    warm_standby: bool = False,
    wants_global: bool = False,
) -> list[Finding]:
    ident = group.get("ReplicationGroupId")
    resource = f"elasticache:replication-group {ident}"
    out: list[Finding] = []
    failover = group.get("AutomaticFailover") in ("enabled", "enabling")
    if not failover or len(group.get("MemberClusters") or []) < 2:
        out.append(
            finding(
                "cache-no-failover",
                "high",
                resource,
                region,
                "no automatic failover: a node loss is an outage and a thundering herd on RDS",
                acknowledged=no_failover_ok,
            )
        )
    if not group.get("AtRestEncryptionEnabled"):
        out.append(
            finding("cache-unencrypted", "medium", resource, region, "not encrypted at rest")
        )
    info = group.get("GlobalReplicationGroupInfo") or {}
    if warm_standby and not info.get("GlobalReplicationGroupId"):
        fix = (
            "provision adds it"
            if wants_global
            else "set cache.global_datastore: true and provision"
        )
        out.append(
            finding(
                "cache-not-global",
                "high" if wants_global else "medium",
                resource,
                region,
                "not a Global Datastore: after a failover the warm standby starts with an empty "
                f"session cache (every user signed out); {fix}",
            )
        )
    return out


# -- queues ------------------------------------------------------------------------------------
def queue_findings(
    name: str,
    attributes: dict[str, str],
    dlq_attributes: dict[str, str] | None,
    region: str,
) -> list[Finding]:
    """A work queue needs a DLQ, and the DLQ must keep messages longer than the source does."""
    resource = f"sqs:queue {name}"
    policy = attributes.get("RedrivePolicy")
    if not policy:
        return [
            finding(
                "queue-no-dlq",
                "medium",
                resource,
                region,
                "no dead-letter queue: a poison message is retried until it expires",
            )
        ]
    if dlq_attributes is None:
        target = json.loads(policy).get("deadLetterTargetArn", "?")
        return [
            finding(
                "queue-no-dlq",
                "medium",
                resource,
                region,
                f"its dead-letter queue {target} does not exist",
            )
        ]
    source = int(attributes.get("MessageRetentionPeriod", "345600"))
    kept = int(dlq_attributes.get("MessageRetentionPeriod", "345600"))
    if kept <= source:
        return [
            finding(
                "dlq-retention-short",
                "medium",
                resource,
                region,
                f"its DLQ keeps messages {kept}s, not longer than the queue's {source}s: "
                "dead letters can expire before anyone redrives them",
            )
        ]
    return []
