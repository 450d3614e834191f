"""The one retry policy, and the one way to wait for AWS state.

Every AWS call tierbook makes passes through :func:`call` exactly once (the client factory in
``tasks.aws`` installs it on each client; botocore's own retries are off), so attempts are
never multiplied across layers. Transient failures are retried with jittered exponential
backoff under both an attempt cap and a deadline; anything else fails at once, its AWS error
code in the message. Waiting for AWS to reach a state is :func:`wait_for`: a poll with a
deadline, never a bare ``sleep``.

Darkness is decided here too, in :func:`unreachable`: only a connection that fails or times
out (or a gateway answering 504 in the service's place) means a region does not answer. A
throttled or 5xx answer came from AWS: the region is up and busy, and the call is retried.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
)
from botocore.parsers import ResponseParserError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_when_event_set,
    wait_exponential_jitter,
    wait_fixed,
)
from tenacity.stop import stop_base

from configs import defaults
from configs.errors import DeadlineExceeded, Interrupted, StepFailed
from tasks.core.changes import GONE_TIMEOUT_S
from tasks.core.errors import AwsError, PermanentAwsError, TransientAwsError
from tasks.core.log import logger

T = TypeVar("T")


# Codes AWS uses for "slow down" or "try again"; any HTTP status >= 500 or 429 counts too.
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "SlowDown",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "IDPCommunicationError",
    }
)


# What botocore raises when nothing answered: the connection failed, or the answer never came.
# https://github.com/boto/botocore/blob/develop/botocore/exceptions.py
UNREACHABLE_CODES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ConnectionError",
        "HTTPClientError",
        "ProxyConnectionError",
        "SSLError",
    }
)


# A gateway timing out in front of the service answers a bare 504: botocore names it by status.
GATEWAY_TIMEOUT_CODES = frozenset({"504", "GatewayTimeout", "Gateway Timeout"})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one AWS call before giving up.

    ``retry_unreachable=False`` gives up at the first sign that nothing answers (a region
    probe: one hang is the answer) while still retrying throttling and 5xx answers.
    ``max_unreachable_attempts`` caps the attempts that end with nobody answering, apart
    from ``max_attempts``: a region that may be down costs a few hangs, while its throttled
    answers are retried as hard as anywhere (throttling is not darkness)."""

    max_attempts: int = defaults.RETRY_MAX_ATTEMPTS
    deadline_s: float = defaults.RETRY_DEADLINE_S
    initial_backoff_s: float = defaults.RETRY_INITIAL_BACKOFF_S
    max_backoff_s: float = defaults.RETRY_MAX_BACKOFF_S
    retry_unreachable: bool = True
    max_unreachable_attempts: int | None = None


DEFAULT_POLICY = RetryPolicy()


IMPAIRED_REGION_POLICY = RetryPolicy(
    max_unreachable_attempts=3, deadline_s=defaults.IMPAIRED_REGION_DEADLINE_S, max_backoff_s=2.0
)


# A region probe: a hang is the answer (not retried); throttling is retried a few times.
PROBE_POLICY = RetryPolicy(
    max_attempts=5,
    deadline_s=defaults.IMPAIRED_REGION_DEADLINE_S,
    initial_backoff_s=0.1,
    max_backoff_s=1.0,
    retry_unreachable=False,
)


def unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says nobody answered (connection failed or timed out, a gateway's
    504); False for any answer AWS gave, throttling and 5xx included."""
    if isinstance(exc, AwsError):
        if not isinstance(exc, TransientAwsError):
            return False
        return exc.code in UNREACHABLE_CODES or (
            exc.code in GATEWAY_TIMEOUT_CODES and exc.status in (None, 504)
        )
    return isinstance(exc, ConnectionError | HTTPClientError | TimeoutError | OSError)


def translate(
    exc: Exception, *, service: str = "", operation: str = "", region: str = ""
) -> Exception:
    """Map a botocore error onto tierbook's hierarchy; other exceptions pass unchanged."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "Unknown")
        message = str(err.get("Message") or exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        transient = code in TRANSIENT_CODES or (
            status is not None and (status >= 500 or status == 429)
        )
        cls = TransientAwsError if transient else PermanentAwsError
        return cls(
            code, message, status=status, service=service, operation=operation, region=region
        )
    if isinstance(exc, ConnectionError | HTTPClientError):
        return TransientAwsError(
            _connection_code(exc), str(exc), service=service, operation=operation, region=region
        )
    if isinstance(exc, ResponseParserError):
        # A gateway's non-AWS answer (e.g. a bare 504 page), not AWS's: retried, not darkness.
        return TransientAwsError(
            type(exc).__name__, str(exc), service=service, operation=operation, region=region
        )
    if isinstance(exc, BotoCoreError):
        return PermanentAwsError(
            type(exc).__name__, str(exc), service=service, operation=operation, region=region
        )
    return exc


class Watcher(Protocol):
    """Sees retries and waits as they happen (a runbook's live progress)."""

    def retried(self, detail: str) -> None: ...

    def waiting(self, what: str, left_s: float) -> None: ...


WATCHERS: list[Watcher] = []

# Set on Ctrl-C: no new attempt, no further poll; a call already sent finishes on its own.
STOPPING = threading.Event()
# Set when AWS did not answer a probe before the run (tasks.core.reach): retrying each call
# would only delay the same answer, so every call is tried once.
FAIL_FAST = threading.Event()


def _pause(seconds: float) -> None:
    """Sleep between attempts and polls, cut short by Ctrl-C."""
    STOPPING.wait(seconds)


def _stop_if_interrupted(what: str) -> None:
    if STOPPING.is_set():
        raise Interrupted(f"{what}: interrupted")


def _tell(method: str, *args: Any) -> None:
    for watcher in list(WATCHERS):
        with contextlib.suppress(Exception):  # a broken view must not break a runbook
            getattr(watcher, method)(*args)


def _connection_code(exc: BotoCoreError) -> str:
    """The botocore class that says what went wrong with the connection (its own name, or
    the nearest named ancestor for subclasses we do not list)."""
    for cls in type(exc).__mro__:
        if cls.__name__ in UNREACHABLE_CODES:
            return cls.__name__
    return type(exc).__name__


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    logger().warning(
        "retrying after %s (attempt %d, next in %.2fs)", exc, state.attempt_number, delay
    )
    _tell("retried", f"{exc} (attempt {state.attempt_number}, next in {delay:.2f}s)")


class _HangLimit(stop_base):
    """Stop after ``limit`` attempts that ended with nobody answering (None: no such limit);
    answers (throttling, 5xx) do not count."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.hangs = 0

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if exc is not None and unreachable(exc):
            self.hangs += 1
        return self.limit is not None and self.hangs >= self.limit


def call(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    service: str = "",
    operation: str = "",
    region: str = "",
) -> T:
    """Run one AWS call under the retry policy; raise an :class:`AwsError` when it gives up."""
    hangs = _HangLimit(policy.max_unreachable_attempts)
    retrying = Retrying(
        stop=stop_any(
            stop_after_attempt(policy.max_attempts),
            stop_after_delay(policy.deadline_s),
            hangs,
            stop_when_event_set(STOPPING),
            stop_when_event_set(FAIL_FAST),
        ),
        wait=wait_exponential_jitter(initial=policy.initial_backoff_s, max=policy.max_backoff_s),
        retry=retry_if_exception(
            lambda e: (
                isinstance(e, TransientAwsError)
                and (policy.retry_unreachable or not unreachable(e))
            )
        ),
        before_sleep=_log_retry,
        sleep=_pause,
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            try:
                return fn()
            except (BotoCoreError, ClientError, ResponseParserError) as exc:
                raise translate(exc, service=service, operation=operation, region=region) from exc
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


def is_code(exc: BaseException, *codes: str) -> bool:
    """True when ``exc`` is an AWS error with one of ``codes``."""
    return isinstance(exc, AwsError) and exc.code in codes


def absent(fn: Callable[[], T], *codes: str) -> T | None:
    """``fn()``, or None when AWS answers with one of the not-found ``codes``."""
    try:
        return fn()
    except AwsError as exc:
        if exc.code in codes:
            return None
        raise


def wait_for(
    probe: Callable[[], T],
    *,
    until: Callable[[T], bool],
    what: str,
    timeout_s: float,
    interval_s: float = defaults.POLL_INTERVAL_S,
    failed: Callable[[T], str | None] | None = None,
    describe: Callable[[T], str] = repr,
) -> T:
    """Poll ``probe`` until ``until(value)``; a deadline, not a hope.

    ``failed(value)`` may return a reason to stop at once (e.g. a rollout that went FAILED).
    Raises :class:`DeadlineExceeded` with the last value seen when time runs out.
    """
    started = time.monotonic()

    def _probe() -> T:
        _stop_if_interrupted(what)
        _tell("waiting", what, timeout_s - (time.monotonic() - started))
        value = probe()
        if failed is not None and (reason := failed(value)):
            raise StepFailed(f"{what}: {reason}")
        return value

    def _timed_out(state: RetryCallState) -> T:
        seen = describe(state.outcome.result()) if state.outcome else "nothing"
        waited = time.monotonic() - started
        raise DeadlineExceeded(
            f"{what}: not reached within {timeout_s:g}s ({waited:.1f}s waited; last seen: {seen})"
        )

    retrying = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(interval_s * defaults.poll_scale()),
        retry=retry_if_result(lambda value: not until(value)),
        retry_error_callback=_timed_out,
        sleep=_pause,
    )
    try:
        return retrying(_probe)
    finally:
        _tell("waiting", what, 0.0)


def wait_gone(probe: Callable[[], Any], what: str, timeout_s: float = GONE_TIMEOUT_S) -> None:
    """Poll until ``probe()`` returns a falsy value (the resource no longer exists)."""
    wait_for(probe, until=lambda v: not v, what=what, timeout_s=timeout_s, describe=str)
