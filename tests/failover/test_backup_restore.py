"""Backup and restore: the DR region holds the network, the load balancer, the images, the
secret and copies of the primary's snapshots, and no database or service; failover restores
the newest copy and creates the app layer on it, failback puts DR back to its posture. End to
end on the sandbox, state read back with plain boto3."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from configs import ConfigError, resolve_config
from configs.errors import BadInput, Refused
from configs.names import names_for
from flows.failover import failback, failover, switchover
from flows.provision import provision
from flows.readiness import readiness_drill
from flows.snapshot_copy import snapshot_copy
from sandbox.testing import CONFIG, Stack
from tasks.core.tags import tag_dict
from tasks.resources.database import copies
from tests.failover.conftest import Build
from tests.failover.test_failover_e2e import assert_failed_over
from tests.failover.test_pilot_light import assert_fails_over_in_the_dark, dr_alarms, dr_services
from tests.support import posture_config

pytestmark = [pytest.mark.e2e]

EAST = "us-east-1"


def backup_config(tmp_path: Path, dr: dict[str, Any] | None = None, **database: Any) -> Path:
    return posture_config(tmp_path, "backup_restore", dr, **{"dr_replica": False, **database})


@pytest.fixture
def restorable(tmp_path: Path, build: Build) -> tuple[Stack, str]:
    """A fresh account provisioned as a backup and restore, images in both regions."""
    return build(backup_config(tmp_path))


def dr_copies(stack: Stack) -> list[dict[str, Any]]:
    """The DR region's snapshot copies, oldest first (plain boto3)."""
    rds = stack.client("rds", "dr")
    found = rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    mine = [s for s in found if s["DBSnapshotIdentifier"].startswith(f"{stack.cfg.stack}-dr-copy-")]
    for s in mine:
        s["TagList"] = rds.list_tags_for_resource(ResourceName=s["DBSnapshotArn"])["TagList"]
    return sorted(mine, key=lambda s: s["DBSnapshotIdentifier"])


def dr_database(stack: Stack) -> dict[str, Any] | None:
    rds = stack.client("rds", "dr")
    ident = names_for(stack.cfg, "dr").db_instance
    found = [d for d in rds.describe_db_instances()["DBInstances"]]
    return next((d for d in found if d["DBInstanceIdentifier"] == ident), None)


def db_env(stack: Stack, svc: str = "web") -> dict[str, str]:
    """The database settings of the newest DR task definition of ``svc``."""
    family = names_for(stack.cfg, "dr").task_family(svc)
    td = stack.client("ecs", "dr").describe_task_definition(taskDefinition=family)
    env = td["taskDefinition"]["containerDefinitions"][0].get("environment", [])
    return {e["name"]: e["value"] for e in env if e["name"].startswith("DB_")}


def test_the_posture_is_validated(tmp_path: Path) -> None:
    cfg = resolve_config(str(backup_config(tmp_path)))
    assert cfg.restores and not cfg.runs_services("dr")
    with pytest.raises(ConfigError, match="dr_replica"):
        resolve_config(str(backup_config(tmp_path, dr_replica=True)))
    with pytest.raises(ConfigError, match="pilot_light"):
        resolve_config(str(backup_config(tmp_path, engine="aurora-postgresql")))
    with pytest.raises(ConfigError, match="keep"):
        resolve_config(str(backup_config(tmp_path, dr={"snapshot_copy": {"keep": 0}})))
    with pytest.raises(BadInput, match="backup_restore"):
        snapshot_copy(config=CONFIG)  # a warm standby has no copies to make


