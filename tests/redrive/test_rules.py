"""Pure rules of a redrive, on AWS-shaped payloads."""

from __future__ import annotations

import json
import sys
import uuid

import pytest

from configs.errors import BadInput
from tasks.runbooks.redrive.native import native_problems, task_progress
from tasks.runbooks.redrive.routes import QueueRef, Route, parse_ref, route_problems
from tasks.runbooks.redrive.rules import (
    Budget,
    RateLimiter,
    batches,
    canary_returned,
    clean_attributes,
    derived_dedup_id,
    fifo_ids,
    matches_all,
    parse_filter,
    parse_filters,
    parse_s3_url,
    send_entry,
    sort_batch_answer,
)
from tasks.runbooks.redrive.seen import MessageIdSet

NOW = 1_800_000_000_000


def message(body: str = "{}", *, mid: str = "m-1", age_s: float = 10, **attrs: str) -> dict:
    return {
        "MessageId": mid,
        "ReceiptHandle": "rh",
        "Body": body,
        "Attributes": {
            "SentTimestamp": str(int(NOW - age_s * 1000)),
            "ApproximateReceiveCount": "4",
            **attrs,
        },
        "MessageAttributes": {
            "kind": {
                "DataType": "String",
                "StringValue": "refund",
                "StringListValues": [],
                "BinaryListValues": [],
            },
            "tries": {"DataType": "Number", "StringValue": "3"},
        },
    }


@pytest.mark.parametrize(
    ("text", "body", "expected"),
    [
        ("attr.kind=refund", "{}", True),
        ("attr.kind=ref*", "{}", True),
        ("attr.kind!=refund", "{}", False),
        ("attr.missing=x", "{}", False),
        ("attr.missing!=x", "{}", True),
        ("attr.tries>=3", "{}", True),
        ("attr.tries>3", "{}", False),
        ("body.order.tier=gold", json.dumps({"order": {"tier": "gold"}}), True),
        ("body.order.tier=gold", json.dumps({"order": {"tier": "silver"}}), False),
        ("body.items.1.sku=B", json.dumps({"items": [{"sku": "A"}, {"sku": "B"}]}), True),
        ("body.amount>100", json.dumps({"amount": 150}), True),
        ("body.amount>100", "not json", False),
        ("body.ok=true", json.dumps({"ok": True}), True),
        ("body=*timeout*", "upstream timeout after 3s", True),
        ("age>5s", "{}", True),
        ("age>1m", "{}", False),
        ("age<=1h", "{}", True),
        ("receives>=4", "{}", True),
        ("receives<4", "{}", False),
    ],
)
def test_filters_match_like_an_operator_expects(text: str, body: str, expected: bool) -> None:
    assert parse_filter(text).matches(message(body), NOW) is expected


@pytest.mark.parametrize(
    "text", ["kind=refund", "attr.kind", "age=5m", "age>soon", "receives>many", "body.x~y"]
)
def test_malformed_filters_are_bad_input(text: str) -> None:
    with pytest.raises(BadInput):
        parse_filter(text)


def test_all_filters_must_match() -> None:
    filters = parse_filters(["attr.kind=refund", "receives>10"])
    assert not matches_all(filters, message(), NOW)
    assert matches_all([], message(), NOW)


def test_send_entry_keeps_body_attributes_and_trace_but_drops_receive_only_fields() -> None:
    m = message("hello", AWSTraceHeader="Root=1-abc")
    entry, rewritten = send_entry(m, "0", fifo=False, now_ms=NOW)
    assert entry == {
        "Id": "0",
        "MessageBody": "hello",
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "refund"},
            "tries": {"DataType": "Number", "StringValue": "3"},
        },
        "MessageSystemAttributes": {
            "AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}
        },
    }
    assert not rewritten
    assert clean_attributes({"b": {"DataType": "Binary", "BinaryValue": b"\x00"}}) == {
        "b": {"DataType": "Binary", "BinaryValue": b"\x00"}
    }


def test_fifo_dedup_id_is_rewritten_inside_the_window_and_stable_across_retries() -> None:
    recent = message(mid="abc", age_s=30, MessageGroupId="g1", MessageDeduplicationId="d1")
    group, dedup, rewritten = fifo_ids(recent, NOW)
    assert (group, rewritten) == ("g1", True)
    assert dedup == derived_dedup_id("abc") == fifo_ids(recent, NOW + 5000)[1]
    assert dedup != derived_dedup_id("abd") and len(dedup) <= 128


def test_fifo_dedup_id_is_kept_once_the_window_has_passed() -> None:
    old = message(mid="abc", age_s=3600, MessageGroupId="g1", MessageDeduplicationId="d1")
    assert fifo_ids(old, NOW) == ("g1", "d1", False)
    entry, _ = send_entry(old, "3", fifo=True, now_ms=NOW)
    assert (entry["MessageGroupId"], entry["MessageDeduplicationId"]) == ("g1", "d1")


def test_fifo_message_without_group_is_refused() -> None:
    with pytest.raises(BadInput, match="MessageGroupId"):
        fifo_ids(message(), NOW)


def test_batches_respect_count_and_payload_limits() -> None:
    small = [{"Id": str(i), "MessageBody": "x" * 10} for i in range(23)]
    assert [len(b) for b in batches(small)] == [10, 10, 3]
    big = [{"Id": str(i), "MessageBody": "x" * 100_000} for i in range(5)]
    assert [len(b) for b in batches(big)] == [2, 2, 1]
    huge = [{"Id": "0", "MessageBody": "x" * 300_000}, {"Id": "1", "MessageBody": "y"}]
    assert [len(b) for b in batches(huge)] == [1, 1]
    assert [e["Id"] for b in batches(small) for e in b] == [str(i) for i in range(23)]


