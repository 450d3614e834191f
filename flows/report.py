"""Reports every runbook ends with: a timeline and, for mutating runbooks, a plan.

The timeline (step, start, end, outcome, detail, plus metrics such as RTO/RPO) becomes a
Prefect markdown artifact and a JSON file on disk (for the CLI and for people without the UI).
A plan (resource, action, before → after) becomes a Prefect table artifact.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from configs.errors import BadInput, Interrupted
from flows.progress import Progress, expected_steps, tracking
from tasks.core.changes import Change
from tasks.core.steps import RECORDER, now

REPORT_DIR_ENV = "TIERBOOK_REPORT_DIR"


def report_dir() -> Path:
    home = Path(os.environ.get("TIERBOOK_HOME", Path.home() / ".tierbook"))
    return Path(os.environ.get(REPORT_DIR_ENV, home / "reports"))


class StepRecord(BaseModel):
    step: str
    start: datetime
    end: datetime
    outcome: str  # changed | unchanged | planned | skipped | failed | ok
    detail: str = ""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


class Timeline(BaseModel):
    """What a runbook did, in order. Thread-safe: parallel steps record into it."""

    runbook: str
    environment: str
    started: datetime = Field(default_factory=now)
    finished: datetime | None = None
    outcome: str = "running"  # succeeded | failed | refused | planned
    error: str = ""
    steps: list[StepRecord] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    changes: list[Change] = Field(default_factory=list)
    report_path: str = ""
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _progress: Progress | None = PrivateAttr(default=None)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickled without its lock and progress (a new lock when loaded): a failed run's
        exception carries its timeline, and a work pool's run persists it as its result."""
        state = super().__getstate__()
        return {**state, "__pydantic_private__": {}}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        object.__setattr__(
            self, "__pydantic_private__", {"_lock": threading.Lock(), "_progress": None}
        )

    def step_started(self, step: str, start: datetime) -> None:
        if self._progress is not None:
            self._progress.started(step, start)

    def record(self, step: str, start: datetime, end: datetime, outcome: str, detail: str) -> None:
        retries = self._progress.retries.get(step, 0) if self._progress is not None else 0
        if retries:
            detail = f"{detail} ({retries} retries)".lstrip()
        with self._lock:
            self.steps.append(
                StepRecord(step=step, start=start, end=end, outcome=outcome, detail=detail)
            )
        if self._progress is not None:
            self._progress.ended(step, start, end, outcome, detail)

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, str]]:
        """Record a flow-level step (an approval, a decision). Set ``info['detail']`` inside."""
        info: dict[str, str] = {"outcome": "ok", "detail": ""}
        start = now()
        self.step_started(name, start)
        try:
            yield info
        except BaseException as exc:
            self.record(name, start, now(), "failed", f"{type(exc).__name__}: {exc}")
            raise
        self.record(name, start, now(), info["outcome"], info["detail"])

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    # -- rendering -------------------------------------------------------------------------
    def ordered(self) -> list[StepRecord]:
        return sorted(self.steps, key=lambda s: (s.start, s.end))

    def to_markdown(self) -> str:
        lines = [
            f"# {self.runbook} · {self.environment} · {self.outcome}",
            "",
            f"Started {self.started.isoformat(timespec='seconds')}"
            + (
                f", finished {self.finished.isoformat(timespec='seconds')}" if self.finished else ""
            ),
            "",
        ]
        if self.error:
            lines += [f"**Error:** {self.error}", ""]
        if self.metrics:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in self.metrics.items()]
            lines.append("")
        lines += [
            "| step | start | end | seconds | outcome | detail |",
            "|---|---|---|---|---|---|",
        ]
        for s in self.ordered():
            detail = s.detail.replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {s.step} | {s.start.strftime('%H:%M:%S.%f')[:-3]} | "
                f"{s.end.strftime('%H:%M:%S.%f')[:-3]} | {s.seconds:.1f} | {s.outcome} | {detail} |"
            )
        if self.notes:
            lines += ["", "## Notes", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def artifact_key(text: str) -> str:
    """Prefect artifact keys: lowercase letters, numbers and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def publish_plan(runbook: str, environment: str, changes: Iterable[Change]) -> list[dict[str, str]]:
    """Render ``changes`` as a Prefect table artifact; return the rows."""
    rows = [
        {
            "resource": f"{c.resource} {c.name}",
            "region": c.region,
            "action": c.action.value,
            "change": c.summary(),
        }
        for c in changes
    ]
    _artifact(
        "table",
        key=artifact_key(f"{runbook}-plan-{environment}"),
        table=rows or [{"resource": "-", "region": "-", "action": "none", "change": "no changes"}],
        description=f"{runbook} plan for {environment}",
    )
    return rows


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    """A Prefect table artifact (a plan, a scorecard, findings); nothing outside a flow run."""
    _artifact("table", key=artifact_key(key), table=rows, description=description)


def _artifact(kind: str, **kwargs: Any) -> None:
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    try:
        if kind == "table":
            create_table_artifact(**kwargs)
        else:
            create_markdown_artifact(**kwargs)
    except Exception:  # a report that cannot be uploaded must not fail the runbook
        pass


_unfinished: list[Timeline] = []  # runbooks open in this process, for an abort to write out


def write_unfinished(outcome: str = "interrupted") -> list[Path]:
    """On an abort (a second Ctrl-C, a run that does not stop in time): write what the open
    runbooks did so far to disk, without the Prefect artifact (the API may be busy)."""
    written = []
    for timeline in list(_unfinished):
        timeline.outcome, timeline.finished = outcome, now()
        written.append(_write(timeline))
    return written


def publish(timeline: Timeline) -> Path:
    """Write the timeline as a markdown artifact and as JSON on disk; return the file."""
    _artifact(
        "markdown",
        key=artifact_key(f"{timeline.runbook}-timeline-{timeline.environment}"),
        markdown=timeline.to_markdown(),
        description=f"{timeline.runbook} timeline for {timeline.environment}",
    )
    return _write(timeline)


def _write(timeline: Timeline) -> Path:
    folder = report_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = timeline.started.strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{timeline.runbook}-{timeline.environment}-{stamp}.json"
    timeline.report_path = str(path)
    path.write_text(timeline.to_json())
    return path


@contextmanager
def runbook(name: str, environment: str) -> Iterator[Timeline]:
    """Open a timeline for the steps inside; publish it however the block ends.

    The exception that ends a failed block gets the timeline attached as ``.timeline``.
    """
    timeline = Timeline(runbook=name, environment=environment)
    progress = Progress(name, environment, expected_steps(report_dir(), name, environment))
    timeline._progress = progress
    token = RECORDER.set(timeline)
    _unfinished.append(timeline)
    try:
        with tracking(progress):
            yield timeline
        if timeline.outcome == "running":
            timeline.outcome = "succeeded"
    except BaseException as exc:
        timeline.outcome = (
            "refused"
            if isinstance(exc, BadInput)
            else "interrupted"
            if isinstance(exc, Interrupted | KeyboardInterrupt)
            else "failed"
        )
        timeline.error = f"{type(exc).__name__}: {exc}"
        exc.timeline = timeline  # type: ignore[attr-defined]
        raise
    finally:
        RECORDER.reset(token)
        timeline.finished = now()
        timeline.notes.extend(progress.retry_log)
        progress.close(timeline.outcome)
        publish(timeline)
        _unfinished.remove(timeline)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
