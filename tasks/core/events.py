"""Prefect events for every AWS mutation, so automations can alert on them.

A mutation is attributed to the flow run that made it, whichever thread made the call: steps
hand work to their own threads (the failover's fence scales services in a bounded worker
thread), and those threads carry no Prefect context. The run is taken from the calling
thread's context when there is one and remembered for the process; a thread without one
gets the run remembered last. A process runs one runbook at a time (the CLI's, or a served
run's own subprocess), so that is the run the thread works for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from tasks.core.log import logger

_ID_SUFFIXES = ("Identifier", "Name", "Arn", "ARN", "Id", "Url")


@dataclass(frozen=True)
class RunRef:
    """The flow run a call works for, and whether the calling thread has its context (then
    Prefect relates the event to the run itself)."""

    flow_run_id: str
    flow_run_name: str
    in_context: bool


_last_run: RunRef | None = None
_last_run_lock = threading.Lock()


def current_run() -> RunRef | None:
    """The flow run of the calling thread, else the one the process ran last, else ``None``
    (no runbook is running: nothing to emit)."""
    global _last_run
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is not None and ctx.flow_run is not None:
        ref = RunRef(str(ctx.flow_run.id), ctx.flow_run.name, in_context=True)
        with _last_run_lock:
            _last_run = RunRef(ref.flow_run_id, ref.flow_run_name, in_context=False)
        return ref
    with _last_run_lock:
        return _last_run


def resource_hint(params: dict[str, Any]) -> str:
    """The first parameter that names the resource a call acts on, else ``""``."""
    for key, value in params.items():
        if key.endswith(_ID_SUFFIXES) and isinstance(value, str):
            return value
    return ""


def _related(env: str, run: RunRef) -> list[dict[str, str]]:
    """The environment, and the flow run itself when the calling thread lacks its context."""
    related = [
        {"prefect.resource.id": f"tierbook.env.{env}", "prefect.resource.role": "environment"}
    ]
    if not run.in_context:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{run.flow_run_id}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": run.flow_run_name,
            }
        )
    return related


def emit_mutation(
    *,
    env: str,
    service: str,
    region: str,
    operation: str,
    params: dict[str, Any],
    run: RunRef | None,
) -> None:
    """Emit ``tierbook.aws.<service>.<Operation>`` for ``run``; never let telemetry break a
    runbook."""
    if run is None:
        return
    target = resource_hint(params)
    related = _related(env, run)
    try:
        from prefect.events import emit_event

        emit_event(
            event=f"tierbook.aws.{service}.{operation}",
            resource={
                "prefect.resource.id": f"aws.{service}.{region}.{target or operation}",
                "prefect.resource.name": target or operation,
                "aws.region": region,
            },
            related=related,
            payload={
                "operation": operation,
                "service": service,
                "region": region,
                "target": target,
            },
        )
    except Exception as exc:  # events are telemetry: log, never fail the step
        logger().debug("could not emit event for %s:%s: %s", service, operation, exc)


def emit_about(env: str, event: str, resource: str, payload: dict[str, Any]) -> bool:
    """Emit ``event`` about one of the environment's things (``resource`` names it, e.g.
    ``fence.us-east-1``) for the flow run at hand; True when it went out (it needs a run).
    Telemetry: logged, never raised."""
    run = current_run()
    if run is None:
        return False
    related = _related(env, run)
    try:
        from prefect.events import emit_event

        emit_event(
            event=event,
            resource={
                "prefect.resource.id": f"tierbook.env.{env}.{resource}",
                "prefect.resource.name": f"{env} {resource}",
            },
            related=related,
            payload=payload,
        )
    except Exception as exc:
        logger().warning("could not emit %s: %s", event, exc)
        return False
    return True
