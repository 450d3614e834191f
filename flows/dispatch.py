"""A fleet environment's run dispatched to a work pool: ``run_deployment`` onto the runbook's
deployment for that environment, a child of the fleet's run, so that any worker of the pool
takes it. The fleet waits for it and reads its report from the run's result.

A Ctrl-C (or any stop of the fleet's process) cancels the runs it is waiting for: a worker
stops a cancelled run's process, so no environment's runbook goes on unattended.

The deployments are those of ``prefect.yaml`` (``prefect deploy --all``): one per runbook and
environment, named as ``tierbook serve`` names them (:func:`deployment_name`), each persisting
its result so the fleet can read the report back.
"""

from __future__ import annotations

import time
from typing import Any

from configs.errors import BadInput
from configs.models import Config
from tasks.core.retry import STOPPING

SEPARATOR = " · "

# How long the fleet waits for one environment's run on the pool (a region move may wait for
# a worker, then run for a while); ``poll``: how often it asks.
DISPATCH_TIMEOUT_S = 2 * 3600
DISPATCH_POLL_S = 2.0


def deployment_name(runbook: str, stack: str) -> str:
    """What the UI's deployment list shows: the runbook (its flow's name) and the stack."""
    return f"{runbook}{SEPARATOR}{stack}"


def check_pool(pool: str, flow_name: str, stacks: list[str]) -> None:
    """The pool exists on the server and every environment's deployment is on it; else
    :class:`BadInput` naming what is missing (before the fleet asks for an approval)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            raise BadInput(
                f"work_pool: no work pool {pool!r} on the Prefect server "
                f"(prefect work-pool create {pool} --type process)"
            ) from None
        problems = []
        for stack in stacks:
            name = f"{flow_name}/{deployment_name(flow_name, stack)}"
            try:
                found = client.read_deployment_by_name(name)
            except ObjectNotFound:
                problems.append(f"no deployment {name!r} (prefect deploy --all)")
                continue
            if found.work_pool_name != pool:
                problems.append(f"deployment {name!r} is on pool {found.work_pool_name!r}")
        if problems:
            raise BadInput(f"work_pool {pool}: " + "; ".join(problems))


def run_on_pool(
    flow_name: str, cfg: Config, parameters: dict[str, Any]
) -> tuple[dict[str, Any] | None, str, float]:
    """The environment's runbook as a deployment run, a child of the current run: its report,
    its error, when it ended."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    # Called from a thread, not a coroutine: the run as created (timeout 0), then waited for.
    run: FlowRun = run_deployment(  # type: ignore[assignment]
        f"{flow_name}/{deployment_name(flow_name, cfg.stack)}",
        parameters=parameters,
        flow_run_name=f"{flow_name}-{cfg.stack}",
        timeout=0,
        as_subflow=True,
    )
    run, interrupted = wait_for_run(run)
    ended = time.monotonic()
    state = run.state
    if interrupted:
        return None, f"{run.name}: cancelled, the fleet was interrupted", ended
    if state is None or not state.is_final():
        name = state.name if state else "not started"
        return None, f"{run.name}: still {name} after {DISPATCH_TIMEOUT_S} s", ended
    try:
        result = state.result(raise_on_failure=False)
    except Exception as exc:  # the result is gone (another machine's storage, say)
        result = exc
    if isinstance(result, dict):
        return result, "", ended
    if isinstance(result, BaseException):
        timeline = getattr(result, "timeline", None)
        report = timeline.model_dump(mode="json") if timeline is not None else None
        return report, f"{type(result).__name__}: {result}", ended
    return None, f"{run.name}: {state.name}: {state.message or 'no report'}", ended


def wait_for_run(run: Any) -> tuple[Any, bool]:
    """The run once it has ended (or the wait timed out), and whether the fleet was stopped
    meanwhile: then the run is cancelled (its worker stops it) and not waited for."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    deadline = time.monotonic() + DISPATCH_TIMEOUT_S
    with get_client(sync_client=True) as client:
        while not (run.state is not None and run.state.is_final()):
            if STOPPING.is_set():
                client.set_flow_run_state(
                    run.id, Cancelling(message="the fleet was interrupted"), force=True
                )
                return client.read_flow_run(run.id), True
            if time.monotonic() > deadline:
                break
            STOPPING.wait(DISPATCH_POLL_S)
            if not STOPPING.is_set():
                run = client.read_flow_run(run.id)
    return run, False
