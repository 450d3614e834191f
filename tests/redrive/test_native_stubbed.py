"""Native mode against botocore's Stubber: moto has no message move tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.stub import Stubber

from configs import load_config
from configs.errors import DeadlineExceeded, Refused, StepFailed
from tasks.core.aws import connect, forget_connections
from tasks.runbooks.redrive.native import start_move_task, wait_for_move_task
from tasks.runbooks.redrive.routes import QueueRef, Route

ROOT = Path(__file__).resolve().parents[2]
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:shop-sandbox-orders-dlq"
SRC_ARN = "arn:aws:sqs:us-east-1:123456789012:shop-sandbox-orders"
ROUTE = Route(
    dlq=QueueRef(
        "http://x/123456789012/shop-sandbox-orders-dlq",
        DLQ_ARN,
        "shop-sandbox-orders-dlq",
        "us-east-1",
        False,
    ),
    sources=(
        QueueRef(
            "http://x/123456789012/shop-sandbox-orders",
            SRC_ARN,
            "shop-sandbox-orders",
            "us-east-1",
            False,
        ),
    ),
)


@pytest.fixture
def stubbed() -> Iterator[tuple[object, Stubber]]:
    forget_connections()
    cfg = load_config(ROOT / "configs" / "sandbox.yaml")
    aws = connect(cfg)
    aws._verified_account = cfg.account_id  # no STS behind the stub
    client = aws.client("sqs", "us-east-1")
    with Stubber(client) as stub:
        yield cfg, stub
        stub.assert_no_pending_responses()
    forget_connections()


def task(status: str, moved: int, total: int = 100, **extra: object) -> dict:
    """A ListMessageMoveTasks result: SQS shows the handle only while the task runs."""
    return {
        **({"TaskHandle": "h-1"} if status == "RUNNING" else {}),
        "StartedTimestamp": 2_000,
        "Status": status,
        "SourceArn": DLQ_ARN,
        "ApproximateNumberOfMessagesMoved": moved,
        "ApproximateNumberOfMessagesToMove": total,
        **extra,
    }


def test_starts_a_task_with_velocity_and_follows_it_to_the_end(stubbed) -> None:  # type: ignore[no-untyped-def]
    cfg, stub = stubbed
    stub.add_response(
        "list_message_move_tasks",
        {"Results": [task("COMPLETED", 5, 5)]},
        {"SourceArn": DLQ_ARN, "MaxResults": 10},
    )
    stub.add_response(
        "start_message_move_task",
        {"TaskHandle": "h-1"},
        {"SourceArn": DLQ_ARN, "MaxNumberOfMessagesPerSecond": 50},
    )
    for moved, status in ((10, "RUNNING"), (60, "RUNNING"), (100, "COMPLETED")):
        stub.add_response(
            "list_message_move_tasks",
            {"Results": [task(status, moved)]},
            {"SourceArn": DLQ_ARN, "MaxResults": 10},
        )
    seen: list[int] = []

    handle = start_move_task.fn(cfg, ROUTE, 50)
    final = wait_for_move_task.fn(
        cfg,
        ROUTE,
        handle,
        interval_s=0.01,
        on_progress=lambda t: seen.append(t["ApproximateNumberOfMessagesMoved"]),
    )

    assert handle == "h-1" and final["Status"] == "COMPLETED"
    assert seen == [10, 60, 100]


def test_a_destination_is_passed_through(stubbed) -> None:  # type: ignore[no-untyped-def]
    cfg, stub = stubbed
    other = QueueRef("u", "arn:aws:sqs:us-east-1:123456789012:replay", "replay", "us-east-1", False)
    stub.add_response(
        "list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 10}
    )
    stub.add_response(
        "start_message_move_task",
        {"TaskHandle": "h-2"},
        {"SourceArn": DLQ_ARN, "DestinationArn": other.arn},
    )
    route = Route(ROUTE.dlq, ROUTE.sources, to=other)
    assert start_move_task.fn(cfg, route, None) == "h-2"


def test_a_running_task_is_refused_before_starting_another(stubbed) -> None:  # type: ignore[no-untyped-def]
    cfg, stub = stubbed
    stub.add_response(
        "list_message_move_tasks",
        {"Results": [task("RUNNING", 3)]},
        {"SourceArn": DLQ_ARN, "MaxResults": 10},
    )
    with pytest.raises(Refused, match="already runs"):
        start_move_task.fn(cfg, ROUTE, None)


def test_a_failed_task_fails_the_step_with_its_reason(stubbed) -> None:  # type: ignore[no-untyped-def]
    cfg, stub = stubbed
    stub.add_response(
        "list_message_move_tasks",
        {"Results": [task("FAILED", 40, FailureReason="AccessDenied on destination")]},
        {"SourceArn": DLQ_ARN, "MaxResults": 10},
    )
    with pytest.raises(StepFailed, match="AccessDenied on destination"):
        wait_for_move_task.fn(cfg, ROUTE, "h-1", since_ms=1_000, interval_s=0.01)


def test_an_interrupt_cancels_the_task(stubbed) -> None:  # type: ignore[no-untyped-def]
    cfg, stub = stubbed
    stub.add_response(
        "list_message_move_tasks",
        {"Results": [task("RUNNING", 10)]},
        {"SourceArn": DLQ_ARN, "MaxResults": 10},
    )
    stub.add_response(
        "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 12}, {"TaskHandle": "h-1"}
    )

    def ctrl_c(_task: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wait_for_move_task.fn(cfg, ROUTE, "h-1", interval_s=0.01, on_progress=ctrl_c)


def test_a_deadline_cancels_the_task(stubbed) -> None:  # type: ignore[no-untyped-def]
    cfg, stub = stubbed
    # One probe inside the deadline, one after it (poll intervals are scaled down in tests).
    for _ in range(2):
        stub.add_response(
            "list_message_move_tasks",
            {"Results": [task("RUNNING", 10)]},
            {"SourceArn": DLQ_ARN, "MaxResults": 10},
        )
    stub.add_response(
        "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 10}, {"TaskHandle": "h-1"}
    )

    with pytest.raises(DeadlineExceeded):
        wait_for_move_task.fn(cfg, ROUTE, "h-1", timeout_s=0.05, interval_s=5)


def test_an_ended_task_is_found_without_its_handle() -> None:
    from tasks.runbooks.redrive.native import find_task

    older = task("COMPLETED", 5) | {"StartedTimestamp": 500}
    ours = task("FAILED", 7) | {"StartedTimestamp": 2_000}
    assert find_task([ours, older], "h-1", since_ms=1_000) == ours
    assert find_task([older], "h-1", since_ms=1_000) is None
    assert find_task([task("RUNNING", 1)], "h-1", since_ms=0)["TaskHandle"] == "h-1"
