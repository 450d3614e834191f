"""A fleet's approval grant: taken once, only by a run of its runbook whose parent is the fleet
run that left it, and not once expired."""

from __future__ import annotations

import pytest

from configs.models import Config
from tasks.core import grants
from tasks.core.grants import grant_approval, take_approval, withdraw_approval

pytestmark = [pytest.mark.e2e]


def test_a_grant_is_taken_once_by_its_fleets_child(sandbox_cfg: Config) -> None:
    grant_approval(sandbox_cfg, "failover", fleet_run_id="fleet-1", fleet="f", reason="outage")
    assert take_approval(sandbox_cfg, "failover", parent_run_id="fleet-2") is None
    assert take_approval(sandbox_cfg, "failback", parent_run_id="fleet-1") is None
    taken = take_approval(sandbox_cfg, "failover", parent_run_id="fleet-1")
    assert taken is not None and taken["reason"] == "outage" and taken["fleet"] == "f"
    assert take_approval(sandbox_cfg, "failover", parent_run_id="fleet-1") is None
    assert not withdraw_approval(sandbox_cfg, "failover", fleet_run_id="fleet-1")


def test_an_expired_grant_approves_nothing_and_is_withdrawn(
    sandbox_cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grants, "GRANT_TTL_S", -1.0)
    grant_approval(sandbox_cfg, "failover", fleet_run_id="fleet-1", fleet="f", reason="")
    assert take_approval(sandbox_cfg, "failover", parent_run_id="fleet-1") is None
    assert withdraw_approval(sandbox_cfg, "failover", fleet_run_id="fleet-1")
