"""The deployments' forms, as ``tierbook serve`` registers them (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployments import RUNBOOKS, build
from sandbox.testing import ROOT
from tests.support import posture_config

CONFIG = str(ROOT / "configs" / "sandbox.yaml")


@pytest.fixture(scope="module")
def forms() -> dict[str, dict[str, Any]]:
    # As the runner sends it to the API: only the fields set.
    return {
        d.name: d._parameter_openapi_schema.model_dump(exclude_unset=True) for d in build(CONFIG)
    }


def test_every_runbook_is_deployed_under_its_name_and_the_environment(
    forms: dict[str, dict[str, Any]],
) -> None:
    # snapshot copies are the data of a backup-and-restore posture only
    assert set(forms) == {f"{runbook} · shop-sandbox" for runbook in RUNBOOKS} - {
        "snapshot-copy · shop-sandbox"
    }
    assert {"provision", "destroy", "snapshot-copy"} <= set(RUNBOOKS)


def test_a_backup_and_restore_environment_gets_its_snapshot_copy_on_schedule(
    tmp_path: Path,
) -> None:
    path = posture_config(
        tmp_path, "backup_restore", {"snapshot_copy": {"cron": "*/30 * * * *"}}, dr_replica=False
    )
    copy = next(d for d in build(str(path)) if d.name.startswith("snapshot-copy"))
    assert [s.schedule.cron for s in copy.schedules] == ["*/30 * * * *"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "runbook", ["failover", "switchover", "failback", "drill-region", "destroy"]
)
def test_no_parameter_approves_a_region_move_or_destroy_up_front(
    forms: dict[str, dict[str, Any]],
    runbook: str,
) -> None:
    schema = forms[f"{runbook} · shop-sandbox"]
    assert not {"approved", "yes"} & set(schema["properties"])
    assert schema["additionalProperties"] is False  # so the API refuses them too


def test_every_form_is_an_object_schema_the_ui_renders_as_fields(
    forms: dict[str, dict[str, Any]],
) -> None:
    # Without ``type: object`` at its root the UI's custom-run form is a JSON editor.
    for name, schema in forms.items():
        assert schema["type"] == "object", name
        assert schema["title"] == "Parameters", name


def test_every_parameter_says_what_it_does_and_the_environment_is_a_choice(
    forms: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    for name, schema in forms.items():
        undescribed = [p for p, s in schema["properties"].items() if not s.get("description")]
        assert not undescribed, (name, undescribed)
        assert schema["properties"]["config"]["enum"] == ["sandbox"], name  # in configs/: by name


def test_the_environment_choice_is_every_served_environment(tmp_path: Path) -> None:
    other = tmp_path / "staging.yaml"
    other.write_text(
        (ROOT / "configs" / "sandbox.yaml").read_text().replace("env: sandbox", "env: staging")
    )
    deployments = build(CONFIG, str(other))
    names = {d.name for d in deployments}
    assert {"failover · shop-sandbox", "failover · shop-staging"} <= names
    for d in deployments:
        config = d._parameter_openapi_schema.properties["config"]
        assert config["enum"] == ["sandbox", str(other)]
        assert config["default"] == d.parameters["config"]


def test_provision_and_destroy_plan_unless_told_otherwise(
    forms: dict[str, dict[str, Any]],
) -> None:
    for runbook in ("provision", "destroy"):
        schema = forms[f"{runbook} · shop-sandbox"]
        assert schema["properties"]["plan"]["default"] is True
        assert schema["properties"]["region"]["enum"] == ["both", "primary", "dr"]