def test_batch_answers_sort_into_done_retry_and_refused() -> None:
    answer = {
        "Successful": [{"Id": "0", "MessageId": "n0"}],
        "Failed": [
            {"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "boom"},
            {"Id": "2", "SenderFault": True, "Code": "InvalidParameterValue", "Message": "bad"},
        ],
    }
    out = sort_batch_answer(answer, ["0", "1", "2", "3"])
    assert out.done == {"0": "n0"}
    assert out.refused == {"2": "InvalidParameterValue: bad"}
    assert set(out.retry) == {"1", "3"}  # "3" was not mentioned: never assume it arrived


def test_rate_limiter_books_tokens_so_callers_queue_up() -> None:
    limiter = RateLimiter(10, burst=10)
    assert limiter.delay(10, now=0.0) == 0.0
    assert limiter.delay(10, now=0.0) == pytest.approx(1.0)
    assert limiter.delay(10, now=0.0) == pytest.approx(2.0)
    assert limiter.delay(5, now=10.0) == 0.0  # refilled, capped at the burst
    assert RateLimiter(None).delay(1000, now=0.0) == 0.0


def test_budget_never_overshoots_max() -> None:
    budget = Budget(25)
    got = [budget.reserve(10) for _ in range(4)]
    assert got == [10, 10, 5, 0]
    budget.give_back(3)
    assert budget.reserve(10) == 3
    assert Budget(None).reserve(10) == 10


def test_s3_urls_and_queue_references() -> None:
    assert parse_s3_url("s3://dlq-archive/orders/2026/") == ("dlq-archive", "orders/2026")
    assert parse_s3_url("s3://dlq-archive") == ("dlq-archive", "")
    with pytest.raises(BadInput):
        parse_s3_url("https://dlq-archive/x")
    assert parse_ref("arn:aws:sqs:eu-west-1:123456789012:jobs-dlq") == (
        "jobs-dlq",
        "eu-west-1",
        "123456789012",
    )
    assert parse_ref("https://sqs.us-west-2.amazonaws.com/123456789012/a.fifo") == (
        "a.fifo",
        "us-west-2",
        "123456789012",
    )
    assert parse_ref("http://127.0.0.1:5055/123456789012/q") == ("q", None, "123456789012")
    assert parse_ref("shop-dlq") == ("shop-dlq", None, None)
    with pytest.raises(BadInput):
        parse_ref("not a queue!")


def q(name: str, *, fifo: bool = False) -> QueueRef:
    return QueueRef(
        f"http://x/123456789012/{name}",
        f"arn:aws:sqs:us-east-1:123456789012:{name}",
        name,
        "us-east-1",
        fifo,
    )


def test_route_problems() -> None:
    dlq = q("orders-dlq")
    assert "not a dead-letter queue" in route_problems(dlq, [], None)[0]
    assert route_problems(dlq, [], q("replay")) == []
    assert "into itself" in route_problems(dlq, [q("a")], dlq)[0]
    assert "FIFO" in route_problems(q("p-dlq.fifo", fifo=True), [q("p")], None)[0]
    assert route_problems(dlq, [q("orders")], None) == []


def test_each_message_goes_back_where_sqs_says_it_came_from() -> None:
    a, b = q("a"), q("b")
    route = Route(q("dlq"), (a, b))
    assert route.destination_for({"Attributes": {"DeadLetterQueueSourceArn": b.arn}}) == b
    assert route.destination_for({"Attributes": {}}) is None
    assert Route(q("dlq"), (a,)).destination_for({}) == a
    assert Route(q("dlq"), (a, b), to=q("c")).destination_for({}) == q("c")


def test_native_mode_refuses_what_it_cannot_do() -> None:
    base = dict(
        filters=0,
        dry_run=False,
        archive=False,
        canary=0,
        max_messages=None,
        workers_given=False,
        rate=None,
    )
    assert native_problems(**base) == []
    assert native_problems(**{**base, "filters": 1, "dry_run": True}) == [
        "--filter needs --mode engine",
        "--dry-run needs --mode engine",
    ]
    assert "1..500" in native_problems(**{**base, "rate": 900})[0]
    assert (
        task_progress(
            {
                "Status": "RUNNING",
                "ApproximateNumberOfMessagesMoved": 25,
                "ApproximateNumberOfMessagesToMove": 100,
            }
        )
        == 0.25
    )
    assert task_progress({"Status": "COMPLETED"}) == 1.0


def test_canary_returned() -> None:
    assert canary_returned(["n1", "n2", "n3"], {"x", "n2", "n3"}) == ["n2", "n3"]
    assert canary_returned(["n1"], set()) == []


# --- the moved ids ---------------------------------------------------------------------------
def test_moved_ids_are_exact_across_merges_and_small() -> None:
    ids = [str(uuid.uuid4()) for _ in range(20_000)]
    moved = MessageIdSet()
    for i in ids[::2]:
        moved.add(i)
    moved.add(ids[0])  # twice: still one
    moved.add("m-1")  # not a UUID: kept as it is
    moved.add(ids[1].upper())  # another spelling is another id

    assert all(i in moved for i in ids[::2]) and "m-1" in moved
    assert not any(i in moved for i in ids[3::2]) and ids[1] not in moved
    assert len(moved) == 10_002
    merged = sys.getsizeof(moved._run.data)
    assert merged < 10_000 * 16 * 1.2  # 16 bytes a message once merged, not ~120
