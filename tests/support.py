"""tierbook's side of :mod:`sandbox.testing`: the helpers that need its AWS factory or its
flows, which sandbox/ may not import. A test-local library (like ``tests/iam/calls.py``):
tests import it, product code never does.

Every helper here drops tierbook's cached sessions and clients (``forget_connections``) where
the emulator was emptied or a hook is to see every client from now on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from configs.models import Config
from flows.provision import provision
from sandbox import testing
from sandbox.control import SandboxControl
from tasks.core.aws import connect, forget_connections, is_mutating

if TYPE_CHECKING:
    import pytest

__all__ = [
    "fresh_account",
    "plan_build_rerun",
    "posture_config",
    "provisioned_stack",
    "reset_aws",
    "watch",
]


def watch(cfg: Config) -> testing.Calls:
    """Count the calls made through ``connect(cfg)`` from now on. Clients copy the session's
    emitter when they are made, so the cached ones are dropped first."""
    forget_connections()
    return testing.watch(connect(cfg).session, is_mutating)


def reset_aws(endpoint: str) -> None:
    """Empty the sandbox (resources, faults, pending progressions), test timings back."""
    testing.reset_aws(endpoint)
    forget_connections()


def fresh_account(endpoint: str, mp: pytest.MonkeyPatch, path: str = testing.CONFIG) -> Config:
    """An empty account with only what provision expects to exist: the public hosted zone."""
    cfg = testing.fresh_account(endpoint, mp, path)
    forget_connections()
    return cfg


def plan_build_rerun(cfg: Config, config: str) -> dict[str, Any]:
    """On an empty account: a plan, a provision, and a second provision, with the mutating
    calls of the plan and of the second run (and ``cfg``)."""
    return {"cfg": cfg, **testing.plan_build_rerun(provision, watch(cfg), config)}


def provisioned_stack(
    endpoint: str, mp: pytest.MonkeyPatch, path: str = testing.CONFIG
) -> testing.Stack:
    """A fresh account, provisioned in both regions (``path``'s config), images pushed in
    both."""
    cfg = fresh_account(endpoint, mp, path)
    report = provision(config=path)
    assert report["outcome"] == "succeeded", report.get("error")
    testing.push_images(cfg)
    return testing.Stack(cfg=cfg, control=SandboxControl(endpoint))


def posture_config(
    folder: Path, posture: str, dr: dict[str, Any] | None = None, **database: Any
) -> Path:
    """The demo config with ``dr.posture: posture`` (and ``dr``'s other settings), the
    ``database`` settings given, written in ``folder``."""
    data = yaml.safe_load((testing.ROOT / testing.CONFIG).read_text())
    data["dr"] = {"posture": posture, **(dr or {})}
    data["database"].update(database)
    path = folder / f"{posture}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
