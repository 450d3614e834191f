"""The redrive part of the demo: fill a DLQ by failing consumers, look, then redrive it."""

from __future__ import annotations

from typing import Any

from prefect import flow

from configs import resolve_config
from configs.errors import NotFound
from flows.redrive import redrive
from flows.report import runbook
from tasks.runbooks.redrive.demo_queues import fill_dlq_by_failing
from tasks.runbooks.redrive.routes import find_route, queue_depth


@flow(name="redrive-demo", persist_result=False)
def redrive_demo(config: str = "sandbox", queue: str = "orders", count: int = 30) -> dict[str, Any]:
    cfg = resolve_config(config)
    q = next((x for x in cfg.queues if x.name == queue), None)
    if q is None:
        raise NotFound(f"{queue} is not a queue of {cfg.stack}")
    with runbook("redrive-demo", cfg.stack) as tl:
        tl.metrics["dead_lettered"] = fill_dlq_by_failing(cfg, q, count)
        dry = redrive(config=config, queue=queue, dry_run=True, filters=["attr.kind=refund"])
        tl.metrics["dry_run_would_move"] = dry["metrics"]["would_move"]
        done = redrive(config=config, queue=queue, approved=True, visibility_timeout_s=60)
        tl.metrics["moved"] = done["metrics"]["moved"]
        route = find_route(cfg, queue)
        tl.metrics["dlq_left"] = queue_depth(cfg, route.dlq)["visible"]
        tl.metrics["source_now"] = queue_depth(cfg, route.sources[0])["visible"]
    return tl.model_dump(mode="json")
