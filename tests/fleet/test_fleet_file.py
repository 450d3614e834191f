"""The fleet file: each invalid fleet is refused naming the field, before any AWS call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from configs.errors import BadInput, ConfigError
from configs.fleet import load_fleet, parse_fleet
from sandbox.testing import ROOT

BLOG = str(ROOT / "configs/fleets/blog-sandbox.yaml")


def fleet(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "f",
        "environments": {"shop": {"config": "sandbox"}, "blog": {"config": BLOG}},
        "waves": [["shop"], ["blog"]],
    }
    data.update(changes)
    return data


def problems(data: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse_fleet(data)
    assert isinstance(err.value, BadInput)
    return {p.path: p.message for p in err.value.problems}


def test_the_sandbox_fleet_loads_with_its_waves() -> None:
    loaded = load_fleet("sandbox")
    assert loaded.name == "sandbox-fleet" and loaded.waves == (("shop",), ("blog",))
    assert {n: m.cfg.stack for n, m in loaded.members.items()} == {
        "shop": "shop-sandbox",
        "blog": "blog-sandbox",
    }
    assert loaded.only("blog").waves == (("blog",),)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"waves": [["shop"], ["blog", "wiki"]]}, "waves.1.1", "unknown environment 'wiki'"),
        ({"waves": [["shop", "blog"], ["blog"]]}, "waves.1.0", "'blog' is already in wave 0"),
        ({"waves": [["shop"]]}, "environments.blog", "in no wave"),
        ({"waves": [["shop"], [], ["blog"]]}, "waves.1", "a wave needs at least one"),
        ({"waves": []}, "waves", "at least 1 item"),
        ({"colour": "red"}, "colour", "unknown key"),
        ({"name": "Bad Name"}, "name", "should match pattern"),
        (
            {
                "environments": {"shop": {"config": "sandbox", "acount_id": "1"}},
                "waves": [["shop"]],
            },
            "environments.shop.acount_id",
            "unknown key",
        ),
        (
            {
                "environments": {"shop": {"config": "sandbox"}, "again": {"config": "sandbox"}},
                "waves": [["shop", "again"]],
            },
            "environments.again.config",
            "stack shop-sandbox is also environments.shop",
        ),
        (
            {"environments": {"shop": {"config": "nowhere"}, "blog": {"config": BLOG}}},
            "environments.shop.config",
            "cannot read the file",
        ),
        (
            # A role with the sandbox's endpoint: refused as in a config file.
            {
                "environments": {
                    "shop": {
                        "config": "sandbox",
                        "role_arn": "arn:aws:iam::210987654321:role/tierbook",
                    },
                    "blog": {"config": BLOG},
                }
            },
            "environments.shop.config",
            "cannot be combined with profile or role_arn",
        ),
    ],
)
def test_an_invalid_fleet_is_refused_naming_the_field(
    changes: dict[str, Any], field: str, message: str
) -> None:
    found = problems(fleet(**changes))
    assert field in found, found
    assert message in found[field]


def test_an_account_of_its_own_is_written_into_the_environments_config() -> None:
    loaded = parse_fleet(
        fleet(
            environments={
                "shop": {"config": "sandbox", "account_id": "210987654321"},
                "blog": {"config": BLOG},
            }
        )
    )
    assert loaded.members["shop"].cfg.account_id == "210987654321"
    assert loaded.members["blog"].cfg.account_id == "123456789012"
    with pytest.raises(ConfigError, match="only: 'wiki' is not in the fleet"):
        loaded.only("wiki")


def test_bad_yaml_and_a_bad_fleet_exit_2_on_the_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    out = CliRunner().invoke(app, ["fleet", "readiness", "-f", str(bad)])
    assert out.exit_code == 2 and "not valid YAML" in out.output
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump(fleet(waves=[["shop"], ["blog", "wiki"]])))
    out = CliRunner().invoke(app, ["fleet", "failover", "-f", str(unknown), "--yes"])
    assert out.exit_code == 2 and "waves.1.1: unknown environment 'wiki'" in out.output
    out = CliRunner().invoke(app, ["fleet", "readiness", "-f", "sandbox", "--only", "wiki"])
    assert out.exit_code == 2 and "only: 'wiki' is not in the fleet" in out.output


def test_the_fleet_scorecard_is_a_scheduled_read_only_deployment() -> None:
    from deployments import build_fleets

    (deployment,) = build_fleets("sandbox")
    assert deployment.name == "fleet-readiness · sandbox-fleet"
    assert deployment.parameters["runbook"] == "readiness"
    assert deployment.parameters["continue_on_error"] is True
    assert [s.schedule.cron for s in deployment.schedules] == ["*/30 * * * *"]
    form = deployment._parameter_openapi_schema.model_dump(exclude_unset=True)
    assert set(form["properties"]) == {"fleet", "runbook", "continue_on_error", "only"}
    assert form["properties"]["runbook"]["enum"] == ["audit", "readiness"]
    assert form["additionalProperties"] is False
    assert form["type"] == "object"  # the UI renders fields, not a JSON editor


def test_each_runbook_gets_the_fleet_parameters_it_takes() -> None:
    from flows.failover import failback, failover
    from flows.fleet import child_parameters
    from flows.readiness import readiness_drill

    given = {"config": "c.yaml", "approved": True, "reason": "why"}
    assert child_parameters(failover, plan=False, **given) == given
    assert child_parameters(failover, plan=True, **given) == {**given, "plan": True}
    assert child_parameters(failback, plan=False, **given) == given
    assert child_parameters(failback, plan=True, **given) is None  # no plan: runs nothing
    assert child_parameters(readiness_drill, plan=True, read_only=True, **given) == {
        "config": "c.yaml"
    }


def test_a_runbook_this_version_lacks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import fleet as fleet_flows

    monkeypatch.setitem(fleet_flows.RUNBOOKS, "switchover", "flows.failover:no_such_runbook")
    with pytest.raises(BadInput, match="no switchover runbook"):
        fleet_flows.runbook_flow("switchover")
