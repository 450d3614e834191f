"""The one error hierarchy of tierbook (pure, so every layer can import it).

::

    TierbookError                 anything tierbook raises on purpose (exit code 1 unless noted)
    ├── BadInput                  exit 2: the request cannot be acted on as given
    │   ├── ConfigError           a config file is malformed or dangerous; carries every problem
    │   ├── NotFound              a resource the runbook needs does not exist
    │   └── Refused               a safety rule said no (wrong account, lock held, not approved,
    │       ├── AccountMismatch     readiness failed, protected environment)   tasks.core.errors
    │       └── LockHeld                                                         tasks.core.errors
    ├── AwsError                  an AWS call failed (code, operation)            tasks.core.errors
    │   ├── TransientAwsError     throttling, 5xx, connection trouble: retried
    │   └── PermanentAwsError     everything else: fails at once
    ├── DeadlineExceeded          a wait_for poll ran out of time
    └── StepFailed                a runbook step found the world in a state it cannot fix

The root and the errors of input and of runbooks live here, where every layer can import them;
the errors of AWS access (the account, the lock, an AWS call) live with the code that raises
them, in :mod:`tasks.core.errors`. Foreign errors (botocore's) are mapped to these in exactly
one place, ``tasks.core.retry``, and re-raised ``from`` the original.
"""

from __future__ import annotations

from dataclasses import dataclass


class TierbookError(Exception):
    """Base of every error tierbook raises on purpose."""

    exit_code = 1

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructors do not survive pickling (Prefect pickles failed states).
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(
    cls: type[TierbookError], args: tuple[object, ...], state: dict[str, object]
) -> TierbookError:
    obj = cls.__new__(cls)
    Exception.__init__(obj, *args)
    obj.__dict__.update(state)
    return obj


class BadInput(TierbookError):
    """The request cannot be acted on as given: exit code 2, nothing was changed."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (a dotted field path) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(BadInput):
    """A config is malformed or dangerous. ``problems`` lists every one found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class NotFound(BadInput):
    """A resource the runbook needs does not exist."""


class Refused(BadInput):
    """A safety rule refused the action."""


class DeadlineExceeded(TierbookError):
    """A deadline-bounded wait ran out before AWS reached the wanted state."""


class StepFailed(TierbookError):
    """A runbook step ended in a state it cannot repair on its own."""


class Interrupted(TierbookError):
    """Ctrl-C: the run stopped starting steps and waiting; what it changed is in its report."""

    exit_code = 130
