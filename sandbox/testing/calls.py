"""Counting the AWS calls a runbook makes, with a botocore ``before-call`` hook.

tierbook's clients all come from one boto3 session per config (``tasks.core.aws.connect``);
a hook on that session's event emitter sees every call of every client made *after* it was
registered (a client copies the emitter when it is made). This module knows nothing of
tierbook's factory: the caller passes the session and the rule for what mutates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Provision = Callable[..., dict[str, Any]]


@dataclass
class Calls:
    """Mutating calls seen, as ``service:Operation`` in order; every call, as
    ``(service, Operation)``."""

    is_mutating: Callable[[str], bool]
    seen: list[str] = field(default_factory=list)
    operations: set[tuple[str, str]] = field(default_factory=set)

    def hook(self, model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        self.operations.add((service, model.name))
        if self.is_mutating(model.name):
            self.seen.append(f"{service}:{model.name}")

    @property
    def calls(self) -> list[str]:
        """The mutating calls (the name the app-layer tests use)."""
        return self.seen

    def reset(self) -> None:
        self.seen.clear()
        self.operations.clear()

    def counted(self) -> Counter[str]:
        return Counter(self.seen)


Mutations = Calls


def watch(session: Any, is_mutating: Callable[[str], bool]) -> Calls:
    """Count the calls of every client ``session`` makes from now on (clients it already
    made are not seen: drop them first)."""
    calls = Calls(is_mutating)
    session.events.register("before-call.*.*", calls.hook)
    return calls


def plan_build_rerun(provision: Provision, calls: Calls, config: str) -> dict[str, Any]:
    """On an empty account: a plan, a provision and a second provision of ``config``, with
    the mutating calls ``calls`` saw during the plan and during the second run."""
    calls.reset()
    planned = provision(config=config, plan=True)
    plan_calls = list(calls.seen)
    first = provision(config=config)
    calls.reset()
    second = provision(config=config)
    return {
        "plan": planned,
        "plan_calls": plan_calls,
        "first": first,
        "second": second,
        "second_calls": list(calls.seen),
    }
