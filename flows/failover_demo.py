"""The failover part of the demo: the images CI would have pushed, then a failover."""

from __future__ import annotations

from typing import Any

from prefect import flow

from configs import resolve_config
from flows.failover import failover
from tasks.runbooks.deploy.demo_images import ensure_ci_images


@flow(name="failover-demo", persist_result=False)
def failover_demo(config: str = "sandbox") -> dict[str, Any]:
    ensure_ci_images(resolve_config(config))
    return failover(config=config, approved=True, reason="demo")  # type: ignore[no-any-return]
