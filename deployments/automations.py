"""Prefect automations as code: what pages an operator, for one environment.

Four automations, each sending to one webhook notification block:

* a DR readiness check turned to fail (``tierbook.readiness.check-failed``);
* a runbook failed or crashed (a run of one of this environment's deployments);
* a region move started, and finished (failover, switchover, failback or a region drill,
  whatever the outcome).

They match the environment's deployments by their tag (the stack name) and the readiness
event by its related environment. :func:`apply` is idempotent: it converges automations and
block by name, so running it again changes nothing and adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from configs import Config

READINESS_FAILED = "tierbook.readiness.check-failed"
RUN_FAILED = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed")
REGION_MOVES = ["failover", "switchover", "failback", "drill-region"]
BODY = (
    "{{ event.event }} on {{ event.resource.get('prefect.resource.name', '') }} "
    "at {{ event.occurred }}"
)


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    expect: tuple[str, ...]
    related: list[dict[str, Any]]


def block_name(cfg: Config) -> str:
    return f"tierbook-{cfg.stack}-webhook"


def specs(cfg: Config) -> list[Spec]:
    """The automations for ``cfg``'s environment (pure)."""
    env = {"prefect.resource.id": f"tierbook.env.{cfg.stack}"}
    tagged = {"prefect.resource.id": f"prefect.tag.{cfg.stack}"}
    moves = {"prefect.resource.role": "flow", "prefect.resource.name": REGION_MOVES}
    prefix = f"tierbook · {cfg.stack}"
    return [
        Spec(
            f"{prefix} · readiness check failed",
            "a DR readiness check turned to fail",
            (READINESS_FAILED,),
            [env],
        ),
        Spec(f"{prefix} · runbook failed", "a runbook failed", RUN_FAILED, [tagged]),
        Spec(
            f"{prefix} · region move started",
            "a region move started",
            ("prefect.flow-run.Running",),
            [moves, tagged],
        ),
        Spec(
            f"{prefix} · region move finished",
            "a region move finished",
            ("prefect.flow-run.Completed", *RUN_FAILED),
            [moves, tagged],
        ),
    ]


def automation(spec: Spec, cfg: Config, block_id: UUID) -> AutomationCore:
    return AutomationCore(
        name=spec.name,
        description=f"Notify the webhook when {spec.title} in {cfg.stack}.",
        enabled=True,
        trigger=EventTrigger(
            expect=set(spec.expect),
            match_related=spec.related,  # type: ignore[arg-type]
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject=f"[{cfg.stack}] {spec.title}",
                body=BODY,
            )
        ],
    )


def comparable(a: AutomationCore) -> dict[str, Any]:
    """What defines an automation, with the trigger's sets (``expect``, ``after``,
    ``for_each``) in one order: JSON keeps a set in whatever order it was iterated."""
    fields = {"name", "description", "enabled", "trigger", "actions"}
    dump = a.model_dump(mode="json", include=fields)
    trigger = dump.get("trigger") or {}
    for key in ("expect", "after", "for_each"):
        if isinstance(trigger.get(key), list):
            trigger[key] = sorted(trigger[key])
    return dict(dump)


def same(a: AutomationCore, b: AutomationCore) -> bool:
    return comparable(a) == comparable(b)


def apply(cfg: Config, webhook: str) -> dict[str, str]:
    """Converge the webhook block and the automations; ``{name: created|updated|unchanged}``."""
    from prefect.client.orchestration import get_client

    block = CustomWebhookNotificationBlock(
        name=block_name(cfg),
        url=webhook,
        json_data={"text": "{{subject}}\n{{body}}"},
        headers=None,
        cookies=None,
    )
    block_id: UUID = block.save(block_name(cfg), overwrite=True)  # type: ignore[assignment]
    done: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for spec in specs(cfg):
            wanted = automation(spec, cfg, block_id)
            existing = client.read_automations_by_name(spec.name)
            if existing:
                keep, *extra = existing
                for duplicate in extra:
                    client.delete_automation(duplicate.id)
                if same(keep, wanted):
                    done[spec.name] = "unchanged"
                else:
                    client.update_automation(keep.id, wanted)
                    done[spec.name] = "updated"
            else:
                client.create_automation(wanted)
                done[spec.name] = "created"
    return done
