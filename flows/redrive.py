"""Redrive: move the messages of a dead-letter queue back to their source queue, safely.

1. Check the request (filters, archive, mode) — bad input fails before any AWS call.
2. Find the DLQ, the queues it serves, and the destination; refuse what cannot be right.
3. Approval for a protected environment (not for a dry run); take the redrive lock.
4. Native mode: SQS's own move task, followed to the end. Engine mode: optionally a canary
   (move N, wait, stop if they came back), then the batch mover.
5. Report: counts (moved, filtered out, failed, archived), timeline, progress artifact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, Literal

from prefect import flow

from configs import resolve_config
from configs.errors import BadInput, DeadlineExceeded, StepFailed
from configs.models import Config
from flows.approval import approve
from flows.fencing import fence_on_return
from flows.report import Timeline, artifact_key, runbook
from tasks.core.locks import hold
from tasks.core.retry import wait_for
from tasks.core.steps import step
from tasks.runbooks.redrive import native
from tasks.runbooks.redrive.engine import (
    DEFAULT_VISIBILITY_S,
    DEFAULT_WORKERS,
    Engine,
    EngineSettings,
    scan_message_ids,
)
from tasks.runbooks.redrive.routes import Route, find_route, queue_depth
from tasks.runbooks.redrive.rules import canary_returned, now_ms, parse_filters, parse_s3_url
from tasks.runbooks.redrive.tally import Tally

CANARY_WAIT_S = 60.0
CLOCK_SKEW_MS = 5000

# (counts, total) → None. The CLI sets one to draw its progress bar.
Listener = Callable[[dict[str, Any], int | None], None]
PROGRESS_LISTENER: ContextVar[Listener | None] = ContextVar("redrive_progress", default=None)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    token = PROGRESS_LISTENER.set(listener)
    try:
        yield
    finally:
        PROGRESS_LISTENER.reset(token)


class ProgressFeed:
    """Feeds counts to the CLI's listener and to a Prefect progress artifact (≤ 1 update/s)."""

    def __init__(self, env: str, dlq: str, total: int | None) -> None:
        self.total = total
        self.listener = PROGRESS_LISTENER.get()
        self.artifact_id: Any = None
        self._last = 0.0
        self._lock = threading.Lock()
        from prefect.context import FlowRunContext

        if FlowRunContext.get() is not None:
            try:
                from prefect.artifacts import create_progress_artifact

                self.artifact_id = create_progress_artifact(
                    progress=0.0,
                    key=artifact_key(f"redrive-progress-{env}"),
                    description=f"redrive of {dlq}",
                )
            except Exception:  # a progress bar must never stop a redrive
                self.artifact_id = None

    def __call__(self, counts: dict[str, Any]) -> None:
        if self.listener is not None:
            self.listener(counts, self.total)
        now = time.monotonic()
        if self.artifact_id is None or now - self._last < 1.0:
            return
        self._last = now
        self.publish(counts.get("received", 0))

    def publish(self, done: int, *, final: bool = False) -> None:
        if self.artifact_id is None:
            return
        pct = 100.0 if final else (100.0 * done / self.total if self.total else 0.0)
        try:
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(artifact_id=self.artifact_id, progress=min(100.0, pct))
        except Exception:
            pass


class Moved:
    """The engine's result as a step outcome on the timeline."""

    def __init__(self, tally: Tally, dry_run: bool, seconds: float) -> None:
        self.tally, self.dry_run, self.seconds = tally, dry_run, seconds

    def outcome(self) -> str:
        if self.tally.failed or self.tally.interrupted:
            return "failed"
        if self.dry_run:
            return "planned"
        return "changed" if self.tally.moved else "unchanged"

    def describe(self) -> str:
        t = self.tally
        if self.dry_run:
            return f"would move {t.would_move}, filtered out {t.filtered_out} (nothing changed)"
        return (
            f"moved {t.moved}, filtered out {t.filtered_out}, failed {t.failed}, "
            f"archived {t.archived}" + (" (interrupted)" if t.interrupted else "")
        )


@step("redrive {route.dlq.name}")
def move_messages(
    cfg: Config, route: Route, settings: EngineSettings, feed: ProgressFeed | None = None
) -> Moved:
    started = time.monotonic()
    tally = Engine(cfg, route, settings, on_progress=feed).run()
    return Moved(tally, settings.dry_run, time.monotonic() - started)


