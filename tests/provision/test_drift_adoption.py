"""Drift is planned exactly and repaired; a stack built elsewhere is adopted, not rebuilt."""

from __future__ import annotations

from typing import Any

import pytest

from configs.models import Config
from configs.names import names_for
from flows.provision import provision
from sandbox.testing import plain
from tests.support import watch

CONFIG = "configs/sandbox.yaml"


def _data_group(cfg: Config) -> dict[str, Any]:
    ec2 = plain(cfg, "ec2")
    return ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [names_for(cfg).security_group("data")]}]
    )["SecurityGroups"][0]


def _tg(cfg: Config) -> str:
    elb = plain(cfg, "elbv2")
    return str(
        elb.describe_target_groups(Names=[names_for(cfg).target_group])["TargetGroups"][0][
            "TargetGroupArn"
        ]
    )


def _delay(cfg: Config) -> str:
    attrs = plain(cfg, "elbv2").describe_target_group_attributes(TargetGroupArn=_tg(cfg))
    return next(
        a["Value"]
        for a in attrs["Attributes"]
        if a["Key"] == "deregistration_delay.timeout_seconds"
    )


def test_drift_is_planned_exactly_and_put_back(account: Config, prefect_harness: None) -> None:
    cfg = account
    provision(config=CONFIG, region="primary")
    healthy_delay = _delay(cfg)
    group = _data_group(cfg)
    rule = next(p for p in group["IpPermissions"] if p["FromPort"] == cfg.database.port)
    plain(cfg, "ec2").revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[rule])
    plain(cfg, "elbv2").modify_target_group_attributes(
        TargetGroupArn=_tg(cfg),
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}],
    )
    calls = watch(cfg)
    plan = provision(config=CONFIG, plan=True, region="primary")
    assert calls.seen == []
    changes = plan["changes"]
    assert len(changes) == 2, changes
    kinds = sorted(c["resource"] for c in changes)
    assert kinds[0] == "ec2:security-group-rule" and kinds[1].startswith("elbv2:target-group")
    assert any(f"tcp/{cfg.database.port}" in c["name"] for c in changes)

    fixed = provision(config=CONFIG, region="primary")
    assert len(fixed["changes"]) == 2
    ports = [p["FromPort"] for p in _data_group(cfg)["IpPermissions"]]
    assert cfg.database.port in ports
    assert _delay(cfg) == healthy_delay
    calls.reset()
    assert provision(config=CONFIG, plan=True, region="primary")["changes"] == []


def test_bad_region_is_refused_before_any_call(account: Config, prefect_harness: None) -> None:
    from prefect.exceptions import ParameterTypeError

    from configs.errors import BadInput

    calls = watch(account)
    # ``region`` is a choice in the flow's signature: Prefect refuses it before the body runs
    # (the CLI maps that refusal to exit 2, like a BadInput).
    with pytest.raises((BadInput, ParameterTypeError)):
        provision(config=CONFIG, region="moon")
    assert calls.seen == []
