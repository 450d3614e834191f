"""Which queues a redrive acts on: the DLQ, the queues it serves, and where messages go.

A DLQ is named by a config queue (``orders`` → ``<app>-<env>-orders-dlq``), a queue URL, an
ARN or a plain queue name. Its source queues come from ``ListDeadLetterSourceQueues``: a
queue that no RedrivePolicy points at is no DLQ, and is refused unless ``--to`` names the
destination. The checks (:func:`route_problems`) are pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from configs.errors import BadInput, NotFound, Refused
from configs.models import Config
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.retry import absent
from tasks.core.steps import step

_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<name>.+)$")


_URL = re.compile(r"^https?://(?P<host>[^/]+)/(?P<account>\d{12})/(?P<name>[^/?]+)")


_HOST_REGION = re.compile(r"(?:^|\.)(?:sqs\.)?(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d)\.")


@dataclass(frozen=True)
class QueueRef:
    url: str
    arn: str
    name: str
    region: str
    fifo: bool

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]


@dataclass(frozen=True)
class Route:
    """A DLQ, the queues that dead-letter into it, and the destination chosen by ``--to``."""

    dlq: QueueRef
    sources: tuple[QueueRef, ...]
    to: QueueRef | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def destination_for(self, message: dict[str, Any]) -> QueueRef | None:
        """Where one message goes: ``--to``; else the source SQS recorded on the message
        (``DeadLetterQueueSourceArn``); else the only source. None: cannot tell."""
        if self.to is not None:
            return self.to
        origin = (message.get("Attributes") or {}).get("DeadLetterQueueSourceArn")
        if origin:
            return next((q for q in self.sources if q.arn == origin), None)
        return self.sources[0] if len(self.sources) == 1 else None

    def describe(self) -> str:
        dest = self.to.name if self.to else ", ".join(q.name for q in self.sources)
        return f"{self.dlq.name} → {dest}"


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """(queue name, region or None, account or None) from an ARN, a URL or a bare name."""
    if m := _ARN.match(ref):
        return m["name"], m["region"], m["account"]
    if m := _URL.match(ref):
        host = _HOST_REGION.search(m["host"])
        return m["name"], host["region"] if host else None, m["account"]
    if re.fullmatch(r"[A-Za-z0-9_-]{1,75}(\.fifo)?", ref):
        return ref, None, None
    raise BadInput(f"{ref!r} is neither a queue name, a queue URL nor an SQS ARN")


def dlq_name_for(cfg: Config, ref: str) -> str:
    """A config queue's DLQ name, or ``ref`` itself when it names no config queue."""
    for q in cfg.queues:
        if q.name == ref:
            return names_for(cfg, "primary").dlq(q.name, fifo=q.fifo)
    return ref


def lookup(cfg: Config, ref: str, *, default_region: str | None = None) -> QueueRef:
    """Resolve ``ref`` to a queue that exists; :class:`NotFound` otherwise."""
    name, region, account = parse_ref(dlq_name_for(cfg, ref))
    if account and account != cfg.account_id:
        raise Refused(
            f"queue {ref} is in account {account}, but the config is for account {cfg.account_id}"
        )
    region = region or default_region or cfg.regions.primary
    sqs = connect(cfg).client("sqs", region)
    url = absent(
        lambda: sqs.get_queue_url(QueueName=name)["QueueUrl"],
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    )
    if url is None:
        raise NotFound(f"queue {name} does not exist in {region}")
    return describe_queue(cfg, url, region)


def describe_queue(cfg: Config, url: str, region: str) -> QueueRef:
    sqs = connect(cfg).client("sqs", region)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "FifoQueue"])[
        "Attributes"
    ]
    arn = attrs["QueueArn"]
    return QueueRef(
        url=url,
        arn=arn,
        name=arn.split(":")[-1],
        region=region,
        fifo=attrs.get("FifoQueue") == "true",
    )


def source_urls(cfg: Config, dlq: QueueRef) -> list[str]:
    sqs = connect(cfg).client("sqs", dlq.region)
    urls: list[str] = []
    for page in sqs.get_paginator("list_dead_letter_source_queues").paginate(QueueUrl=dlq.url):
        urls.extend(page.get("queueUrls") or [])
    return urls


def route_problems(dlq: QueueRef, sources: list[QueueRef], to: QueueRef | None) -> list[str]:
    """Why this redrive must not run (empty: it may)."""
    problems: list[str] = []
    if not sources and to is None:
        problems.append(
            f"{dlq.name} is not a dead-letter queue: no queue names it in its RedrivePolicy. "
            "Pass --to URL to move its messages to a queue of your choice."
        )
    targets = [to] if to is not None else sources
    for target in targets:
        if target.arn == dlq.arn:
            problems.append(f"{dlq.name} cannot be redriven into itself")
        elif target.fifo != dlq.fifo:
            kinds = ("FIFO", "standard") if dlq.fifo else ("standard", "FIFO")
            problems.append(
                f"{dlq.name} is a {kinds[0]} queue but {target.name} is {kinds[1]}: "
                "messages would lose their group and order"
            )
    return problems


@step("find DLQ {ref} and where its messages go")
def find_route(cfg: Config, ref: str, to: str | None = None) -> Route:
    """Resolve the DLQ, its sources and ``--to``; refuse a redrive that cannot be right."""
    dlq = lookup(cfg, ref)
    sources = [describe_queue(cfg, url, dlq.region) for url in source_urls(cfg, dlq)]
    dest = lookup(cfg, to, default_region=dlq.region) if to else None
    problems = route_problems(dlq, sources, dest)
    if problems:
        raise Refused("; ".join(problems))
    notes: tuple[str, ...] = ()
    if dest is None and len(sources) > 1:
        notes = (
            f"{dlq.name} serves {len(sources)} queues: each message goes back to the one "
            "SQS recorded on it (DeadLetterQueueSourceArn); messages without it stay put",
        )
    return Route(dlq=dlq, sources=tuple(sources), to=dest, notes=notes)


def queue_depth(cfg: Config, queue: QueueRef) -> dict[str, int]:
    """Approximate visible, in-flight and delayed counts of ``queue``."""
    sqs = connect(cfg).client("sqs", queue.region)
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
    }
