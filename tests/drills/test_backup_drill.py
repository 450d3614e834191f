"""End to end: the backup drill on a provisioned stack, its failure paths and its pruning.

Every failure test asserts the emulator's state afterwards: the temporary instance is gone.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from configs.models import Config
from configs.names import names_for
from flows.drills import backup_drill
from sandbox.control import SandboxControl
from sandbox.testing import CONFIG, ROOT, TEST_TIMINGS, plain
from tasks.resources.buckets import ELASTICACHE_CANONICAL_ID, ensure_drill_bucket
from tasks.runbooks.drills.backup import CHECK_HOOK_ENV, prune_drill_snapshots, utcnow
from tests.support import watch


def instance_state(cfg: Config, ident: str) -> str:
    rds = plain(cfg, "rds", cfg.regions.dr)
    try:
        return str(
            rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0][
                "DBInstanceStatus"
            ]
        )
    except rds.exceptions.DBInstanceNotFoundFault:
        return "gone"


def drill_instances(cfg: Config) -> list[str]:
    rds = plain(cfg, "rds", cfg.regions.dr)
    return [
        d["DBInstanceIdentifier"]
        for d in rds.describe_db_instances()["DBInstances"]
        if "-drill-" in d["DBInstanceIdentifier"] and d["DBInstanceStatus"] != "deleting"
    ]


def cache_leftovers(cfg: Config, drill: str) -> list[str]:
    """What the cache restore may leave: its group, its subnet group, its file in each bucket."""
    ec = plain(cfg, "elasticache", cfg.regions.dr)
    left = [
        g["ReplicationGroupId"]
        for g in ec.describe_replication_groups()["ReplicationGroups"]
        if g["ReplicationGroupId"] == drill and g["Status"] != "deleting"
    ]
    left += [
        g["CacheSubnetGroupName"]
        for g in ec.describe_cache_subnet_groups()["CacheSubnetGroups"]
        if g["CacheSubnetGroupName"] == drill
    ]
    for role in ("primary", "dr"):
        names = names_for(cfg, role)
        s3 = plain(cfg, "s3", names.region)
        listed = s3.list_objects_v2(Bucket=names.drill_bucket).get("Contents", [])
        left += [f"{names.drill_bucket}/{o['Key']}" for o in listed]
    return left


def snapshots(cfg: Config, region: str) -> dict[str, dict[str, Any]]:
    rds = plain(cfg, "rds", region)
    return {
        s["DBSnapshotIdentifier"]: s
        for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    }


def config_with(tmp_path: Path, names: dict[str, str] | None = None, **backup: Any) -> str:
    raw = yaml.safe_load((ROOT / CONFIG).read_text())
    raw["drills"]["backup_restore"].update(backup)
    if names:
        raw["names"] = names
    path = tmp_path / "sandbox.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.fixture
def control(aws_endpoint: str) -> Any:
    ctl = SandboxControl(aws_endpoint)
    yield ctl
    ctl.clear_faults()
    ctl.timings(**TEST_TIMINGS)


def failed_drill(control: Any, service: str, operation: str, code: str) -> dict[str, Any]:
    """The drill run from the CLI while every ``operation`` of ``service`` answers ``code``:
    it exits 1; its report."""
    control.set_faults(
        {
            "kind": "error",
            "services": [service],
            "operations": [operation],
            "code": code,
            "status": 400,
        }
    )
    out = CliRunner().invoke(app, ["drill", "backup", "-c", CONFIG, "-o", "json"])
    assert out.exit_code == 1, out.output
    report: dict[str, Any] = json.loads(out.output)
    return report


def test_drill_restores_in_dr_measures_and_cleans_up(provisioned: Config) -> None:
    cfg = provisioned
    report = backup_drill(config=CONFIG)
    assert report["outcome"] == "succeeded", report["error"]
    m = report["metrics"]
    for key in ("snapshot_age_seconds", "copy_seconds", "restore_seconds"):
        assert isinstance(m[key], float) and m[key] >= 0, key
    drill = m["drill"]
    # the check is recorded as skipped, not as passed: the config has no check_sql
    assert m["check"].startswith("skipped")
    # the temporary instance is gone; the snapshots stay, the DR copy under the DR key
    assert instance_state(cfg, drill) == "gone"
    assert drill in snapshots(cfg, cfg.regions.primary)
    copy = snapshots(cfg, cfg.regions.dr)[drill]
    dr_key = plain(cfg, "kms", cfg.regions.dr).describe_key(KeyId="alias/shop-sandbox-data")
    assert copy["KmsKeyId"] == dr_key["KeyMetadata"]["Arn"]
    cache_snaps = plain(cfg, "elasticache").describe_snapshots(SnapshotName=drill)["Snapshots"]
    assert cache_snaps[0]["ReplicationGroupId"] == "shop-sandbox-cache"
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["restore temporary instance in DR"]["outcome"] == "ok"
    assert steps["delete temporary instance"]["outcome"] == "ok"
    # the cache's backup went to DR through S3, was restored there, timed, and is gone again
    for key in ("cache_export_seconds", "cache_copy_seconds", "cache_restore_seconds"):
        assert isinstance(m[key], float) and m[key] >= 0, key
    assert steps["restore temporary cache in DR"]["outcome"] == "ok"
    assert f"{drill} available in us-west-2" in steps["restore temporary cache in DR"]["detail"]
    deleted = steps["delete temporary cache"]["detail"]
    assert f"replication group {drill}" in deleted and f"subnet group {drill}" in deleted
    assert f"s3://shop-sandbox-drills-123456789012-us-east-1/{drill}-0001.rdb" in deleted
    assert f"s3://shop-sandbox-drills-123456789012-us-west-2/{drill}-0001.rdb" in deleted
    assert cache_leftovers(cfg, drill) == []
    assert Path(report["report_path"]).exists()


def test_plan_lists_what_the_drill_would_do_and_calls_nothing_that_changes(
    provisioned: Config,
) -> None:
    cfg = provisioned
    before = set(snapshots(cfg, cfg.regions.primary)) | set(snapshots(cfg, cfg.regions.dr))
    calls = watch(cfg)
    out = CliRunner().invoke(app, ["drill", "backup", "-c", CONFIG, "--plan", "-o", "json"])
    assert out.exit_code == 0, out.output
    assert calls.seen == []
    report = json.loads(out.output)
    assert report["outcome"] == "planned"
    drill = report["metrics"]["drill"]
    planned = {(c["resource"], c["action"], c["region"], c["name"]) for c in report["changes"]}
    rdb = f"{drill}-0001.rdb"
    buckets = {r: names_for(cfg, r).drill_bucket for r in ("primary", "dr")}
    made = {
        ("s3:bucket", "create", names_for(cfg, r).region, b)
        for r, b in buckets.items()
        if b not in {x["Name"] for x in plain(cfg, "s3").list_buckets()["Buckets"]}
    }
    assert planned == made | {
        ("rds:snapshot", "create", "us-east-1", drill),
        ("rds:snapshot", "create", "us-west-2", drill),
        ("rds:instance", "create", "us-west-2", drill),
        ("rds:instance", "delete", "us-west-2", drill),
        ("elasticache:snapshot", "create", "us-east-1", drill),
        ("s3:object", "create", "us-east-1", f"{buckets['primary']}/{rdb}"),
        ("s3:object", "create", "us-west-2", f"{buckets['dr']}/{rdb}"),
        ("elasticache:replication-group", "create", "us-west-2", drill),
        ("elasticache:replication-group", "delete", "us-west-2", drill),
    }
    after = set(snapshots(cfg, cfg.regions.primary)) | set(snapshots(cfg, cfg.regions.dr))
    assert after == before
    assert drill_instances(cfg) == []


def test_restore_from_the_latest_automated_snapshot(provisioned: Config) -> None:
    report = backup_drill(config=CONFIG, source="automated")
    assert report["outcome"] == "succeeded", report["error"]
    steps = {s["step"]: s for s in report["steps"]}
    assert "automated" in steps["snapshot primary database (automated)"]["detail"]
    assert instance_state(provisioned, report["metrics"]["drill"]) == "gone"


def test_injected_restore_failure_fails_the_drill_and_leaves_no_instance(
    provisioned: Config, control: Any
) -> None:
    report = failed_drill(
        control, "rds", "RestoreDBInstanceFromDBSnapshot", "InsufficientDBInstanceCapacity"
    )
    assert report["outcome"] == "failed"
    assert "InsufficientDBInstanceCapacity" in report["error"]
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["restore temporary instance in DR"]["outcome"] == "failed"
    assert steps["delete temporary instance"]["outcome"] == "ok"
    assert instance_state(provisioned, report["metrics"]["drill"]) == "gone"
    assert drill_instances(provisioned) == []


def test_injected_cache_restore_failure_fails_the_drill_and_leaves_nothing(
    provisioned: Config, control: Any
) -> None:
    report = failed_drill(
        control, "elasticache", "CreateReplicationGroup", "InsufficientCacheClusterCapacity"
    )
    assert "InsufficientCacheClusterCapacity" in report["error"]
    drill = report["metrics"]["drill"]
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["restore temporary cache in DR"]["outcome"] == "failed"
    # the export and the copy were made, and are deleted with the subnet group
    assert steps["copy cache backup to DR"]["outcome"] == "ok"
    assert steps["delete temporary cache"]["outcome"] == "ok"
    assert f"subnet group {drill}" in steps["delete temporary cache"]["detail"]
    assert cache_leftovers(provisioned, drill) == []
    assert instance_state(provisioned, drill) == "gone"


def test_drill_buckets_grant_elasticache_and_a_second_ensure_changes_nothing(
    provisioned: Config,
) -> None:
    cfg = provisioned
    for role in ("primary", "dr"):
        first = ensure_drill_bucket.fn(cfg, role)
        second = ensure_drill_bucket.fn(cfg, role)
        assert second.changes == [], (first.changes, second.changes)
        name = names_for(cfg, role).drill_bucket
        s3 = plain(cfg, "s3", names_for(cfg, role).region)
        grants = {
            g["Permission"]
            for g in s3.get_bucket_acl(Bucket=name)["Grants"]
            if g["Grantee"].get("ID") == ELASTICACHE_CANONICAL_ID
        }
        assert grants == {"READ", "WRITE", "READ_ACP"}
        owner = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]
        assert owner["Rules"] == [{"ObjectOwnership": "BucketOwnerPreferred"}]
        rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        assert [r["Expiration"]["Days"] for r in rules] == [1]


def test_an_export_to_a_bucket_without_acls_is_refused_as_aws_refuses_it(
    provisioned: Config,
) -> None:
    """The log bucket keeps ACLs off (BucketOwnerEnforced): ElastiCache cannot write to it."""
    cfg = provisioned
    ec = plain(cfg, "elasticache")
    name = f"{cfg.stack}-drill-acl-check"
    ec.create_snapshot(ReplicationGroupId="shop-sandbox-cache", SnapshotName=name)
    try:
        with pytest.raises(ec.exceptions.ClientError, match="has not been granted READ"):
            ec.copy_snapshot(
                SourceSnapshotName=name,
                TargetSnapshotName=name,
                TargetBucket=names_for(cfg, "primary").log_bucket,
            )
    finally:
        ec.delete_snapshot(SnapshotName=name)


def test_restore_that_never_finishes_is_deleted_after_the_deadline(
    provisioned: Config, control: Any
) -> None:
    control.timings(rds_create_seconds=600)
    out = CliRunner().invoke(
        app, ["drill", "backup", "-c", CONFIG, "--restore-timeout", "1", "-o", "json"]
    )
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert "DeadlineExceeded" in report["error"]
    drill = report["metrics"]["drill"]
    steps = {s["step"]: s for s in report["steps"]}
    # the instance existed (creating) and was deleted
    assert "creating" in steps["restore temporary instance in DR"]["detail"]
    assert steps["delete temporary instance"]["outcome"] == "ok"
    assert instance_state(provisioned, drill) == "gone"


def test_check_hook_runs_against_the_restored_endpoint(
    provisioned: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen.json"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import json, os, sys\n"
        f"json.dump({{k: v for k, v in os.environ.items() if k.startswith('TIERBOOK_CHECK_')}}, open({str(seen)!r}, 'w'))\n"
        "sys.exit(0 if os.environ['TIERBOOK_CHECK_SQL'].startswith('select') else 1)\n"
    )
    monkeypatch.setenv(CHECK_HOOK_ENV, f"{sys.executable} {hook}")
    report = backup_drill(config=config_with(tmp_path, check_sql="select count(*) from orders"))
    assert report["outcome"] == "succeeded", report["error"]
    assert report["metrics"]["check"] == "passed"
    env = json.loads(seen.read_text())
    assert env["TIERBOOK_CHECK_INSTANCE"] == report["metrics"]["drill"]
    assert env["TIERBOOK_CHECK_SQL"] == "select count(*) from orders"
    assert env["TIERBOOK_CHECK_HOST"] and env["TIERBOOK_CHECK_REGION"] == "us-west-2"

    # a failing check fails the drill, and the instance is still deleted
    failing = config_with(tmp_path, check_sql="drop table orders")
    out = CliRunner().invoke(app, ["drill", "backup", "-c", failing, "-o", "json"])
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert "check failed" in report["error"]
    assert instance_state(provisioned, report["metrics"]["drill"]) == "gone"


def test_check_sql_without_hook_is_skipped_with_the_reason(
    provisioned: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CHECK_HOOK_ENV, raising=False)
    report = backup_drill(config=config_with(tmp_path, check_sql="select 1"))
    assert report["outcome"] == "succeeded"
    assert report["metrics"]["check"].startswith("skipped (not run: no check hook")


def test_bad_source_is_refused_before_any_snapshot(provisioned: Config) -> None:
    before = set(snapshots(provisioned, provisioned.regions.primary))
    out = CliRunner().invoke(app, ["drill", "backup", "-c", CONFIG, "--source", "yesterday"])
    assert out.exit_code == 2
    assert set(snapshots(provisioned, provisioned.regions.primary)) == before


def test_a_missing_database_is_bad_input_and_nothing_is_made(
    provisioned: Config, tmp_path: Path
) -> None:
    before = set(snapshots(provisioned, provisioned.regions.primary))
    missing = config_with(tmp_path, names={"db_instance": "no-such-db"})
    out = CliRunner().invoke(app, ["drill", "backup", "-c", missing, "-o", "json"])
    assert out.exit_code == 2, out.output
    assert "no-such-db not found" in json.loads(out.output)["error"]
    assert set(snapshots(provisioned, provisioned.regions.primary)) == before
    assert drill_instances(provisioned) == []


def test_old_drill_snapshots_are_pruned_and_others_kept(provisioned: Config) -> None:
    cfg = provisioned
    report = backup_drill(config=CONFIG)
    drill = report["metrics"]["drill"]
    plain(cfg, "rds").create_db_snapshot(
        DBInstanceIdentifier="shop-sandbox-db", DBSnapshotIdentifier="keep-me-manual"
    )
    later = utcnow() + timedelta(days=cfg.drills.backup_restore.keep_days + 1)
    result = prune_drill_snapshots.fn(cfg, keep=[], now=later)
    assert f"rds us-east-1 {drill}" in result.outputs["deleted"]
    assert f"rds us-west-2 {drill}" in result.outputs["deleted"]
    assert f"elasticache {drill}" in result.outputs["deleted"]
    left = set(snapshots(cfg, cfg.regions.primary)) | set(snapshots(cfg, cfg.regions.dr))
    assert not any("-drill-" in s for s in left)
    assert "keep-me-manual" in left
    # within keep_days nothing is pruned
    fresh = backup_drill(config=CONFIG)
    assert fresh["metrics"]["pruned"] == 0
    assert fresh["metrics"]["drill"] in snapshots(cfg, cfg.regions.dr)
