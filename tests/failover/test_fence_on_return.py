"""Fencing on return: a failover with the primary dark leaves its fence pending in the DR lock
table; the first run after the region answers again (the readiness drill, or any runbook)
fences the old primary's services, reports it, emits the event and clears the record. End to
end on the sandbox, state read back with plain boto3. One stack for the module: each test puts
the old primary back as a region returning from the dark would find it (services up, fence
pending)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from configs.errors import StepFailed
from configs.models import Config
from configs.names import names_for
from flows.audit import audit
from flows.failover import failover
from flows.readiness import readiness_drill
from flows.redrive import redrive
from sandbox.testing import CONFIG, Stack
from tasks.core.aws import connect
from tasks.core.records import fields_of, item_of
from tasks.resources.autoscaling import DIMENSION
from tasks.runbooks.failover.fencing import (
    EVENT,
    PendingFence,
    fence_fields,
    fence_id,
    fence_of,
    pending_fence,
    pending_fences,
    record_pending_fence,
)
from tasks.runbooks.failover.readiness import FENCE_CHECK, evaluate, fence_finding
from tests.failover.test_static_stability import EAST, dark
from tests.support import provisioned_stack

pytestmark = [pytest.mark.e2e]

COUNTS = {"web": 2, "worker": 1}  # configs/sandbox.yaml's desired counts


@pytest.fixture(scope="module")
def failed_over(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[tuple[Stack, dict[str, Any], dict[str, Any]]]:
    """A stack failed over with us-east-1 dark: (stack, the report, the fence record as the
    failover left it). Faults cleared again."""
    stack = provisioned_stack(aws_endpoint, moto_as_aws)
    dark(stack)
    try:
        report = failover(config=CONFIG, approved=True, reason="us-east-1 is dark")
        item = fence_record(stack)
    finally:
        stack.control.clear_faults()
    assert report["outcome"] == "succeeded", report["error"]
    yield stack, report, item


def fence_record(stack: Stack) -> dict[str, Any]:
    table = names_for(stack.cfg).lock_table
    key = {"lock_id": {"S": fence_id(stack.cfg.stack, EAST)}}
    got = stack.client("dynamodb", "dr").get_item(TableName=table, Key=key, ConsistentRead=True)
    return dict(got.get("Item", {}))


def scalable_range(stack: Stack, svc: str) -> tuple[int, int]:
    names = names_for(stack.cfg, "primary")
    target = stack.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs",
        ResourceIds=[f"service/{names.cluster}/{names.service(svc)}"],
        ScalableDimension=DIMENSION,
    )["ScalableTargets"][0]
    return target["MinCapacity"], target["MaxCapacity"]


def returned_unfenced(stack: Stack) -> None:
    """us-east-1 back as a dark failover leaves it: services at their counts, the fence
    pending (written as the failover writes it, when an earlier test cleared it)."""
    names = names_for(stack.cfg, "primary")
    ecs, aas = stack.client("ecs"), stack.client("application-autoscaling")
    for svc, n in COUNTS.items():
        spec = getattr(stack.cfg.services, svc)
        aas.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{names.cluster}/{names.service(svc)}",
            ScalableDimension=DIMENSION,
            MinCapacity=spec.min,
            MaxCapacity=spec.max,
        )
        ecs.update_service(cluster=names.cluster, service=names.service(svc), desiredCount=n)
    if not fence_record(stack):
        why = "us-east-1 does not answer"
        record_pending_fence(
            stack.cfg, pending_fence(stack.cfg, "primary", why=why, reason="test", run="")
        )
    connect(stack.cfg).forget_probes()


@pytest.fixture
def returned(failed_over: tuple[Stack, dict[str, Any], dict[str, Any]]) -> Stack:
    """The stack with us-east-1 back, unfenced."""
    returned_unfenced(failed_over[0])
    return failed_over[0]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The fence events emitted (the other events go out as usual)."""
    import prefect.events

    seen: list[dict[str, Any]] = []
    real = prefect.events.emit_event

    def emit(**kwargs: Any) -> Any:
        if kwargs["event"] == EVENT:
            seen.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(prefect.events, "emit_event", emit)
    return seen


def assert_fenced(stack: Stack) -> None:
    for svc in COUNTS:
        assert stack.service("primary", svc)["desiredCount"] == 0, svc
        assert scalable_range(stack, svc) == (0, 0), svc
    assert fence_record(stack) == {}


FENCE = PendingFence(
    environment="app-sandbox",
    region=EAST,
    role="primary",
    services=("app-web", "app-worker"),
    database="app-db",
    since=1.0,
    run="r1",
    reason="dark",
)


def test_a_record_reads_back_as_written_and_the_check_decides_from_it() -> None:
    item = item_of(fence_id(FENCE.environment, FENCE.region), "fence", fence_fields(FENCE))
    assert item["services"] == {"L": [{"S": "app-web"}, {"S": "app-worker"}]}
    assert fence_of(fields_of(item)) == FENCE
    assert fence_finding(None, None).status == "pass"
    dark_ = fence_finding(FENCE, None)
    assert dark_.status == "fail" and not dark_.blocking and "does not answer" in dark_.detail
    serving = fence_finding(FENCE, {"app-web": 2, "app-worker": 0})
    assert serving.status == "fail" and "runs app-web=2" in serving.detail
    assert "old primary still serving after a failover" in serving.detail
    assert fence_finding(FENCE, {"app-web": 0}).status == "warn"