@step("canary: have the first {count} come back to the DLQ?")
def wait_for_canary(
    cfg: Config, route: Route, sent_ids: list[str], count: int, wait_s: float
) -> dict[str, Any]:
    """Watch the DLQ for ``wait_s``: any canary message back there means the consumers still
    fail, so the redrive stops with the rest untouched."""

    def probe() -> list[str]:
        return canary_returned(sent_ids, scan_message_ids(cfg, route.dlq))

    try:
        back = wait_for(
            probe,
            until=bool,
            what="canary messages back in the DLQ",
            timeout_s=wait_s,
            interval_s=max(1.0, wait_s / 4),
        )
    except DeadlineExceeded:
        return {"returned": 0, "sent": len(sent_ids)}
    raise StepFailed(
        f"canary: {len(back)} of {len(sent_ids)} redriven messages came back to "
        f"{route.dlq.name} within {wait_s:g}s; stopped, the rest stays in the DLQ"
    )


@flow(name="redrive", persist_result=False)
def redrive(
    config: str = "sandbox",
    queue: str = "",
    to: str | None = None,
    dry_run: bool = False,
    filters: list[str] | None = None,
    max_messages: int | None = None,
    rate: float | None = None,
    workers: int | None = None,
    archive: str | None = None,
    mode: Literal["engine", "native"] = "engine",
    canary: int = 0,
    canary_wait_s: float = CANARY_WAIT_S,
    visibility_timeout_s: int = DEFAULT_VISIBILITY_S,
    approved: bool = False,
) -> dict[str, Any]:
    """Move a DLQ's messages back to their source queue (or ``to``).

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        queue: The dead-letter queue: a config queue name (orders), a queue URL or an ARN.
        to: Destination queue (name, URL or ARN) instead of the source (empty: the source).
        dry_run: Show what would move; change nothing.
        filters: Move only messages matching all of these: ``attr.NAME=VALUE``,
            ``body.PATH=VALUE`` (globs ``*`` ``?``), ``!=``; ``age>5m``, ``receives>=3``
            (empty: all).
        max_messages: Stop after this many messages (empty: all of them).
        rate: At most this many messages a second (empty: no limit).
        workers: Parallel workers, engine mode (empty: 4).
        archive: ``s3://BUCKET/PREFIX``: keep every moved message as JSON (empty: none).
        mode: engine: tierbook moves them (filters, archive, dry run); native: SQS's own
            message move task.
        canary: Move this many first; stop if they come back (0: no canary).
        canary_wait_s: How long to watch the canary messages (seconds).
        visibility_timeout_s: Seconds a received message stays hidden; after a crash it is
            back this soon.
        approved: Approval given up front for a protected environment (``--yes``);
            otherwise a run from a deployment pauses for approval.
    """
    cfg = resolve_config(config)
    parsed = tuple(parse_filters(filters or []))
    target = parse_s3_url(archive) if archive else None
    _check_numbers(max_messages, rate, workers, canary, visibility_timeout_s)
    if mode == "native":
        native.check_native(
            filters=len(parsed),
            dry_run=dry_run,
            archive=bool(archive),
            canary=canary,
            max_messages=max_messages,
            workers_given=workers is not None,
            rate=rate,
        )
    if not queue:
        names = ", ".join(q.name for q in cfg.queues) or "none"
        raise BadInput(f"name the DLQ to redrive: a config queue ({names}), a URL or an ARN")
    settings = EngineSettings(
        filters=parsed,
        dry_run=dry_run,
        max_messages=max_messages,
        rate=rate,
        workers=workers or DEFAULT_WORKERS,
        visibility_s=visibility_timeout_s,
        archive=target,
    )
    with runbook("redrive", cfg.stack) as tl:
        fence_on_return(tl, cfg, dry_run=dry_run)
        route = find_route(cfg, queue, to)
        for note in route.notes:
            tl.note(note)
        depth = queue_depth(cfg, route.dlq)
        tl.metrics.update({"mode": mode, "route": route.describe(), "dlq_at_start": depth})
        if not dry_run:
            approve(
                tl,
                needed=cfg.protected,
                approved=approved,
                what=f"redriving {route.dlq.name}",
                stack=cfg.stack,
            )
        guard = (
            nullcontext()
            if dry_run
            else hold(
                cfg,
                f"redrive-{route.dlq.name}",
                region=route.dlq.region,
                purpose=f"redrive {route.describe()}",
            )
        )
        with guard:
            if mode == "native":
                _native(tl, cfg, route, rate, depth["visible"])
            else:
                _engine(tl, cfg, route, settings, canary, canary_wait_s, depth["visible"])
    return tl.model_dump(mode="json")


