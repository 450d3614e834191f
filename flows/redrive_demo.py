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

DRY_RUN_FILTER = "attr.kind=refund"  # the demo fills the queue half with refunds


@flow(name="redrive-demo", persist_result=False)
def redrive_demo(config: str = "sandbox", queue: str = "orders", count: int = 30) -> dict[str, Any]:
    cfg = resolve_config(config)
    q = next((x for x in cfg.queues if x.name == queue), None)
    if q is None:
        raise NotFound(f"{queue} is not a queue of {cfg.stack}")
    with runbook("redrive-demo", cfg.stack) as tl:
        with tl.step(f"fill {queue}'s dead-letter queue") as info:
            dead = fill_dlq_by_failing(cfg, q, count)
            info["outcome"], info["detail"] = "changed", f"{dead} messages dead-lettered"
        tl.metrics["dead_lettered"] = dead
        with tl.step(f"dry run: redrive only {DRY_RUN_FILTER}") as info:
            dry = redrive(config=config, queue=queue, dry_run=True, filters=[DRY_RUN_FILTER])
            would = dry["metrics"]["would_move"]
            info["outcome"] = "planned"
            info["detail"] = (
                f"would move {would} of {dead} (the filter keeps {DRY_RUN_FILTER}); nothing moved"
            )
        tl.metrics["dry_run_would_move"] = would
        tl.metrics["dry_run_filter"] = DRY_RUN_FILTER
        with tl.step("redrive every message back") as info:
            done = redrive(config=config, queue=queue, approved=True, visibility_timeout_s=60)
            info["outcome"] = "changed"
            info["detail"] = f"moved {done['metrics']['moved']} (no filter: every message)"
        tl.metrics["moved"] = done["metrics"]["moved"]
        route = find_route(cfg, queue)
        tl.metrics["dlq_left"] = queue_depth(cfg, route.dlq)["visible"]
        tl.metrics["source_now"] = queue_depth(cfg, route.sources[0])["visible"]
        tl.note(
            f"the dry run shows a filtered redrive ({DRY_RUN_FILTER}: {would} of {dead}); "
            f"the redrive itself has no filter, so it moves all {done['metrics']['moved']}"
        )
    return tl.model_dump(mode="json")
