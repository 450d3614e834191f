"""Calls moto does not implement, checked against AWS's request shapes with botocore's Stubber:
Aurora global-database failover and replica-cluster promotion, ARC routing controls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from configs.models import Config
from tasks.runbooks.failover.aurora import promote_aurora, switchover_aurora
from tasks.runbooks.failover.traffic_switch import arc_states, flip_arc

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:rds:us-west-2:123456789012:cluster:shop-sandbox-aurora-dr"
GLOBAL = "shop-sandbox-global"


def aurora_cfg(**dns: Any) -> Config:
    import yaml

    data = yaml.safe_load((ROOT / "configs" / "sandbox.yaml").read_text())
    data["database"]["engine"] = "aurora-postgresql"
    data["database"]["instance_class"] = "db.r6g.large"
    if dns:
        data["dns"] = dns
    from configs.loader import parse_config

    return parse_config(data, source="test")


def rds() -> Any:
    return boto3.client(
        "rds", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )


def cluster(**extra: Any) -> dict[str, Any]:
    return {
        "DBClusters": [
            {
                "DBClusterIdentifier": "shop-sandbox-aurora-dr",
                "DBClusterArn": ARN,
                "Status": "available",
                **extra,
            }
        ]
    }


def members(dr_writes: bool) -> dict[str, Any]:
    return {
        "GlobalClusters": [
            {
                "GlobalClusterIdentifier": GLOBAL,
                "GlobalClusterMembers": [
                    {"DBClusterArn": ARN, "IsWriter": dr_writes},
                    {
                        "DBClusterArn": ARN.replace("us-west-2", "us-east-1").replace("-dr", ""),
                        "IsWriter": not dr_writes,
                    },
                ],
            }
        ]
    }


def test_a_global_secondary_is_failed_over_with_data_loss_allowed_and_waited_for() -> None:
    client = rds()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_db_clusters",
            cluster(GlobalClusterIdentifier=GLOBAL),
            {"DBClusterIdentifier": "shop-sandbox-aurora-dr"},
        )
        stub.add_response(
            "describe_global_clusters", members(False), {"GlobalClusterIdentifier": GLOBAL}
        )
        stub.add_response(
            "failover_global_cluster",
            {},
            {
                "GlobalClusterIdentifier": GLOBAL,
                "TargetDbClusterIdentifier": ARN,
                "AllowDataLoss": True,
            },
        )
        stub.add_response(
            "describe_global_clusters", members(True), {"GlobalClusterIdentifier": GLOBAL}
        )
        result = promote_aurora(aurora_cfg(), "dr", rds=client, timeout_s=5)
        stub.assert_no_pending_responses()
    assert result.changed and "failed over to us-west-2" in result.detail


def test_a_planned_move_of_a_global_database_is_a_switchover_without_data_loss() -> None:
    """SwitchoverGlobalCluster (no AllowDataLoss: AWS synchronises first), then waited for
    until the DR cluster is the writer."""
    client = rds()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_db_clusters",
            cluster(GlobalClusterIdentifier=GLOBAL),
            {"DBClusterIdentifier": "shop-sandbox-aurora-dr"},
        )
        stub.add_response(
            "describe_global_clusters", members(False), {"GlobalClusterIdentifier": GLOBAL}
        )
        stub.add_response(
            "switchover_global_cluster",
            {},
            {"GlobalClusterIdentifier": GLOBAL, "TargetDbClusterIdentifier": ARN},
        )
        stub.add_response("describe_global_clusters", members(False))  # still switching
        stub.add_response("describe_global_clusters", members(True))
        result = switchover_aurora(aurora_cfg(), "dr", rds=client, timeout_s=5)
        stub.assert_no_pending_responses()
    assert result.changed and "switched over to us-west-2" in result.detail
    assert result.outputs["rpo_verified"] is True


def test_a_planned_move_of_a_replica_cluster_promotes_it() -> None:
    client = rds()
    source = "arn:aws:rds:us-east-1:123456789012:cluster:shop-sandbox-aurora"
    with Stubber(client) as stub:
        stub.add_response("describe_db_clusters", cluster(ReplicationSourceIdentifier=source))
        stub.add_response("describe_db_clusters", cluster(ReplicationSourceIdentifier=source))
        stub.add_response(
            "promote_read_replica_db_cluster", {}, {"DBClusterIdentifier": "shop-sandbox-aurora-dr"}
        )
        stub.add_response("describe_db_clusters", cluster())
        result = switchover_aurora(aurora_cfg(), "dr", rds=client, timeout_s=5)
        stub.assert_no_pending_responses()
    assert result.changed and "promoted" in result.detail


def test_a_global_secondary_that_already_writes_is_left_alone() -> None:
    client = rds()
    with Stubber(client) as stub:
        stub.add_response("describe_db_clusters", cluster(GlobalClusterIdentifier=GLOBAL))
        stub.add_response("describe_global_clusters", members(True))
        result = promote_aurora(aurora_cfg(), "dr", rds=client, timeout_s=5)
        stub.assert_no_pending_responses()
    assert not result.changed and "already writes" in result.detail


def test_a_replica_cluster_is_promoted_and_waited_for() -> None:
    client = rds()
    source = "arn:aws:rds:us-east-1:123456789012:cluster:shop-sandbox-aurora"
    with Stubber(client) as stub:
        stub.add_response("describe_db_clusters", cluster(ReplicationSourceIdentifier=source))
        stub.add_response(
            "promote_read_replica_db_cluster", {}, {"DBClusterIdentifier": "shop-sandbox-aurora-dr"}
        )
        stub.add_response("describe_db_clusters", cluster(Status="promoting"))
        stub.add_response("describe_db_clusters", cluster())
        result = promote_aurora(aurora_cfg(), "dr", rds=client, timeout_s=5)
        stub.assert_no_pending_responses()
    assert result.changed


ARC = {
    "cluster_arn": "arn:aws:route53-recovery-control::123456789012:cluster/c1",
    "cluster_endpoints": [
        "https://host-aaa.us-east-1.example.aws/v1",
        "https://host-bbb.us-west-2.example.aws/v1",
    ],
    "primary_control_arn": "arn:aws:route53-recovery-control::123456789012:controlpanel/p/routingcontrol/primary",
    "dr_control_arn": "arn:aws:route53-recovery-control::123456789012:controlpanel/p/routingcontrol/dr",
}


def test_arc_switches_through_the_first_endpoint_that_answers() -> None:
    cfg = aurora_cfg(strategy="arc", arc=ARC)
    clients: dict[str, Any] = {}
    stubs = []
    for endpoint in ARC["cluster_endpoints"]:
        c = boto3.client(
            "route53-recovery-cluster",
            region_name="us-west-2",
            endpoint_url=endpoint,
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        stub = Stubber(c)
        clients[endpoint] = c
        stubs.append(stub)
    states = arc_states("dr", cfg.dns.arc)
    assert states[0] == {"RoutingControlArn": ARC["dr_control_arn"], "RoutingControlState": "On"}
    stubs[0].add_client_error(
        "update_routing_control_states",
        "EndpointTemporarilyUnavailableException",
        http_status_code=503,
    )
    stubs[1].add_response(
        "update_routing_control_states", {}, {"UpdateRoutingControlStateEntries": states}
    )
    for s in states:
        stubs[1].add_response(
            "get_routing_control_state",
            {
                "RoutingControlArn": s["RoutingControlArn"],
                "RoutingControlState": s["RoutingControlState"],
            },
            {"RoutingControlArn": s["RoutingControlArn"]},
        )
    for s in stubs:
        s.activate()
    result = flip_arc(cfg, "dr", client_for=clients.__getitem__)
    for s in stubs:
        s.assert_no_pending_responses()
    assert result.changed and "host-bbb" in result.detail


def test_arc_read_back_in_the_wrong_state_fails() -> None:
    from configs.errors import StepFailed

    cfg = aurora_cfg(strategy="arc", arc=ARC)
    c = boto3.client(
        "route53-recovery-cluster",
        region_name="us-west-2",
        endpoint_url=ARC["cluster_endpoints"][0],
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with Stubber(c) as stub:
        states = arc_states("dr", cfg.dns.arc)
        stub.add_response("update_routing_control_states", {})
        for s in states:
            stub.add_response(
                "get_routing_control_state",
                {"RoutingControlArn": s["RoutingControlArn"], "RoutingControlState": "Off"},
            )
        with pytest.raises(StepFailed, match="wrong state"):
            flip_arc(cfg, "dr", client_for=lambda _e: c)


def test_arc_clients_come_from_the_factory_with_its_retries_and_account_guard() -> None:
    from tasks.runbooks.failover.traffic_switch import arc_client

    cfg = aurora_cfg(strategy="arc", arc=ARC)
    endpoint = ARC["cluster_endpoints"][1]
    client = arc_client(cfg, endpoint)
    assert client.meta.endpoint_url.startswith("https://host-bbb.us-west-2.example.aws")
    assert client.meta.region_name == "us-west-2"
    assert "_make_api_call" in vars(client)  # the retry / guard / event hook is installed
    assert arc_client(cfg, endpoint) is client


def test_arc_readiness_reads_both_controls_and_fails_when_no_endpoint_answers() -> None:
    from tasks.runbooks.failover.readiness import check_arc

    cfg = aurora_cfg(strategy="arc", arc=ARC)
    c = boto3.client(
        "route53-recovery-cluster",
        region_name="us-west-2",
        endpoint_url=ARC["cluster_endpoints"][0],
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with Stubber(c) as stub:
        for control, state in ((ARC["primary_control_arn"], "On"), (ARC["dr_control_arn"], "Off")):
            stub.add_response(
                "get_routing_control_state",
                {"RoutingControlArn": control, "RoutingControlState": state},
                {"RoutingControlArn": control},
            )
        ok = check_arc(cfg, client_for=lambda _e: c)
    assert ok.status == "pass" and "On: primary" in ok.detail
    with Stubber(c) as stub:
        for _ in ARC["cluster_endpoints"]:
            stub.add_client_error(
                "get_routing_control_state", "InternalServerException", http_status_code=500
            )
        down = check_arc(cfg, client_for=lambda _e: c)
    assert down.status == "fail" and "no ARC cluster endpoint answered" in down.detail
