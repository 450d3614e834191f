"""prefect.yaml is the catalog's deployments on a work pool: regenerated, it is unchanged; its
forms are the ones `tierbook serve` gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.utilities.callables import parameter_schema

from configs.fleet import load_fleet
from deployments.catalog import RUNBOOKS, TYPED_APPROVAL, build, form
from deployments.pool import CONFIGS, FLOWS, POOL, prefect_yaml, render
from flows.approval import CLI_ONLY_PARAMETERS
from flows.fleet import RUNBOOKS as FLEET_RUNBOOKS
from flows.fleet import runbook_flow
from sandbox.testing import ROOT

# What prefect deploy sets itself for the environment's field (it reads the flow's docstring;
# the deployment's parameters carry the default); positions count the fields shown.
OWN = ("title", "description", "default")


def test_prefect_yaml_is_generated_from_the_catalog() -> None:
    on_disk = (ROOT / "prefect.yaml").read_text()
    assert on_disk == render(), "prefect.yaml is stale: run `python -m deployments.pool`"
    assert yaml.safe_load(on_disk) == prefect_yaml()


def test_prefect_yaml_has_the_served_deployments_on_the_pool() -> None:
    spec = prefect_yaml()["deployments"]
    served = build(*(str(ROOT / c) if "/" in c else c for c in CONFIGS))
    assert [d["name"] for d in spec] == [d.name for d in served]
    for entry, deployment in zip(spec, served, strict=True):
        assert entry["work_pool"] == {"name": POOL}
        assert entry["tags"] == deployment.tags
        assert entry["description"] == deployment.description
        assert entry["enforce_parameter_schema"] is True
        assert {k: v for k, v in entry["parameters"].items() if k != "config"} == {
            k: v for k, v in deployment.parameters.items() if k != "config"
        }
        assert [s["cron"] for s in entry["schedules"]] == [
            s.schedule.cron  # type: ignore[union-attr]
            for s in deployment.schedules or []
        ]
        path, _, attr = entry["entrypoint"].partition(":")
        assert (ROOT / path).is_file() and FLOWS[deployment.flow_name] is not None
        assert attr == deployment.flow_name.replace("-", "_")


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_a_pool_deployment_has_the_served_form(runbook: str) -> None:
    pooled = parameter_schema(FLOWS[runbook])  # what prefect deploy sends
    served = form(
        parameter_schema(RUNBOOKS[runbook]), runbook=runbook, ref=CONFIGS[0], served=CONFIGS
    )
    assert list(pooled.properties) == list(served.properties)
    for name, field in served.properties.items():
        strip = ("position", *OWN) if name == "config" else ("position",)
        assert {k: v for k, v in pooled.properties[name].items() if k not in strip} == {
            k: v for k, v in field.items() if k not in strip
        }
    assert pooled.properties["config"]["enum"] == list(CONFIGS)
    if runbook in TYPED_APPROVAL:
        assert not CLI_ONLY_PARAMETERS & set(pooled.properties)


def test_every_fleet_runbook_has_a_pool_deployment_per_fleet_environment() -> None:
    names = {d["name"] for d in prefect_yaml()["deployments"]}
    for runbook in FLEET_RUNBOOKS:
        flow_name = runbook_flow(runbook).name  # type: ignore[attr-defined]
        assert flow_name in RUNBOOKS
        for member in load_fleet(Path(ROOT / "configs/fleets/sandbox.yaml")).members.values():
            assert f"{flow_name} · {member.cfg.stack}" in names
