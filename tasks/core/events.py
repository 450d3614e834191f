"""Prefect events for every AWS mutation, so automations can alert on them."""

from __future__ import annotations

from typing import Any

from tasks.core.log import logger

_ID_SUFFIXES = ("Identifier", "Name", "Arn", "ARN", "Id", "Url")


def resource_hint(params: dict[str, Any]) -> str:
    """The first parameter that names the resource a call acts on, else ``""``."""
    for key, value in params.items():
        if key.endswith(_ID_SUFFIXES) and isinstance(value, str):
            return value
    return ""


def emit_mutation(
    *, env: str, service: str, region: str, operation: str, params: dict[str, Any]
) -> None:
    """Emit ``tierbook.aws.<service>.<Operation>``; never let telemetry break a runbook."""
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return
    target = resource_hint(params)
    try:
        from prefect.events import emit_event

        emit_event(
            event=f"tierbook.aws.{service}.{operation}",
            resource={
                "prefect.resource.id": f"aws.{service}.{region}.{target or operation}",
                "prefect.resource.name": target or operation,
                "aws.region": region,
            },
            related=[
                {
                    "prefect.resource.id": f"tierbook.env.{env}",
                    "prefect.resource.role": "environment",
                }
            ],
            payload={
                "operation": operation,
                "service": service,
                "region": region,
                "target": target,
            },
        )
    except Exception as exc:  # events are telemetry: log, never fail the step
        logger().debug("could not emit event for %s:%s: %s", service, operation, exc)
