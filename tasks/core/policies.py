"""Policies: from converge."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


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
