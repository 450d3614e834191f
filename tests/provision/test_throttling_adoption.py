"""Provision under injected throttling, and adopting a stack someone else built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from configs import load_config
from configs.layout import subnet_plan
from configs.models import Config
from flows.provision import provision
from sandbox.testing import ROOT, Sandbox, plain, web_target_group

CONFIG = "configs/sandbox.yaml"


def test_twenty_percent_throttling_reaches_the_same_end_state(
    account: Config, sandbox: Sandbox, prefect_harness: None
) -> None:
    sandbox.control.set_faults({"kind": "throttle", "rate": 0.2}, seed=20)
    report = provision(config=CONFIG)
    sandbox.control.clear_faults()
    assert report["outcome"] == "succeeded"
    injected = sum(sandbox.control.stats()["faults"].values())
    assert injected > 20, injected
    again = provision(config=CONFIG, plan=True)
    assert again["changes"] == [], again["changes"][:5]


def _legacy_stack(cfg: Config) -> dict[str, Any]:
    """What a Terraform run might have left: other names, same shape."""
    ec2 = plain(cfg, "ec2")
    vpc = ec2.create_vpc(CidrBlock=cfg.network.primary.cidr)["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "legacy-vpc"}])
    subnets = []
    for (tier, az), cidr in subnet_plan(cfg.network.primary).items():
        sid = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"][
            "SubnetId"
        ]
        ec2.create_tags(Resources=[sid], Tags=[{"Key": "Name", "Value": f"tf-{tier}-{az[-1]}"}])
        subnets.append(sid)
    cluster = plain(cfg, "ecs").create_cluster(clusterName="legacy-cluster")["cluster"][
        "clusterArn"
    ]
    tg = web_target_group(cfg, "legacy-tg", vpc)
    return {"vpc": vpc, "subnets": sorted(subnets), "cluster": cluster, "tg": tg}


def test_a_stack_built_elsewhere_is_adopted_not_rebuilt(
    account: Config, prefect_harness: None, tmp_path: Path
) -> None:
    legacy = _legacy_stack(account)
    data = yaml.safe_load((ROOT / CONFIG).read_text())
    data["names"] = {"vpc": "legacy-vpc", "cluster": "legacy-cluster", "target_group": "legacy-tg"}
    path = tmp_path / "adopted.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    report = provision(config=str(path), region="primary")
    assert report["outcome"] == "succeeded"
    actions = {(c["resource"], c["action"]) for c in report["changes"]}
    # The only removals allowed: the allow-all egress AWS puts on every new security group.
    removed = {a for a in actions if a[1] in ("delete", "replace")}
    assert removed <= {("ec2:security-group-rule", "delete")}, removed
    assert not [
        c
        for c in report["changes"]
        if c["resource"] in ("ec2:vpc", "ec2:subnet") and c["action"] == "create"
    ]
    ec2 = plain(cfg, "ec2")
    assert [
        v["VpcId"]
        for v in ec2.describe_vpcs()["Vpcs"]
        if v["CidrBlock"] == cfg.network.primary.cidr
    ] == [legacy["vpc"]]
    in_vpc = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [legacy["vpc"]]}])[
        "Subnets"
    ]
    assert sorted(s["SubnetId"] for s in in_vpc) == legacy["subnets"]
    assert plain(cfg, "ecs").list_clusters()["clusterArns"] == [legacy["cluster"]]
    tgs = plain(cfg, "elbv2").describe_target_groups()["TargetGroups"]
    assert [t["TargetGroupArn"] for t in tgs] == [legacy["tg"]]
    again = provision(config=str(path), region="primary", plan=True)
    assert again["changes"] == [], again["changes"][:5]
