"""``destroy`` of an Aurora stack: the protected clusters refuse it, then with
``--disable-deletion-protection`` the DR secondary leaves the global database and goes, the
primary's instances, the global cluster and the cluster go (a final cluster snapshot kept), and a
second destroy changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from configs.errors import Refused
from configs.models import Config
from configs.names import names_for
from flows.destroy import destroy
from flows.provision import provision
from sandbox.testing import plain
from tests.provision.test_aurora import aurora_yaml
from tests.support import fresh_account, watch


def _clusters(cfg: Config, role: str) -> list[str]:
    rds = plain(cfg, "rds", names_for(cfg, role).region)  # type: ignore[arg-type]
    return [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]]


def _instances(cfg: Config, role: str) -> list[str]:
    rds = plain(cfg, "rds", names_for(cfg, role).region)  # type: ignore[arg-type]
    return [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]]


def test_an_aurora_stack_is_destroyed_with_a_final_cluster_snapshot(
    aws_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    moto_as_aws: pytest.MonkeyPatch,
    prefect_harness: None,
    tmp_path: Any,
) -> None:
    path = str(aurora_yaml(tmp_path))
    cfg = fresh_account(aws_endpoint, monkeypatch, path)
    assert provision(config=path)["outcome"] == "succeeded"
    primary, dr = names_for(cfg, "primary"), names_for(cfg, "dr")
    assert _clusters(cfg, "primary") == [primary.db_cluster]
    assert _clusters(cfg, "dr") == [dr.db_cluster]

    calls = watch(cfg)
    plan = destroy(config=path, plan=True, disable_deletion_protection=True)
    assert calls.seen == []
    planned = {(c["resource"], c["name"]) for c in plan["changes"] if c["action"] == "delete"}
    for item in (
        ("rds:cluster", primary.db_cluster),
        ("rds:cluster", dr.db_cluster),
        ("rds:cluster-instance", f"{primary.db_cluster}-1"),
        ("rds:cluster-instance", f"{primary.db_cluster}-2"),
        ("rds:cluster-instance", f"{dr.db_cluster}-1"),
        ("rds:global-cluster-member", dr.db_cluster),
        ("rds:global-cluster", "shop-sandbox-global"),
    ):
        assert item in planned, item

    with pytest.raises(Refused) as refused:
        destroy(config=path, yes=True)
    assert f"cluster {primary.db_cluster}" in str(refused.value)
    assert f"cluster {dr.db_cluster}" in str(refused.value)
    assert calls.seen == []

    report = destroy(config=path, yes=True, disable_deletion_protection=True)
    assert report["outcome"] == "succeeded", report.get("error")
    offs = [c["name"] for c in report["changes"] if c["after"] == {"deletion_protection": False}]
    assert primary.db_cluster in offs and dr.db_cluster in offs
    for role in ("primary", "dr"):
        assert _clusters(cfg, role) == []
        assert _instances(cfg, role) == []
    assert plain(cfg, "rds").describe_global_clusters()["GlobalClusters"] == []
    snapshot = report["metrics"]["final_snapshot"]
    assert snapshot.startswith(f"{primary.db_cluster}-final-")
    snap = plain(cfg, "rds").describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)
    assert snap["DBClusterSnapshots"][0]["Status"] == "available"
    assert snap["DBClusterSnapshots"][0]["DBClusterIdentifier"] == primary.db_cluster
    # The DR secondary is not snapshotted: the primary's final snapshot is the copy kept.
    dr_rds = plain(cfg, "rds", dr.region)
    assert dr_rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"] == []

    calls.reset()
    again = destroy(config=path, yes=True)
    assert calls.seen == []
    assert again["outcome"] == "succeeded" and again["changes"] == []
