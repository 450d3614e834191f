"""The process settings tests and benchmarks run with, as values a caller applies on purpose.

Nothing here reads or writes ``os.environ`` when imported: :func:`test_environment` returns the
variables, :func:`set_environment` / :func:`environment` apply them, and :func:`describe`
renders them so a benchmark can print what it changed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
"""The project's root: configs/, the CLI's working directory in subprocess tests."""

CONFIG = "configs/sandbox.yaml"
"""The sandbox environment's config, relative to :data:`ROOT`."""

TEST_POLL_SCALE = 0.02
"""Poll intervals in tests: 2 % of production's (``configs.defaults.poll_scale``)."""

Environment = Mapping[str, str | None]
"""Variables to set; ``None`` removes one."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolated_environment(
    home: Path, *, base: Mapping[str, str] | None = None, prefect_logging: str | None = None
) -> dict[str, str | None]:
    """Prefect and tierbook state under ``home`` (a temporary directory), no Prefect server
    or AWS endpoint inherited from the shell. ``PREFECT_HOME`` and the ephemeral server's
    start-up timeout already set in ``base`` (default: this process's environment) are kept."""
    base = os.environ if base is None else base
    env: dict[str, str | None] = {
        "PREFECT_HOME": base.get("PREFECT_HOME", str(home / "prefect")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": base.get(
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"
        ),
        "PREFECT_API_URL": None,
        "TIERBOOK_HOME": str(home / "home"),
        "TIERBOOK_AWS_ENDPOINT_URL": None,
    }
    if prefect_logging is not None:
        env["PREFECT_LOGGING_LEVEL"] = prefect_logging
    return env


def poll_environment(scale: float = TEST_POLL_SCALE) -> dict[str, str | None]:
    """Every deadline-bounded poll waits ``scale`` times its production interval."""
    return {"TIERBOOK_POLL_SCALE": str(scale)}


def set_environment(changes: Environment) -> dict[str, str | None]:
    """Apply ``changes`` to this process's environment; the previous values, for
    :func:`restore_environment`."""
    previous = {key: os.environ.get(key) for key in changes}
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return previous


def restore_environment(previous: Environment) -> None:
    set_environment(previous)


@contextmanager
def environment(changes: Environment) -> Iterator[None]:
    """``changes`` applied for the block, the previous values put back after it."""
    previous = set_environment(changes)
    try:
        yield
    finally:
        restore_environment(previous)


@contextmanager
def poll_scale(scale: float = TEST_POLL_SCALE) -> Iterator[float]:
    """Polls shrunk to ``scale`` for the block (the fixture behind short test waits)."""
    with environment(poll_environment(scale)):
        yield scale


def describe(title: str, changes: Environment | None = None, **settings: Any) -> str:
    """One block of text naming every setting a run changed: environment variables
    (``VAR=value``, ``VAR unset``) and named settings (``name: value``)."""
    lines = [title]
    for key, value in sorted((changes or {}).items()):
        lines.append(f"  {key}={value}" if value is not None else f"  {key} unset")
    for name, value in settings.items():
        lines.append(f"  {name.replace('_', ' ')}: {value}")
    return "\n".join(lines)
