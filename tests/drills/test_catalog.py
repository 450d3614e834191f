"""The drills and the audit are deployed with the config's cron schedules."""

from __future__ import annotations

from deployments.catalog import build
from sandbox.testing import CONFIG


def test_drills_and_audit_carry_the_configs_schedules(prefect_harness: None) -> None:
    crons = {
        d.flow_name: [s.schedule.cron for s in d.schedules or []]  # type: ignore[union-attr]
        for d in build(CONFIG)
    }
    assert crons["backup-drill"] == ["0 3 * * 1"]
    assert crons["game-day"] == ["0 10 1 * *"]
    assert crons["audit"] == ["0 6 * * *"]
