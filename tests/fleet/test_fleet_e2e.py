"""A fleet end to end on the sandbox: readiness, a failed wave, failover and failback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from flows.fleet import fleet
from sandbox.testing import Stack
from tests.failover.test_failover_e2e import assert_failed_over
from tests.fleet.conftest import FLEET

pytestmark = [pytest.mark.e2e]


def test_fleet_readiness_has_a_row_per_environment(fleet_stacks: dict[str, Stack]) -> None:
    out = CliRunner().invoke(app, ["fleet", "readiness", "-f", FLEET, "-o", "json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    rows = {r["environment"]: r for r in report["environments"]}
    assert [(r["wave"], r["environment"]) for r in report["environments"]] == [
        (1, "shop"),
        (2, "blog"),
    ]
    for name, stack in fleet_stacks.items():
        assert rows[name]["stack"] == stack.cfg.stack
        assert rows[name]["outcome"] == "succeeded" and rows[name]["readiness"] == "pass"
        assert rows[name]["findings"].endswith("checks pass")
    assert report["runbook"] == "fleet-readiness" and report["environment"] == "sandbox-fleet"
    # Each environment's run is a child of the fleet's run.
    children = child_runs(report["flow_run_id"])
    assert sorted(children) == ["readiness-blog-sandbox", "readiness-shop-sandbox"]


def child_runs(run_id: str) -> list[str]:
    """The names of the flow runs started inside the fleet's run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])
            )
        )
    return [r.name for r in runs]


def wave_fleet(tmp_path: Path, waves: list[list[str]], **extra: dict[str, str]) -> str:
    """A fleet file in ``tmp_path``: the sandbox fleet's environments (plus ``extra``) in
    ``waves``."""
    data = yaml.safe_load(Path(FLEET).read_text())
    for entry in data["environments"].values():
        if entry["config"].endswith(".yaml"):
            entry["config"] = str(Path(FLEET).resolve().parent / entry["config"])
    data["environments"].update(extra)
    data["waves"] = waves
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_failed_environment_in_wave_one_stops_wave_two(
    fleet_stacks: dict[str, Stack], tmp_path: Path
) -> None:
    # An environment whose stack was never built: its readiness fails, so its failover refuses.
    raw = yaml.safe_load((Path(FLEET).parent / "blog-sandbox.yaml").read_text())
    raw.update(app="gone", edge={**raw["edge"], "domain": "gone.example.com"})
    (tmp_path / "gone.yaml").write_text(yaml.safe_dump(raw))
    path = wave_fleet(
        tmp_path, [["gone"], ["shop", "blog"]], gone={"config": str(tmp_path / "gone.yaml")}
    )

    report = fleet(fleet=path, runbook="failover", approved=True, reason="test")

    assert report["outcome"] == "failed"
    rows = {r["environment"]: r for r in report["environments"]}
    assert rows["gone"]["outcome"] == "refused" and "not ready" in rows["gone"]["error"]
    assert rows["shop"]["outcome"] == rows["blog"]["outcome"] == "not run"
    assert "wave 1 did not succeed (gone)" in report["error"]
    for stack in fleet_stacks.values():
        assert stack.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")  # still a replica
        assert stack.answers() == [stack.alb_dns("primary").lower()]


def test_the_account_guard_holds_per_environment(
    fleet_stacks: dict[str, Stack], tmp_path: Path
) -> None:
    # The fleet puts shop in an account the sandbox's credentials do not reach.
    path = wave_fleet(
        tmp_path,
        [["shop"], ["blog"]],
        shop={"config": "sandbox", "account_id": "999999999999"},
    )
    report = fleet(fleet=path, runbook="failover", approved=True, only="shop")
    assert report["outcome"] == "failed"
    (row,) = report["environments"]
    assert row["environment"] == "shop" and row["outcome"] == "refused"
    assert "config is for account 999999999999" in row["error"]
    shop = fleet_stacks["shop"]
    assert shop.answers() == [shop.alb_dns("primary").lower()]
    assert shop.db("dr").get("ReadReplicaSourceDBInstanceIdentifier")


def test_a_second_fleet_run_is_refused_by_the_environments_lock(
    fleet_stacks: dict[str, Stack],
) -> None:
    from tasks.core.locks import hold

    shop = fleet_stacks["shop"]
    # As another fleet failover of the same fleet would hold it while it moves shop.
    with hold(shop.cfg, "region-move", region=shop.cfg.regions.dr, purpose="fleet elsewhere"):
        report = fleet(fleet=FLEET, runbook="failover", approved=True, only="shop")
    (row,) = report["environments"]
    assert row["outcome"] == "refused" and "fleet elsewhere" in row["error"]
    assert shop.answers() == [shop.alb_dns("primary").lower()]


