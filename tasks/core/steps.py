"""``@step``: a Prefect task that also lands on the runbook's timeline.

Steps never retry at the task level (``retries=0``): the AWS call layer retries transient
errors, so attempts are not multiplied. Re-running a failed step is safe because every
``ensure_*`` step is idempotent. The timeline recorder is a context variable that the flow
sets (see ``flows.report``); Prefect copies context into worker threads, so parallel steps
record their own start and end.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from configs.errors import Interrupted
from configs.models import Config
from tasks.core.changes import StepResult
from tasks.core.retry import STOPPING

P = ParamSpec("P")


R = TypeVar("R")


class Recorder(Protocol):
    def record(
        self, step: str, start: datetime, end: datetime, outcome: str, detail: str
    ) -> None: ...


RECORDER: ContextVar[Recorder | None] = ContextVar("tierbook_recorder", default=None)

# The step running in this thread (retries and waits are counted against it), and the
# recorder's optional "step started" hook, so progress shows a step when it starts.
CURRENT_STEP: ContextVar[str] = ContextVar("tierbook_current_step", default="")


def _started(recorder: Recorder | None, step: str, start: datetime) -> None:
    hook = getattr(recorder, "step_started", None)
    if callable(hook):
        hook(step, start)


def now() -> datetime:
    return datetime.now(UTC)


def _label(
    template: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    if "{" not in template:
        return template
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        return template.format(**bound.arguments)
    except (TypeError, KeyError, IndexError, AttributeError):
        return template


def _summarize(result: Any) -> tuple[str, str]:
    if isinstance(result, StepResult):
        return result.outcome(), result.describe()
    describe = getattr(result, "describe", None)
    if callable(describe):
        return getattr(result, "outcome", lambda: "ok")(), str(describe())
    return "ok", ""


def _quoted(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's config wrapped in Prefect's ``quote``: Prefect then hands it to the step as it
    is instead of walking every field of it looking for futures (twice per run, ~10 ms of CPU
    each for a whole config, and every parallel step waits for the same interpreter)."""
    return (
        tuple(quote(a) if isinstance(a, Config) else a for a in args),
        {k: quote(v) if isinstance(v, Config) else v for k, v in kwargs.items()},
    )


class Step(Task[P, R]):
    """A Prefect task whose config argument Prefect does not introspect (see :func:`_quoted`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _quoted(args, kwargs)
        return super().__call__(*args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _quoted(args, kwargs)
        return super().submit(*args, **kwargs)


def step(
    label: str | None = None, *, timeout_seconds: float | None = None
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Make ``fn`` a Prefect task that records itself on the current timeline.

    ``label`` may name arguments, e.g. ``"scale {svc} in {region}"``. The task keeps ``fn``'s
    types: a call returns ``R``, ``.submit()`` a ``PrefectFuture[R]``.
    """

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        template = label or fn.__name__.replace("_", " ")

        @functools.wraps(fn)
        def recorded(*args: P.args, **kwargs: P.kwargs) -> R:
            recorder = RECORDER.get()
            name = _label(template, fn, args, kwargs)
            if STOPPING.is_set():  # Ctrl-C: start nothing new
                raise Interrupted(f"{name}: not started, interrupted")
            start = now()
            _started(recorder, name, start)
            current = CURRENT_STEP.set(name)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                CURRENT_STEP.reset(current)
                if recorder is not None:
                    recorder.record(name, start, now(), "failed", f"{type(exc).__name__}: {exc}")
                raise
            CURRENT_STEP.reset(current)
            if recorder is not None:
                outcome, detail = _summarize(result)
                recorder.record(name, start, now(), outcome, detail)
            return result

        return Step(
            recorded,
            name=fn.__name__,
            cache_policy=NO_CACHE,
            retries=0,
            timeout_seconds=timeout_seconds,
            persist_result=False,
        )

    return decorate
