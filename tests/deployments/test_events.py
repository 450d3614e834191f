"""Every mutating AWS call of a run is a ``tierbook.aws.*`` event for automations, whichever
thread made it (the failover fences the primary's services from a worker thread of its own)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker

from flows.failover import failover
from sandbox.testing.prefect import SERVER_TEST_TIMEOUT_S
from tasks.core.aws import QUIET_OPERATIONS, is_mutating
from tests.failover.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(SERVER_TEST_TIMEOUT_S)]

REST = ("rest-json", "rest-xml")
WRITES = ("POST", "PUT", "PATCH", "DELETE")
# Services whose requests the sandbox may name by method and path (signing name = model name).
REST_SERVICES = ("route53", "cloudfront", "s3")
MODELS = botocore.session.get_session()


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsWorker]:
    """Every event emitted from any thread, kept in memory."""
    AssertingEventsClient.reset()
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)
    yield worker
    worker.drain()


def label(service_model: Any, operation: str) -> str:
    """How the sandbox names a call: by operation, or for a REST API (Route 53, S3…) by its
    HTTP method, the only part of the request that names what it does."""
    if service_model.protocol in REST:
        return f"{service_model.signing_name} {service_model.operation_model(operation).http['method']}"
    return f"{service_model.signing_name} {operation}"


def sandbox_mutations(before: dict[str, int], after: dict[str, int]) -> Counter[str]:
    """The mutating requests the sandbox answered between two ``stats()``, labelled as
    :func:`label` does."""
    out: Counter[str] = Counter()
    for key, n in after.items():
        service, operation = key.split(" ", 1)[1].split(":", 1)
        if service == "route53" and re.fullmatch(r"POST /2013-04-01/tags/[a-z]+", operation):
            continue  # ListTagsForResources: a read that Route 53's REST API sends as a POST
        verb = operation.split(" ", 1)[0]
        if service in REST_SERVICES and verb not in ("GET", "HEAD", *WRITES):
            verb = MODELS.get_service_model(service).operation_model(operation).http["method"]
        if verb in ("GET", "HEAD", *WRITES):
            if verb in WRITES:
                out[f"{service} {verb}"] += n - before.get(key, 0)
        elif is_mutating(operation) and operation not in QUIET_OPERATIONS:
            out[f"{service} {operation}"] += n - before.get(key, 0)
    return +out


def test_a_failovers_mutating_calls_are_all_events_of_its_run(
    stack: Stack, events: EventsWorker
) -> None:
    before = stack.control.stats()["requests"]
    report = failover(config="configs/sandbox.yaml", approved=True, reason="events")
    after = stack.control.stats()["requests"]
    assert report["outcome"] == "succeeded", report.get("error")
    events.drain()

    emitted = list(
        {
            e.id: e
            for client in AssertingEventsClient.all
            for e in client.events
            if e.event.startswith("tierbook.aws.")
        }.values()
    )
    made = sandbox_mutations(before, after)
    assert made, "the failover changed nothing?"
    seen = Counter(
        label(MODELS.get_service_model(e.payload["service"]), e.payload["operation"])
        for e in emitted
    )
    # Every kind of mutating call the sandbox answered is an event, and no event is without
    # its request. Not equal counts: the sandbox also counts a request that failed or timed
    # out and was retried (short timeouts on the region being fenced), which is no mutation.
    assert set(seen) == set(made), (seen, made)
    assert all(seen[k] <= made[k] for k in seen), (seen, made)
    fenced = [
        e
        for e in emitted
        if e.payload["operation"] == "UpdateService"
        and e.payload["region"] == stack.cfg.regions.primary
    ]
    assert fenced  # scaled to 0 by the fence's own thread
    runs = {r.id for e in emitted for r in e.related if r.id.startswith("prefect.flow-run.")}
    assert len(runs) == 1  # all of them related to the failover's run
