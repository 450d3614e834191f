"""A :class:`Runner` starts a runbook's steps in groups and waits for each group (destroy's
parts, app → data → network, run this way). Provision runs by dependency instead:
``flows/graph.py``.
"""

from __future__ import annotations

import threading
from typing import Any

from configs.models import Config
from tasks.core.changes import Change, StepResult


class _Done:
    """A finished call that looks like a Prefect future (the one-at-a-time mode)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class Runner:
    """Starts steps (in parallel, or one at a time), collects every change they report."""

    def __init__(self, cfg: Config, *, dry_run: bool, sequential: bool = False) -> None:
        self.cfg = cfg
        self.dry_run = dry_run
        self.sequential = sequential
        self.changes: list[Change] = []
        self._lock = threading.Lock()
        self._seen: dict[int, StepResult] = {}

    def start(self, step: Any, *args: Any, mutating: bool = True, **kwargs: Any) -> Any:
        if mutating:
            kwargs["dry_run"] = self.dry_run
        if self.sequential:
            return _Done(step(self.cfg, *args, **kwargs))
        return step.submit(self.cfg, *args, **kwargs)

    def wait(self, *futures: Any) -> list[Any]:
        """Results in order; the first failure is raised once every step has ended."""
        results, error = [], None
        for f in futures:
            try:
                results.append(f.result())
            except Exception as exc:
                error = error or exc
                results.append(None)
        if error is not None:
            raise error
        with self._lock:
            for r in results:
                if isinstance(r, StepResult) and id(r) not in self._seen:
                    self._seen[id(r)] = r  # kept alive, so the id stays unique
                    self.changes.extend(r.changes)
        return results

    def all(self, *futures: Any) -> list[Any]:
        return self.wait(*futures)
