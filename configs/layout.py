"""Address plan: which CIDR each subnet tier gets in each AZ. Pure and deterministic.

The VPC block is cut into four equal quarters (public, app, data, one spare for growth); each
quarter is cut into eight subnets, one per AZ index, so up to six AZs fit with room to spare.
"""

from __future__ import annotations

import ipaddress

from configs.models import RegionNetwork
from configs.names import TIERS, Tier


def subnet_cidr(net: RegionNetwork, tier: Tier, az_index: int) -> str:
    vpc = ipaddress.IPv4Network(net.cidr)
    quarter = list(vpc.subnets(prefixlen_diff=2))[TIERS.index(tier)]
    return str(list(quarter.subnets(prefixlen_diff=3))[az_index])


def subnet_plan(net: RegionNetwork) -> dict[tuple[Tier, str], str]:
    """``{(tier, az): cidr}`` for every tier in every AZ of ``net``."""
    return {(tier, az): subnet_cidr(net, tier, i) for tier in TIERS for i, az in enumerate(net.azs)}