def _check_numbers(
    max_messages: int | None, rate: float | None, workers: int | None, canary: int, vis: int
) -> None:
    problems = []
    if max_messages is not None and max_messages < 1:
        problems.append("--max must be at least 1")
    if rate is not None and rate <= 0:
        problems.append("--rate must be above 0 messages/s")
    if workers is not None and not 1 <= workers <= 32:
        problems.append("--workers must be 1..32")
    if canary < 0:
        problems.append("--canary must be 0 or more")
    if not 1 <= vis <= 43200:
        problems.append("--visibility-timeout must be 1..43200 s")
    if problems:
        raise BadInput("; ".join(problems))


def _engine(
    tl: Timeline,
    cfg: Config,
    route: Route,
    settings: EngineSettings,
    canary: int,
    canary_wait_s: float,
    visible: int,
) -> None:
    total = min(visible, settings.max_messages) if settings.max_messages else visible
    feed = ProgressFeed(cfg.stack, route.dlq.name, total)
    tallies: list[Moved] = []
    try:
        if canary and not settings.dry_run:
            first = move_messages(cfg, route, _with(settings, max_messages=canary), feed)
            tallies.append(first)
            if first.tally.failed or first.tally.interrupted:
                raise StepFailed(f"canary: {first.describe()}")
            wait_for_canary(cfg, route, list(first.tally.sent_ids), canary, canary_wait_s)
            left = settings.max_messages - first.tally.moved if settings.max_messages else None
            if left is None or left > 0:
                tallies.append(move_messages(cfg, route, _with(settings, max_messages=left), feed))
        else:
            tallies.append(move_messages(cfg, route, settings, feed))
    finally:
        _report(tl, tallies)
        feed.publish(sum(m.tally.received for m in tallies), final=True)
    failed = sum(m.tally.failed for m in tallies)
    if any(m.tally.interrupted for m in tallies):
        raise StepFailed("interrupted: batches in flight finished, the rest stays in the DLQ")
    if failed:
        reasons = sorted({f["reason"] for m in tallies for f in m.tally.failures})[:3]
        raise StepFailed(
            f"{failed} message(s) could not be moved and stay in {route.dlq.name}: "
            + "; ".join(reasons)
        )


def _with(settings: EngineSettings, **changes: Any) -> EngineSettings:
    from dataclasses import replace

    return replace(settings, **changes)


def _report(tl: Timeline, runs: list[Moved]) -> None:
    keys = (
        "moved",
        "would_move",
        "filtered_out",
        "failed",
        "archived",
        "delete_failed",
        "dedup_rewritten",
        "released",
        "copies_deleted",
    )
    totals = {k: sum(getattr(m.tally, k) for m in runs) for k in keys}
    seconds = sum(m.seconds for m in runs)
    tl.metrics.update(totals)
    if totals["moved"] and seconds:
        tl.metrics["messages_per_s"] = round(totals["moved"] / seconds, 1)
    if totals["delete_failed"]:
        tl.note(
            f"{totals['delete_failed']} message(s) reached the destination but could not be "
            "deleted from the DLQ: they are in both (a duplicate, never a loss)"
        )
    for m in runs:
        for f in m.tally.failures[:10]:
            tl.note(f"not moved {f['message_id']}: {f['reason']}")
        for s in m.tally.samples:
            tl.note(f"would move {s['message_id']} → {s['to']}: {s['body']}")


def _native(tl: Timeline, cfg: Config, route: Route, rate: float | None, visible: int) -> None:
    feed = ProgressFeed(cfg.stack, route.dlq.name, visible)

    def progress(task: dict[str, Any]) -> None:
        moved = int(task.get("ApproximateNumberOfMessagesMoved") or 0)
        feed.total = int(task.get("ApproximateNumberOfMessagesToMove") or visible) or None
        feed({"received": moved, "moved": moved})

    since_ms = now_ms() - CLOCK_SKEW_MS
    handle = native.start_move_task(cfg, route, rate)
    tl.metrics["task_handle"] = handle
    task = native.wait_for_move_task(cfg, route, handle, since_ms=since_ms, on_progress=progress)
    tl.metrics["moved"] = int(task.get("ApproximateNumberOfMessagesMoved") or 0)
    feed.publish(tl.metrics["moved"], final=True)
