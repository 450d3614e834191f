"""The failover part of the demo: the images CI would have pushed, then the readiness drill
or a failover."""

from __future__ import annotations

from typing import Any

from prefect import flow

from configs import resolve_config
from flows.failover import failover
from flows.readiness import readiness_drill
from tasks.runbooks.deploy.demo_images import ensure_ci_images


@flow(name="failover-demo", persist_result=False)
def failover_demo(config: str = "sandbox") -> dict[str, Any]:
    ensure_ci_images(resolve_config(config))
    return failover(config=config, approved=True, reason="demo")  # type: ignore[no-any-return]


@flow(name="readiness-demo", persist_result=False)
def readiness_demo(config: str = "sandbox") -> dict[str, Any]:
    """The readiness drill once the images CI would have pushed are in place (the demo's
    deploy built only web's; worker's was never pushed)."""
    ensure_ci_images(resolve_config(config))
    return readiness_drill(config=config)  # type: ignore[no-any-return]