def test_before_provision_no_table_is_no_fence(sandbox_cfg: Config) -> None:
    """No lock table yet: nothing pending, and nothing fails."""
    assert pending_fences(sandbox_cfg) == []


def test_a_run_opens_with_its_three_reads_at_once(
    sandbox_cfg: Config, prefect_harness: None
) -> None:
    """``open_run``: the pending fences (DR's lock table) and DR's database are read while the
    account is being checked: STS answers only once both reads have gone out (one at a time,
    they would wait for its answer and it for them). Then the checks act in their order."""
    import threading

    from prefect import flow

    from flows.guards import open_run, refuse_if_failed_over
    from flows.report import runbook
    from tasks.core.aws import forget_connections

    forget_connections()  # clients copy the session's hooks when they are made
    events = connect(sandbox_cfg).session.events
    went_out = {"dynamodb": threading.Event(), "rds": threading.Event()}
    answered_after: list[bool] = []

    def read_started(model: Any, **_: Any) -> None:
        went_out[model.service_model.endpoint_prefix].set()

    def hold_sts(**_: Any) -> None:
        answered_after.append(all(e.wait(10) for e in went_out.values()))

    events.register("before-call.dynamodb.BatchGetItem", read_started)
    events.register("before-call.rds.DescribeDBInstances", read_started)
    events.register("before-call.sts.GetCallerIdentity", hold_sts)

    @flow(name="open-run-under-test", persist_result=False)
    def opened() -> dict[str, Any]:
        with runbook("open-run", sandbox_cfg.stack) as tl:
            open_run(tl, sandbox_cfg, dry_run=False, refuse=refuse_if_failed_over)
        return tl.model_dump(mode="json")

    try:
        report = opened()
    finally:
        forget_connections()
    assert answered_after == [True]
    assert report["outcome"] == "succeeded" and report["changes"] == []
    assert "fenced_on_return" not in report["metrics"]
    assert [s["step"] for s in report["steps"]] == ["check account"]


def test_a_dark_failover_records_the_fence_and_readiness_fails_until_it_is_applied(
    failed_over: tuple[Stack, dict[str, Any], dict[str, Any]],
) -> None:
    stack, report, item = failed_over
    assert report["metrics"]["fencing"].startswith("skipped:")
    assert any("fence of us-east-1 pending" in n for n in report["notes"]), report["notes"]
    names = names_for(stack.cfg, "primary")
    assert item["kind"]["S"] == "fence" and item["region"]["S"] == EAST
    assert item["environment"]["S"] == stack.cfg.stack
    assert {s["S"] for s in item["services"]["L"]} == {names.service(s) for s in COUNTS}
    assert item["reason"]["S"] == "us-east-1 is dark" and item["run"]["S"]
    assert item["database"]["S"] == names.db_instance and float(item["since"]["N"]) > 0

    # Still dark: the drill cannot fence, keeps the record (and the services their counts)
    # and fails the check.
    returned_unfenced(stack)
    dark(stack)
    try:
        with pytest.raises(StepFailed, match="old primary still serving after a failover"):
            readiness_drill(config=CONFIG)
    finally:
        stack.control.clear_faults()
    assert fence_record(stack)
    assert stack.service("primary", "web")["desiredCount"] == 2

    # Back, and no run yet: the check names what still runs there.
    connect(stack.cfg).forget_probes()
    found = {f.check: f for f in evaluate(stack.cfg).findings}
    assert found[FENCE_CHECK].status == "fail" and not found[FENCE_CHECK].blocking
    assert "web=2" in found[FENCE_CHECK].detail and names.db_instance in found[FENCE_CHECK].detail


def test_the_readiness_drill_fences_the_old_primary_on_its_return(
    returned: Stack, events: list[dict[str, Any]]
) -> None:
    stack = returned
    report = readiness_drill(config=CONFIG)

    assert report["outcome"] == "succeeded", report["error"]
    assert_fenced(stack)
    assert report["metrics"]["fenced_on_return"] == EAST
    fenced = {(c["resource"], c["name"], c["region"]) for c in report["changes"]}
    names = names_for(stack.cfg, "primary")
    assert fenced == {("ecs:service", names.service(s), EAST) for s in COUNTS}
    notes = " ".join(report["notes"])
    assert "fenced on return" in notes and f"database {names.db_instance} left untouched" in notes
    assert "readiness old-primary-fenced: pass" in notes
    assert [e["payload"]["region"] for e in events] == [EAST]
    assert events[0]["payload"]["database"] == names.db_instance
    # The old database is left as it was, for inspection.
    assert stack.db("primary")["DBInstanceStatus"] == "available"

    again = readiness_drill(config=CONFIG)
    assert again["changes"] == [] and "fenced_on_return" not in again["metrics"]
    assert not [s for s in again["steps"] if "on its return" in s["step"]]
    assert len(events) == 1


def test_any_runbook_fences_on_return(returned: Stack, events: list[dict[str, Any]]) -> None:
    """The audit, read-only, names the pending fence and leaves it; a redrive (which changes
    the stack) fences."""
    stack = returned
    audited = audit(config=CONFIG)
    assert audited["metrics"]["fence_pending"] == EAST
    assert stack.service("primary", "web")["desiredCount"] > 0 and not events
    report = redrive(config=CONFIG, queue="orders", approved=True)
    assert report["metrics"]["fenced_on_return"] == EAST
    steps = {s["step"]: s["outcome"] for s in report["steps"]}
    assert steps[f"fence {EAST} on its return"] == "changed"
    assert_fenced(stack)
    assert len(events) == 1
