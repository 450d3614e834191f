"""End to end, the Aurora path of the audit and the AZ game day (``database.engine:
aurora-postgresql``): one Aurora stack provisioned for the module, read back with plain boto3.

The tests that break the stack on purpose (a reader deleted, deletion protection off, the DR
cluster taken out of the global database) come last, in file order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from cli.main import app
from configs.models import Config
from configs.names import names_for
from flows.audit import audit
from flows.drills import game_day
from flows.provision import provision
from sandbox.control import SandboxControl
from sandbox.testing import TEST_TIMINGS, plain
from tasks.resources.database.lookup import global_cluster_id
from tasks.runbooks.drills import game_day as gameday
from tests.provision.test_aurora import aurora_yaml
from tests.support import fresh_account, watch

FAILOVER = "rds:FailoverDBCluster"


@pytest.fixture(scope="module")
def aurora(
    aws_endpoint: str,
    moto_as_aws: pytest.MonkeyPatch,
    prefect_harness: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Config, str]]:
    path = str(aurora_yaml(tmp_path_factory.mktemp("aurora")))
    cfg = fresh_account(aws_endpoint, moto_as_aws, path)
    built = provision(config=path)
    assert built["outcome"] == "succeeded", built.get("error")
    yield cfg, path


def cluster(cfg: Config, role: str = "primary") -> dict[str, Any]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    return dict(
        plain(cfg, "rds", names.region).describe_db_clusters(DBClusterIdentifier=names.db_cluster)[
            "DBClusters"
        ][0]
    )


def writer(cfg: Config) -> str:
    (found,) = [m for m in cluster(cfg)["DBClusterMembers"] if m["IsClusterWriter"]]
    return str(found["DBInstanceIdentifier"])


def az_of(cfg: Config, instance: str) -> str:
    db = plain(cfg, "rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
    return str(db["AvailabilityZone"])


def requests(endpoint: str, region: str, operation: str) -> int:
    """How many times the emulator was asked ``operation`` in ``region``."""
    return int(SandboxControl(endpoint).stats()["requests"].get(f"{region} {operation}", 0))


def services_at_desired(cfg: Config) -> dict[str, bool]:
    names = names_for(cfg, "primary")
    found = plain(cfg, "ecs").describe_services(
        cluster=names.cluster, services=[names.service(s) for s, _ in cfg.services.items()]
    )["services"]
    return {s["serviceName"]: s["runningCount"] == s["desiredCount"] for s in found}


def cache_status(cfg: Config) -> str:
    group = plain(cfg, "elasticache").describe_replication_groups(
        ReplicationGroupId=names_for(cfg, "primary").cache
    )["ReplicationGroups"][0]
    return str(group["Status"])


# -- the audit on a healthy Aurora stack ------------------------------------------------------
def test_audit_of_a_provisioned_aurora_stack_has_no_false_finding(aurora: Any) -> None:
    cfg, path = aurora
    primary, dr = cluster(cfg), cluster(cfg, "dr")
    # the emulator: a writer and a reader in two AZs, and a DR cluster following the primary
    # as the global database's secondary (which names no replication source)
    assert primary["MultiAZ"] is True
    assert "ReplicationSourceIdentifier" not in dr
    members = plain(cfg, "rds").describe_global_clusters(
        GlobalClusterIdentifier=global_cluster_id(cfg)
    )["GlobalClusters"][0]["GlobalClusterMembers"]
    assert {(m["DBClusterArn"], m["IsWriter"]) for m in members} == {
        (primary["DBClusterArn"], True),
        (dr["DBClusterArn"], False),
    }

    report = audit(config=path)

    assert report["outcome"] == "succeeded", report.get("error")
    # The stack keeps a regional session cache (its config asks for no Global Datastore): the
    # audit says so at medium severity, which does not fail it; nothing else is found.
    assert [(f["id"], f["severity"]) for f in report["findings"]] == [
        ("cache-not-global", "medium")
    ]
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["check databases"]["outcome"] == "passed"
    assert steps["check databases"]["detail"] == f"{primary['DBClusterIdentifier']}: no findings"
    assert steps["check DR replica"]["outcome"] == "passed"


# -- the game day ------------------------------------------------------------------------------
def test_game_day_plan_names_the_cluster_failover_and_calls_nothing(aurora: Any) -> None:
    cfg, path = aurora
    ident = names_for(cfg, "primary").db_cluster
    was = writer(cfg)
    calls = watch(cfg)
    out = CliRunner().invoke(app, ["drill", "gameday", "-c", path, "--plan", "-o", "json"])
    assert out.exit_code == 0, out.output
    assert calls.seen == []
    report = json.loads(out.output)
    assert report["outcome"] == "planned"
    database = [c for c in report["changes"] if c["resource"].startswith("rds:")]
    assert [(c["resource"], c["name"], c["action"]) for c in database] == [
        ("rds:cluster", ident, "invoke")
    ]
    assert database[0]["detail"].startswith(f"FailoverDBCluster (writer {was};")
    assert writer(cfg) == was


def test_game_day_fails_the_cluster_over_and_times_its_recovery(
    aurora: Any, aws_endpoint: str
) -> None:
    cfg, path = aurora
    region = cfg.regions.primary
    ident = names_for(cfg, "primary").db_cluster
    was = writer(cfg)
    readers = {m["DBInstanceIdentifier"] for m in cluster(cfg)["DBClusterMembers"]} - {was}
    failovers = requests(aws_endpoint, region, FAILOVER)
    reboots = requests(aws_endpoint, region, "rds:RebootDBInstance")
    control = SandboxControl(aws_endpoint)
    control.timings(rds_modify_seconds=1.5)  # the cluster is failing-over this long
    try:
        report = game_day(config=path)
    finally:
        control.timings(**TEST_TIMINGS)

    assert report["outcome"] == "succeeded", report.get("error")
    # the emulator: one FailoverDBCluster (no instance reboot), a reader is the writer now, in
    # another AZ
    assert requests(aws_endpoint, region, FAILOVER) == failovers + 1
    assert requests(aws_endpoint, region, "rds:RebootDBInstance") == reboots
    now = writer(cfg)
    assert now in readers
    assert az_of(cfg, now) != az_of(cfg, was)
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["force database failover"]["outcome"] == "ok"
    assert steps["force database failover"]["detail"] == (
        f"FailoverDBCluster on {ident} (writer was {was})"
    )
    # the database was waited for while failing over: its recovery is at least that long
    m = report["metrics"]
    assert 1.4 <= m["database_recovery_seconds"] <= m["recovery_seconds"]
    assert m["tasks_stopped"] >= 1 and m["cache_failover"] == "ok"
    # everything is back
    assert cluster(cfg)["Status"] == "available"
    assert all(services_at_desired(cfg).values()), services_at_desired(cfg)
    assert cache_status(cfg) == "available"


# -- the stack broken on purpose: from here on, the tests leave it broken -----------------------
def test_audit_flags_a_lone_writer_and_deletion_protection_off(aurora: Any) -> None:
    cfg, path = aurora
    ident = names_for(cfg, "primary").db_cluster
    rds = plain(cfg, "rds")
    lone = writer(cfg)
    for m in cluster(cfg)["DBClusterMembers"]:
        if m["DBInstanceIdentifier"] != lone:
            rds.delete_db_instance(DBInstanceIdentifier=m["DBInstanceIdentifier"])
    rds.modify_db_cluster(
        DBClusterIdentifier=ident, DeletionProtection=False, ApplyImmediately=True
    )
    c = cluster(cfg)
    # the emulator: one instance left, still three AvailabilityZones listed (where instances
    # can be created), as AWS lists them
    assert [m["DBInstanceIdentifier"] for m in c["DBClusterMembers"]] == [lone]
    assert c["MultiAZ"] is False and len(c["AvailabilityZones"]) == 3
    assert c["DeletionProtection"] is False

    report = audit(config=path)

    found = {(f["id"], f["severity"], f["resource"]) for f in report["findings"]}
    found = {f for f in found if f[0] != "cache-not-global"}  # the regional cache, as above
    assert found == {
        ("db-single-az", "high", f"rds:cluster {ident}"),
        ("db-no-deletion-protection", "medium", f"rds:cluster {ident}"),
    }
    assert report["outcome"] == "failed"
    assert "db-single-az" in report["error"]


def test_game_day_on_a_lone_writer_skips_the_database_failover(
    aurora: Any, aws_endpoint: str
) -> None:
    cfg, path = aurora
    region = cfg.regions.primary
    lone = writer(cfg)
    assert len(cluster(cfg)["DBClusterMembers"]) == 1  # the previous test deleted the reader
    failovers = requests(aws_endpoint, region, FAILOVER)

    report = game_day(config=path)

    assert report["outcome"] == "succeeded", report.get("error")
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["force database failover"]["outcome"] == "skipped"
    assert "no reader" in steps["force database failover"]["detail"]
    assert requests(aws_endpoint, region, FAILOVER) == failovers
    assert writer(cfg) == lone
    assert "database_recovery_seconds" not in report["metrics"]
    assert report["metrics"]["tasks_stopped"] >= 1


def test_audit_flags_a_dr_cluster_that_left_the_global_database(aurora: Any) -> None:
    cfg, path = aurora
    dr = cluster(cfg, "dr")
    plain(cfg, "rds").remove_from_global_cluster(
        GlobalClusterIdentifier=global_cluster_id(cfg), DbClusterIdentifier=dr["DBClusterArn"]
    )
    report = audit(config=path)
    missing = [f for f in report["findings"] if f["id"] == "dr-replica-missing"]
    assert [(f["severity"], f["region"]) for f in missing] == [("high", cfg.regions.dr)]
    assert report["outcome"] == "failed"


# -- FailoverDBCluster against the real API model ----------------------------------------------
def stubbed_rds() -> tuple[Any, Stubber]:
    client = boto3.client(
        "rds", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def described(*members: tuple[str, bool]) -> dict[str, Any]:
    return {
        "DBClusters": [
            {
                "DBClusterIdentifier": "shop-sandbox-aurora",
                "Status": "available",
                "DBClusterMembers": [
                    {"DBInstanceIdentifier": i, "IsClusterWriter": w} for i, w in members
                ],
            }
        ]
    }


def test_failover_db_cluster_request_matches_the_api() -> None:
    client, stub = stubbed_rds()
    stub.add_response(
        "describe_db_clusters",
        described(("shop-sandbox-aurora-1", True), ("shop-sandbox-aurora-2", False)),
        {"DBClusterIdentifier": "shop-sandbox-aurora"},
    )
    stub.add_response(
        "failover_db_cluster",
        {"DBCluster": {"DBClusterIdentifier": "shop-sandbox-aurora", "Status": "failing-over"}},
        {"DBClusterIdentifier": "shop-sandbox-aurora"},  # AWS picks the reader
    )
    with stub:
        done = gameday._fail_over_cluster(client, "shop-sandbox-aurora", "us-east-1")
    stub.assert_no_pending_responses()
    assert done.status == "ok" and done.outputs["writer"] == "shop-sandbox-aurora-1"


def test_a_cluster_without_a_reader_is_not_asked_to_fail_over() -> None:
    client, stub = stubbed_rds()
    stub.add_response("describe_db_clusters", described(("shop-sandbox-aurora-1", True)))
    with stub:
        done = gameday._fail_over_cluster(client, "shop-sandbox-aurora", "us-east-1")
    stub.assert_no_pending_responses()  # no failover_db_cluster was expected, none was made
    assert done.skipped and "no reader" in done.skipped
