"""The readiness drill's memory: each check's last status, kept next to the locks in DynamoDB
(in the DR region), so a check turning from pass to fail is noticed whichever machine ran the
drill before, and without Prefect's database. The turn becomes a Prefect event an automation
can page on."""

from __future__ import annotations

import json
import time

from configs.models import Config
from tasks.core.aws import connect
from tasks.core.locks import ensure_lock_table
from tasks.core.log import logger

EVENT = "tierbook.readiness.check-failed"


def _key(cfg: Config) -> dict[str, dict[str, str]]:
    return {"lock_id": {"S": f"{cfg.stack}/readiness-scorecard"}}


def swap(cfg: Config, statuses: dict[str, str]) -> dict[str, str]:
    """Store ``statuses``; return the ones stored before (empty on the first run)."""
    region = cfg.regions.dr
    table = ensure_lock_table(cfg, region)
    ddb = connect(cfg).client("dynamodb", region)
    before = ddb.get_item(TableName=table, Key=_key(cfg)).get("Item", {})
    ddb.put_item(
        TableName=table,
        Item={
            **_key(cfg),
            "statuses": {"S": json.dumps(statuses, sort_keys=True)},
            "at": {"N": f"{time.time():.3f}"},
        },
    )
    raw = before.get("statuses", {}).get("S")
    return dict(json.loads(raw)) if raw else {}


def turned_failed(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """Checks that passed (or warned) last time and fail now. Pure."""
    return sorted(c for c, s in now.items() if s == "fail" and before.get(c) in ("pass", "warn"))


def emit_failed(cfg: Config, check: str, detail: str) -> bool:
    """Emit the event; True when it went out (it needs a Prefect run context)."""
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return False
    try:
        from prefect.events import emit_event

        emit_event(
            event=EVENT,
            resource={
                "prefect.resource.id": f"tierbook.env.{cfg.stack}.readiness.{check}",
                "prefect.resource.name": f"{cfg.stack} {check}",
            },
            related=[
                {
                    "prefect.resource.id": f"tierbook.env.{cfg.stack}",
                    "prefect.resource.role": "environment",
                }
            ],
            payload={"check": check, "detail": detail, "environment": cfg.stack},
        )
    except Exception as exc:  # telemetry must not fail the drill
        logger().warning("could not emit %s for %s: %s", EVENT, check, exc)
        return False
    return True