def test_plan_only_and_approval_change_nothing(fleet_stacks: dict[str, Stack]) -> None:
    # --plan reaches every child; --only reruns one environment.
    out = CliRunner().invoke(
        app, ["fleet", "failover", "-f", FLEET, "--plan", "--only", "blog", "-o", "json"]
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["outcome"] == "planned"
    assert [(r["environment"], r["outcome"]) for r in report["environments"]] == [
        ("blog", "planned")
    ]
    # For people: the environments as a table under the fleet's steps.
    text = CliRunner().invoke(app, ["fleet", "failover", "-f", FLEET, "--plan", "--only", "blog"])
    assert text.exit_code == 0, text.output
    assert "fleet-failover · sandbox-fleet · planned" in text.output
    assert "environments" in text.output and "blog-sandbox" in text.output
    # Without --yes and no terminal to type the fleet's name at: refused, exit 2.
    refused = CliRunner().invoke(app, ["fleet", "failover", "-f", FLEET, "-o", "json"])
    assert refused.exit_code == 2, refused.output
    assert "fleet sandbox-fleet" in json.loads(refused.output)["error"]
    for stack in fleet_stacks.values():
        assert stack.answers() == [stack.alb_dns("primary").lower()]


def test_fleet_failover_moves_wave_one_then_wave_two_and_failback_brings_them_home(
    fleet_stacks: dict[str, Stack],
) -> None:
    out = CliRunner().invoke(
        app, ["fleet", "failover", "-f", FLEET, "--yes", "--reason", "test", "-o", "json"]
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    rows = {r["environment"]: r for r in report["environments"]}
    for name, stack in fleet_stacks.items():
        assert rows[name]["outcome"] == "succeeded"
        assert rows[name]["rto_seconds"] > 0 and rows[name]["rpo_seconds"] == 1.0
        assert_failed_over(stack)
    # Wave 2 started once wave 1 had ended.
    waves = sorted(
        (s for s in report["steps"] if s["step"].startswith("wave ")), key=lambda s: s["start"]
    )
    assert [s["step"] for s in waves] == ["wave 1: shop", "wave 2: blog"]
    assert waves[0]["end"] <= waves[1]["start"]
    assert report["metrics"]["rto_seconds"] >= max(r["rto_seconds"] for r in rows.values())

    back = CliRunner().invoke(
        app, ["fleet", "failback", "-f", FLEET, "--yes", "--reason", "home", "-o", "json"]
    )
    assert back.exit_code == 0, back.output
    assert [r["outcome"] for r in json.loads(back.output)["environments"]] == ["succeeded"] * 2
    for stack in fleet_stacks.values():
        assert stack.answers() == [stack.alb_dns("primary").lower()]
        primary = stack.db("primary")
        assert not primary.get("ReadReplicaSourceDBInstanceIdentifier")
        assert stack.db("dr")["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]


def test_fleet_switchover_moves_every_environment_losing_nothing_and_failback_returns(
    fleet_stacks: dict[str, Stack],
) -> None:
    out = CliRunner().invoke(
        app, ["fleet", "switchover", "-f", FLEET, "--yes", "--reason", "rotation", "-o", "json"]
    )
    assert out.exit_code == 0, out.output
    rows = {r["environment"]: r for r in json.loads(out.output)["environments"]}
    for name, stack in fleet_stacks.items():
        assert rows[name]["outcome"] == "succeeded" and rows[name]["rpo_seconds"] == 0
        dr = stack.db("dr")
        assert not dr.get("ReadReplicaSourceDBInstanceIdentifier")
        assert stack.db("primary")["ReadReplicaSourceDBInstanceIdentifier"] == dr["DBInstanceArn"]
        assert stack.answers() == [stack.alb_dns("dr").lower()]

    back = CliRunner().invoke(
        app, ["fleet", "failback", "-f", FLEET, "--yes", "--reason", "home", "-o", "json"]
    )
    assert back.exit_code == 0, back.output
    for stack in fleet_stacks.values():
        assert stack.answers() == [stack.alb_dns("primary").lower()]
        assert not stack.db("primary").get("ReadReplicaSourceDBInstanceIdentifier")
