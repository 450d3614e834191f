"""Task definitions as plain data: what to compare, what a new revision changes. Pure.

AWS adds fields to every registered revision (ARN, revision, status, requiresAttributes…) and
fills defaults we never set; comparing raw descriptions would see a difference every time. So
both sides are first reduced to what ``RegisterTaskDefinition`` accepts, normalised.
"""

from __future__ import annotations

from typing import Any

# Accepted by RegisterTaskDefinition; everything else in a description is AWS's bookkeeping.
REGISTRABLE = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)
_EMPTY: tuple[Any, ...] = (None, [], {}, "")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in sorted(value.items()) if v not in _EMPTY}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _container(c: dict[str, Any]) -> dict[str, Any]:
    c = dict(c)
    for key in ("environment", "secrets"):
        if key in c:
            c[key] = sorted(c[key], key=lambda kv: kv.get("name", ""))
    if "portMappings" in c:
        c["portMappings"] = [
            {"protocol": "tcp", **{k: v for k, v in pm.items() if k != "hostPort" or v}}
            for pm in c["portMappings"]
        ]
    c.setdefault("essential", True)
    if c.get("cpu") == 0:  # what ECS reports for a container given no cpu share
        del c["cpu"]
    return _clean(c)


def registrable(td: dict[str, Any]) -> dict[str, Any]:
    """``td`` (a description or a request) reduced to comparable registration input."""
    out = {k: td[k] for k in REGISTRABLE if k in td}
    for key in ("cpu", "memory"):
        if key in out and out[key] is not None:
            out[key] = str(out[key])
    out["containerDefinitions"] = sorted(
        (_container(c) for c in out.get("containerDefinitions", [])),
        key=lambda c: c.get("name", ""),
    )
    cleaned: dict[str, Any] = _clean(out)
    return cleaned


def differences(
    current: dict[str, Any] | None, desired: dict[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """Readable diff ``{"container web.image": (old, new), "cpu": (old, new)}``; empty if equal."""
    if current is None:
        return {"taskDefinition": (None, desired.get("family"))}
    a, b = registrable(current), registrable(desired)
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(a) | set(b)):
        if key == "containerDefinitions":
            continue
        if a.get(key) != b.get(key):
            out[key] = (a.get(key), b.get(key))
    old = {c.get("name"): c for c in a.get("containerDefinitions", [])}
    new = {c.get("name"): c for c in b.get("containerDefinitions", [])}
    for name in sorted(set(old) | set(new), key=str):
        oc, nc = old.get(name, {}), new.get(name, {})
        for key in sorted(set(oc) | set(nc)):
            if oc.get(key) != nc.get(key):
                out[f"container {name}.{key}"] = (oc.get(key), nc.get(key))
    return out


def with_image(td: dict[str, Any], image: str, container: str | None = None) -> dict[str, Any]:
    """Registration input for a copy of ``td`` whose container (default: first) runs ``image``."""
    out = registrable(td)
    containers = [dict(c) for c in out["containerDefinitions"]]
    target = container or containers[0]["name"]
    if not any(c["name"] == target for c in containers):
        raise KeyError(f"no container named {target!r} in task definition {td.get('family')}")
    for c in containers:
        if c["name"] == target:
            c["image"] = image
    out["containerDefinitions"] = containers
    return out
