"""Changes as data: what a step found, what it would do, what it did.

Every ``ensure_*`` step returns a :class:`StepResult` whose ``changes`` say, per resource,
``action`` and ``before → after``. Plans, dry runs, reports and rollbacks are built on these.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from tasks.core.tags import missing_tags


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REPLACE = "replace"
    INVOKE = "invoke"  # not a resource change: a promotion, a failover, a scale-to-zero…


class Change(BaseModel):
    """One difference between what is and what should be, for one resource."""

    resource: str  # kind, e.g. "ec2:security-group" or "ecs:service"
    name: str
    action: Action
    region: str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: str = ""

    def summary(self) -> str:
        if self.detail:
            return self.detail
        if self.action == Action.CREATE:
            return "new"
        if self.action == Action.DELETE:
            return "remove"
        keys = sorted(set(self.before or {}) | set(self.after or {}))
        parts = [
            f"{k}: {_short((self.before or {}).get(k))} → {_short((self.after or {}).get(k))}"
            for k in keys
        ]
        return "; ".join(parts)


class StepResult(BaseModel):
    """What one step found and did. ``outputs`` carries ids later steps need."""

    changes: list[Change] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    applied: bool = False  # False on dry runs: the changes are a plan
    skipped: str = ""  # non-empty: the step did not run, and why
    status: str = ""  # overrides the derived outcome, e.g. "passed", "warn" for checks
    detail: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def outcome(self) -> str:
        if self.status:
            return self.status
        if self.skipped:
            return "skipped"
        if not self.changes:
            return "unchanged"
        return "changed" if self.applied else "planned"

    def describe(self) -> str:
        if self.skipped:
            return self.skipped
        if self.detail:
            return self.detail
        if not self.changes:
            return "no changes"
        verb = "" if self.applied else "would "
        return "; ".join(f"{verb}{c.action.value} {c.name}" for c in self.changes[:5]) + (
            f" (+{len(self.changes) - 5} more)" if len(self.changes) > 5 else ""
        )


def diff(
    desired: Mapping[str, Any], actual: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys of ``desired`` whose value differs in ``actual``, as (before, after)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, want in desired.items():
        have = actual.get(key)
        if _normal(have) != _normal(want):
            before[key] = have
            after[key] = want
    return before, after


def _normal(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, bool | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool):
        return value
    return value


def _short(value: Any, limit: int = 60) -> str:
    text = "∅" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


PLACEHOLDER_PREFIX = "(known after create"


def placeholder(kind: str, name: str) -> str:
    """Stand-in for an id or ARN that only exists once ``kind`` ``name`` is created."""
    return f"{PLACEHOLDER_PREFIX}: {kind} {name})"


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX)


def tag_change(
    resource: str, name: str, region: str, desired: Mapping[str, str], actual: Mapping[str, str]
) -> Change | None:
    todo = missing_tags(desired, actual)
    if not todo:
        return None
    return Change(
        resource=resource,
        name=name,
        action=Action.UPDATE,
        region=region,
        before={"tags": {k: actual.get(k) for k in todo}},
        after={"tags": todo},
    )


def created(resource: str, name: str, region: str, after: Mapping[str, Any]) -> Change:
    return Change(
        resource=resource, name=name, action=Action.CREATE, region=region, after=dict(after)
    )


def temporary(
    resource: str, name: str, region: str, after: Mapping[str, Any], until: str
) -> list[Change]:
    """A resource a runbook makes and deletes again (``until``: when it goes)."""
    return [
        created(resource, name, region, after),
        Change(resource=resource, name=name, action=Action.DELETE, region=region, detail=until),
    ]


def updated(
    resource: str,
    name: str,
    region: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    detail: str = "",
) -> Change:
    return Change(
        resource=resource,
        name=name,
        action=Action.UPDATE,
        region=region,
        before=dict(before),
        after=dict(after),
        detail=detail,
    )


GONE_TIMEOUT_S = 1800.0  # a Multi-AZ database with a final snapshot can take a while


def deleted(resource: str, name: str, region: str, detail: str = "") -> Change:
    return Change(resource=resource, name=name, action=Action.DELETE, region=region, detail=detail)


def result(changes: list[Change], dry_run: bool, **outputs: Any) -> StepResult:
    return StepResult(changes=changes, outputs=outputs, applied=not dry_run and bool(changes))
