"""Small shared pieces of every ``ensure_*`` step of the app, edge and DNS layers.

Tags are compared as dicts and only ever added or corrected, never removed: an adopted resource
keeps the tags its original tooling put there. Ids that do not exist yet (a dry run on an empty
account) are placeholders, so a plan still lists every resource and the steps downstream of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from tasks.changes import Action, Change

PLACEHOLDER_PREFIX = "(known after create"


def placeholder(kind: str, name: str) -> str:
    """Stand-in for an id or ARN that only exists once ``kind`` ``name`` is created."""
    return f"{PLACEHOLDER_PREFIX}: {kind} {name})"


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX)


def tag_list(
    tags: Mapping[str, str], key: str = "Key", value: str = "Value"
) -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def tag_dict(
    items: Iterable[Mapping[str, str]] | None, key: str = "Key", value: str = "Value"
) -> dict[str, str]:
    return {t[key]: t[value] for t in items or []}


def missing_tags(desired: Mapping[str, str], actual: Mapping[str, str]) -> dict[str, str]:
    """Tags to add or correct; extra tags on the resource are left alone."""
    return {k: v for k, v in desired.items() if actual.get(k) != v}


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


def create(resource: str, name: str, region: str, after: Mapping[str, Any]) -> Change:
    return Change(
        resource=resource, name=name, action=Action.CREATE, region=region, after=dict(after)
    )


def update(
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


def policy_doc(value: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A JSON policy (string as AWS returns it, or dict) in a comparable form: single values
    become lists and lists are sorted, so equal policies compare equal however written."""
    if value is None or value == "":
        return None
    doc = json.loads(value) if isinstance(value, str) else dict(value)
    return _canonical(doc)


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def statement_list(doc: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Statements with ``Action``/``Resource`` always as sorted lists (IAM collapses singletons)."""
    out = []
    for st in (doc or {}).get("Statement", []):
        st = dict(st)
        for key in ("Action", "Resource", "NotAction", "NotResource"):
            if isinstance(st.get(key), str):
                st[key] = [st[key]]
        out.append(st)
    return out


def same_policy(a: str | Mapping[str, Any] | None, b: str | Mapping[str, Any] | None) -> bool:
    da, db = policy_doc(a), policy_doc(b)
    if da is None or db is None:
        return da == db
    return _canonical({**da, "Statement": statement_list(da)}) == _canonical(
        {**db, "Statement": statement_list(db)}
    )
