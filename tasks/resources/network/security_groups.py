"""Network layer, security groups chained by reference: internet → ALB → app → data.

Each tier admits only the tier in front of it, named by group id (never a CIDR), so a task
that moves subnets keeps its access and nothing else gains it:

* alb: 443 (and 80, which only redirects) from anywhere, or from CloudFront's origin-facing
  prefix list when CloudFront is on; out only to the app group on the app port.
* app: the app port from the alb group; out to the data group on the database and cache ports
  and 443 anywhere (ECR, Secrets Manager, CloudWatch through the NAT or the endpoints).
* data: the database and cache ports from the app group (plus ``data_ingress_cidrs``); no way out.
* endpoints: 443 from the app group.

Rules are converged exactly: a missing rule is added back, a rule nobody asked for (the
default allow-all egress included) is revoked.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from configs.models import Config
from configs.names import Role, StackNames, names_for
from tasks.core.changes import (
    Action,
    Change,
    StepResult,
    created,
    is_placeholder,
    placeholder,
    result,
)
from tasks.core.steps import step
from tasks.resources.network.vpc import (
    SG_ROLES,
    ec2_client,
    ec2_tags,
    find_security_groups,
    fix_tags,
    tag_spec,
)

CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"


ANYWHERE = "0.0.0.0/0"


class Rule(NamedTuple):
    """One permission, in the shape that compares: peer is ``sg:<id>``, ``cidr:…`` or ``pl:…``."""

    egress: bool
    protocol: str
    from_port: int
    to_port: int
    peer: str

    def label(self, groups: dict[str, str]) -> str:
        names = {f"sg:{v}": f"sg:{k}" for k, v in groups.items()}
        ports = "all" if self.protocol == "-1" else f"{self.protocol}/{self.from_port}"
        if self.to_port != self.from_port:
            ports += f"-{self.to_port}"
        arrow = "to" if self.egress else "from"
        return f"{'egress' if self.egress else 'ingress'} {ports} {arrow} {names.get(self.peer, self.peer)}"


def tcp(port: int, peer: str, *, egress: bool = False) -> Rule:
    return Rule(egress, "tcp", port, port, peer)


def desired_rules(
    cfg: Config, groups: dict[str, str], cloudfront_pl: str | None
) -> dict[str, set[Rule]]:
    """Every group's exact rule set. Pure."""
    sg = {k: f"sg:{v}" for k, v in groups.items()}
    web_port = int(cfg.services.web.port or 8080)
    front = f"pl:{cloudfront_pl}" if cloudfront_pl else f"cidr:{ANYWHERE}"
    data_ports = [cfg.database.port] + ([cfg.cache.port] if cfg.cache else [])
    return {
        "alb": {tcp(443, front), tcp(80, front), tcp(web_port, sg["app"], egress=True)},
        "app": {
            tcp(web_port, sg["alb"]),
            tcp(443, f"cidr:{ANYWHERE}", egress=True),
            *(tcp(p, sg["data"], egress=True) for p in data_ports),
        },
        "data": {
            *(tcp(p, sg["app"]) for p in data_ports),
            *(tcp(cfg.database.port, f"cidr:{c}") for c in cfg.network.data_ingress_cidrs),
        },
        "endpoints": {tcp(443, sg["app"])},
    }


def rules_of(group: dict[str, Any]) -> set[Rule]:
    """A described group's permissions as :class:`Rule` s (one per peer)."""
    out: set[Rule] = set()
    for egress, key in ((False, "IpPermissions"), (True, "IpPermissionsEgress")):
        for perm in group.get(key, []):
            proto = str(perm.get("IpProtocol", "-1"))
            lo = int(perm.get("FromPort", -1)) if proto != "-1" else -1
            hi = int(perm.get("ToPort", -1)) if proto != "-1" else -1
            peers = [f"cidr:{r['CidrIp']}" for r in perm.get("IpRanges", [])]
            peers += [f"cidr6:{r['CidrIpv6']}" for r in perm.get("Ipv6Ranges", [])]
            peers += [f"sg:{r['GroupId']}" for r in perm.get("UserIdGroupPairs", [])]
            peers += [f"pl:{r['PrefixListId']}" for r in perm.get("PrefixListIds", [])]
            out |= {Rule(egress, proto, lo, hi, p) for p in peers}
    return out


