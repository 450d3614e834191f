"""Preflight: can tierbook act on this environment right now? Read-only."""

from __future__ import annotations

from typing import Any

from prefect import flow

from configs import resolve_config
from flows.report import runbook
from tasks.runbooks.preflight import check_account, check_region


@flow(name="preflight", persist_result=False)
def preflight(config: str = "sandbox") -> dict[str, Any]:
    """Check the account and that both regions answer.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
    """
    cfg = resolve_config(config)
    with runbook("preflight", cfg.stack) as tl:
        check_account(cfg)
        futures = [
            check_region.submit(cfg, region) for region in (cfg.regions.primary, cfg.regions.dr)
        ]
        for f in futures:
            f.result()
    return tl.model_dump(mode="json")