def test_backup_and_restore_fails_over_and_back_to_its_posture(
    restorable: tuple[Stack, str],
) -> None:
    stack, path = restorable
    dr = names_for(stack.cfg, "dr")
    # Provision left DR with no database and no service, one copy under the DR key, the
    # source snapshot in the primary deleted, task definitions that name no database.
    assert dr_database(stack) is None
    assert dr_services(stack) == {} and dr_alarms(stack) == []
    made = dr_copies(stack)
    assert len(made) == 1 and dr.region in made[0]["KmsKeyId"]
    assert copies.SOURCE_CREATED_TAG in tag_dict(made[0]["TagList"])
    primary_manual = stack.client("rds").describe_db_snapshots(SnapshotType="manual")
    assert not [
        s for s in primary_manual["DBSnapshots"] if "-dr-copy-" in s["DBSnapshotIdentifier"]
    ]
    assert db_env(stack) == {}
    assert provision(config=path, plan=True)["changes"] == []
    again = provision(config=path)
    assert again["changes"] == [] and len(dr_copies(stack)) == 1, "a fresh copy is kept"
    drill = readiness_drill(config=path)
    assert drill["outcome"] == "succeeded", drill.get("error")

    planned = failover(config=path, plan=True)
    assert planned["outcome"] == "planned", planned.get("error")
    creates = {(c["resource"], c["name"]) for c in planned["changes"] if c["action"] == "create"}
    assert ("rds:instance", dr.db_instance) in creates
    assert ("ecs:service", dr.service("web")) in creates
    assert "snapshot_age_seconds" in planned["metrics"]
    with pytest.raises(Refused, match="backup_restore"):
        switchover(config=path, approved=True, reason="not without a replica")

    over = failover(config=path, approved=True, reason="backup and restore drill")
    assert over["outcome"] == "succeeded", over.get("error")
    assert_failed_over(stack)  # DR writable and hardened, web 2 / worker 1, DNS answers DR
    restored = dr_database(stack)
    assert restored is not None
    assert over["metrics"]["restored_from"] == made[0]["DBSnapshotIdentifier"]
    assert isinstance(over["metrics"]["rpo_seconds"], float)
    assert 0 <= over["metrics"]["rpo_seconds"] < 600  # the copy's age, taken at provision
    assert db_env(stack)["DB_HOST"] == restored["Endpoint"]["Address"]
    split = over["metrics"]["rto_split_seconds"]
    assert split["database"] > 0 and split["app"] > 0 and split["traffic"] >= 0, split
    assert split["database"] <= over["metrics"]["rto_seconds"]
    steps = [s["step"] for s in over["steps"]]
    assert "restore dr database from the newest snapshot copy" in steps
    with pytest.raises(Refused, match="restored"):
        snapshot_copy(config=path)  # the primary's data is stale now

    back = failback(config=path, approved=True, reason="home")
    assert back["outcome"] == "succeeded", back.get("error")
    assert stack.answers() == [stack.alb_dns("primary").lower()]
    assert dr_database(stack) is None, "DR back to its posture: no database"
    assert dr_services(stack) == {} and dr_alarms(stack) == []
    assert db_env(stack) == {}
    after = dr_copies(stack)
    assert len(after) == 2, "the DR database was put away as the newest copy"
    assert provision(config=path, plan=True)["changes"] == []
    assert readiness_drill(config=path)["outcome"] == "succeeded"


def test_two_copies_made_within_a_second_are_two() -> None:
    """A copy's name carries its time to the millisecond: a second run in the same second (a
    fast emulator, a schedule and a hand-started run) makes a copy of its own, not the first
    run's again; names still sort in time order."""
    cfg = resolve_config(CONFIG)
    at = copies.utcnow().replace(microsecond=123_000)
    names = [copies.copy_id(cfg, at + timedelta(milliseconds=ms)) for ms in (0, 1, 900)]
    assert len(set(names)) == 3 and names == sorted(names)
    assert all(n.startswith(copies.copy_prefix(cfg)) for n in names)


def test_a_stale_copy_fails_readiness_until_a_new_copy_is_made(
    restorable: tuple[Stack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, path = restorable
    real = copies.utcnow
    budget = stack.cfg.dr.snapshot_copy.rpo_budget_minutes
    monkeypatch.setattr(copies, "utcnow", lambda: real() + timedelta(minutes=budget + 1))
    with pytest.raises(Exception, match="dr-snapshot-copy"):
        readiness_drill(config=path)
    with pytest.raises(Refused, match="dr-snapshot-copy"):
        failover(config=path, approved=True, reason="stale")
    assert dr_database(stack) is None, "refused before any change"
    monkeypatch.setattr(copies, "utcnow", real)
    for _ in range(3):  # keep: 3 — the fourth copy prunes the oldest
        made = snapshot_copy(config=path)
        assert made["outcome"] == "succeeded", made.get("error")
    kept = dr_copies(stack)
    assert len(kept) == 3 and kept[-1]["DBSnapshotIdentifier"] == made["metrics"]["copy"]
    assert made["metrics"]["pruned"] == 1
    assert readiness_drill(config=path)["outcome"] == "succeeded"


def test_backup_and_restore_fails_over_with_the_primary_region_dark(
    restorable: tuple[Stack, str],
) -> None:
    assert_fails_over_in_the_dark(*restorable)


def test_a_failover_stopped_after_the_restore_began_completes_when_run_again(
    restorable: tuple[Stack, str],
) -> None:
    from tasks.runbooks.failover.database import RESTORED_FROM_TAG

    stack, path = restorable
    copy = dr_copies(stack)[-1]["DBSnapshotIdentifier"]
    stack.control.timings(rds_create_seconds=5)
    # The run that stopped: the restore requested, nothing after it.
    stack.client("rds", "dr").restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier=names_for(stack.cfg, "dr").db_instance,
        DBSnapshotIdentifier=copy,
        DBSubnetGroupName=names_for(stack.cfg, "dr").db_subnet_group,
        Tags=[{"Key": RESTORED_FROM_TAG, "Value": copy}],
    )
    again = failover(config=path, approved=True, reason="run again")
    assert again["outcome"] == "succeeded", again.get("error")
    assert_failed_over(stack)
    assert again["metrics"]["restored_from"] == copy
    assert isinstance(again["metrics"]["rpo_seconds"], float)
    restored = [s for s in again["steps"] if s["step"].startswith("restore dr database")]
    assert "an earlier run" not in restored[0]["detail"] and copy in restored[0]["detail"]
