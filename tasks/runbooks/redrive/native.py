"""Native mode: SQS's own message move task (``StartMessageMoveTask``).

SQS moves the messages itself, at up to 500 messages/s, back to each message's source queue
(or to one destination), keeping everything about them. It cannot filter, peek or archive,
and runs one task per DLQ at a time; the engine does those. Progress comes from
``ListMessageMoveTasks``; an interrupted run cancels its task
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from configs.errors import BadInput, DeadlineExceeded, Refused, StepFailed
from configs.models import Config
from tasks.core.aws import connect
from tasks.core.log import logger
from tasks.core.retry import wait_for
from tasks.core.steps import step
from tasks.runbooks.redrive.routes import Route
from tasks.runbooks.redrive.rules import NATIVE_MAX_VELOCITY

ACTIVE = ("RUNNING", "CANCELLING")


FINISHED = ("COMPLETED", "CANCELLED", "FAILED")


DEFAULT_TIMEOUT_S = 6 * 3600.0


POLL_S = 5.0


def native_problems(
    *,
    filters: int,
    dry_run: bool,
    archive: bool,
    canary: int,
    max_messages: int | None,
    workers_given: bool,
    rate: float | None,
) -> list[str]:
    """Options native mode cannot honour: refuse rather than silently ignore them."""
    problems = [
        f"{name} needs --mode engine"
        for name, used in (
            ("--filter", filters > 0),
            ("--dry-run", dry_run),
            ("--archive", archive),
            ("--canary", canary > 0),
            ("--max", max_messages is not None),
            ("--workers", workers_given),
        )
        if used
    ]
    if rate is not None and not 1 <= rate <= NATIVE_MAX_VELOCITY:
        problems.append(f"--rate in native mode is 1..{NATIVE_MAX_VELOCITY} messages/s")
    return problems


def task_progress(task: dict[str, Any]) -> float:
    """Fraction done of one ``ListMessageMoveTasks`` result (0 when SQS gives no total)."""
    total = int(task.get("ApproximateNumberOfMessagesToMove") or 0)
    moved = int(task.get("ApproximateNumberOfMessagesMoved") or 0)
    if task.get("Status") == "COMPLETED":
        return 1.0
    return min(1.0, moved / total) if total else 0.0


def find_task(tasks: list[dict[str, Any]], handle: str, since_ms: int) -> dict[str, Any] | None:
    """Our task in a ``ListMessageMoveTasks`` answer. SQS shows ``TaskHandle`` only while a
    task runs; once it ended, ours is the latest one started since we started it (one task
    per queue at a time)."""
    for task in tasks:
        if task.get("TaskHandle") == handle:
            return task
    ended = [
        t
        for t in tasks
        if "TaskHandle" not in t and int(t.get("StartedTimestamp") or 0) >= since_ms
    ]
    return max(ended, key=lambda t: int(t.get("StartedTimestamp") or 0)) if ended else None


def _tasks(cfg: Config, route: Route) -> list[dict[str, Any]]:
    sqs = connect(cfg).client("sqs", route.dlq.region)
    answer = sqs.list_message_move_tasks(SourceArn=route.dlq.arn, MaxResults=10)
    return list(answer.get("Results") or [])


@step("start message move task from {route.dlq.name}")
def start_move_task(cfg: Config, route: Route, rate: float | None = None) -> str:
    """Start SQS's move task; refuse when one already runs on this DLQ. Not idempotent:
    each call starts a task, so the check for a running one comes first."""
    running = [t for t in _tasks(cfg, route) if t.get("Status") in ACTIVE]
    if running:
        raise Refused(
            f"a message move task already runs on {route.dlq.name} "
            f"({running[0].get('TaskHandle', '?')}); SQS allows one per queue"
        )
    params: dict[str, Any] = {"SourceArn": route.dlq.arn}
    if route.to is not None:
        params["DestinationArn"] = route.to.arn
    if rate is not None:
        params["MaxNumberOfMessagesPerSecond"] = int(rate)
    sqs = connect(cfg).client("sqs", route.dlq.region)
    handle = str(sqs.start_message_move_task(**params)["TaskHandle"])
    logger().info("started message move task %s on %s", handle, route.dlq.name)
    return handle


def cancel_move_task(cfg: Config, route: Route, handle: str) -> int:
    """Cancel the task; SQS answers how many messages it had moved."""
    sqs = connect(cfg).client("sqs", route.dlq.region)
    answer = sqs.cancel_message_move_task(TaskHandle=handle)
    return int(answer.get("ApproximateNumberOfMessagesMoved") or 0)


@step("wait for message move task on {route.dlq.name}")
def wait_for_move_task(
    cfg: Config,
    route: Route,
    handle: str,
    *,
    since_ms: int = 0,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = POLL_S,
) -> dict[str, Any]:
    """Poll ``ListMessageMoveTasks`` until the task ends; cancel it on Ctrl-C or deadline."""

    def probe() -> dict[str, Any]:
        task = find_task(_tasks(cfg, route), handle, since_ms)
        if task is None:  # rotated out of the latest-10 list already
            task = {"TaskHandle": handle, "Status": "UNKNOWN"}
        if on_progress is not None:
            on_progress(task)
        return task

    try:
        task = wait_for(
            probe,
            until=lambda t: t.get("Status") in FINISHED or t.get("Status") == "UNKNOWN",
            what=f"message move task {handle}",
            timeout_s=timeout_s,
            interval_s=interval_s,
            describe=_describe,
        )
    except (KeyboardInterrupt, DeadlineExceeded):
        moved = cancel_move_task(cfg, route, handle)
        logger().warning("cancelled message move task %s after %d moved", handle, moved)
        raise
    if task.get("Status") == "FAILED":
        raise StepFailed(
            f"message move task {handle} failed after "
            f"{task.get('ApproximateNumberOfMessagesMoved', 0)} messages: "
            f"{task.get('FailureReason', 'no reason given')}"
        )
    if task.get("Status") == "CANCELLED":
        raise StepFailed(f"message move task {handle} was cancelled outside this run")
    return task


def _describe(task: dict[str, Any]) -> str:
    return f"{task.get('Status')}, {task.get('ApproximateNumberOfMessagesMoved', 0)} moved"


def check_native(**options: Any) -> None:
    problems = native_problems(**options)
    if problems:
        raise BadInput("native mode: " + "; ".join(problems))
