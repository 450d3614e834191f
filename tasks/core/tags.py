"""Tags: from converge."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


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