def permission(rule: Rule) -> dict[str, Any]:
    """The ``IpPermissions`` entry that grants or revokes exactly ``rule``."""
    perm: dict[str, Any] = {"IpProtocol": rule.protocol}
    if rule.protocol != "-1":
        perm |= {"FromPort": rule.from_port, "ToPort": rule.to_port}
    kind, _, value = rule.peer.partition(":")
    perm |= {
        "cidr": {"IpRanges": [{"CidrIp": value}]},
        "cidr6": {"Ipv6Ranges": [{"CidrIpv6": value}]},
        "sg": {"UserIdGroupPairs": [{"GroupId": value}]},
        "pl": {"PrefixListIds": [{"PrefixListId": value}]},
    }[kind]
    return perm


def cloudfront_prefix_list(ec2: Any) -> str | None:
    lists = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [CLOUDFRONT_PREFIX_LIST]}]
    )["PrefixLists"]
    return lists[0]["PrefixListId"] if lists else None


@step("ensure {role} security groups")
def ensure_security_groups(
    cfg: Config, role: Role, vpc_id: str, *, dry_run: bool = False
) -> StepResult:
    """The four groups (their rules are the next step's: what needs only a group's id, the load
    balancer, the database, the endpoints, does not wait for them)."""
    names = names_for(cfg, role)
    region = names.region
    ec2 = ec2_client(cfg, role)
    found = find_security_groups(ec2, names, vpc_id)
    changes: list[Change] = []
    ids: dict[str, str] = {}
    for tier in SG_ROLES:
        name = names.security_group(tier)  # type: ignore[arg-type]
        tags = ec2_tags(names, f"network-{tier}", name)
        group = found.get(tier)
        if group is not None:
            ids[tier] = group["GroupId"]
            changes += fix_tags(
                ec2, ids[tier], "ec2:security-group", name, region, tags, group.get("Tags"), dry_run
            )
            continue
        changes.append(created("ec2:security-group", name, region, {"tier": tier}))
        if dry_run:
            ids[tier] = placeholder("ec2:security-group", name)
            continue
        ids[tier] = ec2.create_security_group(
            GroupName=name,
            Description=f"{names.stem} {tier} tier",
            VpcId=vpc_id,
            TagSpecifications=tag_spec("security-group", tags),
        )["GroupId"]
    return StepResult(changes=changes, outputs={"security_groups": ids}, applied=not dry_run)


@step("ensure {role} security group rules")
def ensure_security_group_rules(
    cfg: Config, role: Role, ids: dict[str, str], *, dry_run: bool = False
) -> StepResult:
    """Each group's exact rules (they reference each other's ids); a new group's allow-all
    egress, which AWS adds, is revoked like any drift."""
    names = names_for(cfg, role)
    ec2 = ec2_client(cfg, role)
    real = [i for i in ids.values() if not is_placeholder(i)]
    by_id = (
        {g["GroupId"]: g for g in ec2.describe_security_groups(GroupIds=real)["SecurityGroups"]}
        if real
        else {}
    )
    pl = cloudfront_prefix_list(ec2) if cfg.edge and cfg.edge.cloudfront else None
    want = desired_rules(cfg, ids, pl)
    changes: list[Change] = []
    for tier in SG_ROLES:
        changes += _converge_rules(
            ec2, names, tier, ids, by_id.get(ids[tier], {}), want[tier], dry_run
        )
    return result(changes, dry_run)


def _converge_rules(
    ec2: Any,
    names: StackNames,
    tier: str,
    ids: dict[str, str],
    group: dict[str, Any],
    want: set[Rule],
    dry_run: bool,
) -> list[Change]:
    have = rules_of(group)
    add, drop = sorted(want - have), sorted(have - want)
    name = names.security_group(tier)  # type: ignore[arg-type]
    changes = [
        Change(
            resource="ec2:security-group-rule",
            name=f"{name} {r.label(ids)}",
            action=Action.CREATE,
            region=names.region,
            after={"rule": r.label(ids)},
        )
        for r in add
    ] + [
        Change(
            resource="ec2:security-group-rule",
            name=f"{name} {r.label(ids)}",
            action=Action.DELETE,
            region=names.region,
            before={"rule": r.label(ids)},
        )
        for r in drop
    ]
    if dry_run or not changes:
        return changes
    group_id = ids[tier]
    for egress, rules, verb in ((False, add, "authorize"), (True, add, "authorize"),
                                (False, drop, "revoke"), (True, drop, "revoke")):  # fmt: skip
        perms = [permission(r) for r in rules if r.egress == egress]
        if perms:
            method = f"{verb}_security_group_{'egress' if egress else 'ingress'}"
            getattr(ec2, method)(GroupId=group_id, IpPermissions=perms)
    return changes
