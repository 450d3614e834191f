"""A runbook as a dependency graph of steps, run by dependency rather than by layer.

A :class:`Graph` is data: each :class:`Node` is one named step call (in one region, or global)
with the nodes it needs. A node's arguments are built from the typed outputs of the nodes it
needs (``inputs[vpc].vpc_id``), read through a :class:`Ref` so a read is checked by mypy and,
at run time, against the node's declared needs. :func:`execute` submits a node to Prefect's
thread pool as soon as everything it needs has finished, so independent chains (the two
regions, the database and the app's first steps) overlap instead of waiting at layer barriers.
``sequential=True`` runs the same graph one node at a time in topological order (the
benchmark's baseline).

A failing node stops only what depends on it: the other nodes still run, and the run then
fails naming the failed node and the ones it kept from starting.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast, overload

from prefect import Task
from pydantic import BaseModel

from configs.errors import Interrupted, StepFailed, TierbookError
from configs.models import Config
from configs.names import Role
from tasks.core.changes import Change, StepResult

Phase = Literal["network", "data", "app", "edge"]
PHASES: tuple[Phase, ...] = ("network", "data", "app", "edge")

Out = TypeVar("Out")

# The node whose step is running (set around the step's start; Prefect copies the context into
# its worker thread), so a botocore hook can count API calls per node.
CURRENT_NODE: ContextVar[str | None] = ContextVar("tierbook_graph_node", default=None)


class Done(BaseModel):
    """The output of a node nobody reads."""


@dataclass(frozen=True)
class Ref(Generic[Out]):
    """A node, as the nodes that need it name it: its key and the type of its output."""

    key: str
    output: type[Out]


class Inputs:
    """The outputs of the nodes one node needs, by :class:`Ref`."""

    def __init__(self, node: Node, outputs: Mapping[str, Any]) -> None:
        self._node = node
        self._outputs = outputs

    def __getitem__(self, ref: Ref[Out]) -> Out:
        if ref.key not in self._node.needs:
            raise KeyError(f"{self._node.key} reads {ref.key} without needing it")
        return cast(Out, self._outputs[ref.key])


Args = Callable[[Inputs], tuple[Any, ...]]


def _no_args(_: Inputs) -> tuple[Any, ...]:
    return ()


@dataclass(frozen=True)
class Node:
    """One step call. ``args`` builds the arguments after ``cfg`` (``dry_run`` is added to a
    mutating step's); ``skip``, when it returns a value, is the node's output without a call;
    ``output`` parses a :class:`StepResult`'s ``outputs`` (a plain function's return value is
    the output as it is)."""

    key: str
    phase: Phase
    role: Role | None  # None: global
    step: Callable[..., Any]
    needs: tuple[str, ...] = ()
    args: Args = _no_args
    output: type[Any] = Done
    mutating: bool = True
    skip: Callable[[Inputs], Any] | None = None

    @property
    def step_name(self) -> str:
        return str(getattr(self.step, "name", getattr(self.step, "__name__", "?")))


@dataclass
class Graph:
    """Nodes by key, in the order they were declared (a topological order: a node can only
    need nodes declared before it)."""

    nodes: dict[str, Node] = field(default_factory=dict)

    @overload
    def add(
        self,
        key: str,
        phase: Phase,
        role: Role | None,
        step: Callable[..., Any],
        *,
        needs: Iterable[Ref[Any] | None] = (),
        args: Args = _no_args,
        mutating: bool = True,
        skip: Callable[[Inputs], Any] | None = None,
    ) -> Ref[Done]: ...

    @overload
    def add(
        self,
        key: str,
        phase: Phase,
        role: Role | None,
        step: Callable[..., Any],
        *,
        needs: Iterable[Ref[Any] | None] = (),
        args: Args = _no_args,
        output: type[Out],
        mutating: bool = True,
        skip: Callable[[Inputs], Any] | None = None,
    ) -> Ref[Out]: ...

    def add(
        self,
        key: str,
        phase: Phase,
        role: Role | None,
        step: Callable[..., Any],
        *,
        needs: Iterable[Ref[Any] | None] = (),
        args: Args = _no_args,
        output: type[Any] = Done,
        mutating: bool = True,
        skip: Callable[[Inputs], Any] | None = None,
    ) -> Ref[Any]:
        """Declare a node after the nodes it needs (``None`` in ``needs``: not in this graph)."""
        if key in self.nodes:
            raise ValueError(f"node {key} declared twice")
        wanted = tuple(dict.fromkeys(r.key for r in needs if r is not None))
        missing = [k for k in wanted if k not in self.nodes]
        if missing:
            raise ValueError(f"{key} needs {', '.join(missing)}, not declared before it")
        self.nodes[key] = Node(key, phase, role, step, wanted, args, output, mutating, skip)
        return Ref(key, output)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def problems(self) -> list[str]:
        """Needs that name no node, and cycles (empty: the graph can run)."""
        found = [
            f"{n.key} needs {k}, which is no node"
            for n in self
            for k in n.needs
            if k not in self.nodes
        ]
        state: dict[str, int] = {}  # 1: on the current path, 2: finished

        def visit(key: str, path: list[str]) -> None:
            state[key] = 1
            for k in self.nodes[key].needs:
                if k not in self.nodes:
                    continue
                if state.get(k) == 1:
                    found.append("cycle: " + " → ".join([*path[path.index(k) :], key, k]))
                elif k not in state:
                    visit(k, [*path, key])
            state[key] = 2

        for key in self.nodes:
            if key not in state:
                visit(key, [])
        return found

    def dependents(self, key: str) -> set[str]:
        """Every node that needs ``key``, directly or not."""
        out: set[str] = set()
        for n in self:  # declaration order is topological
            if key in n.needs or out & set(n.needs):
                out.add(n.key)
        return out

    def heights(self) -> dict[str, int]:
        """For each node, the most nodes on a chain of needs that starts at it (itself
        included): the steps still to run after it on its longest path."""
        height: dict[str, int] = {}
        for n in reversed(list(self)):  # dependents before what they need
            height.setdefault(n.key, 1)
            for k in n.needs:
                height[k] = max(height.get(k, 1), height[n.key] + 1)
        return height

    def by_phase(self) -> dict[Phase, list[Node]]:
        return {p: [n for n in self if n.phase == p] for p in PHASES}

    def describe(self) -> list[dict[str, Any]]:
        """The graph as data (``--graph -o json``)."""
        return [
            {
                "node": n.key,
                "phase": n.phase,
                "region": n.role or "global",
                "step": n.step_name,
                "needs": list(n.needs),
            }
            for n in self
        ]


@dataclass
class Outcome:
    """What a run of a graph did: every change in graph order, the nodes that ran (in the order
    they started) and the typed output of each."""

    changes: list[Change]
    started: list[str]
    outputs: dict[str, Any]


_frozen_lock = threading.Lock()
_frozen_runs = 0


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """While any graph runs, the heap it started with is out of the collector's sight
    (``gc.freeze``): a full collection walks every object of the process (~0.25 M once Prefect
    and the service models are loaded: ~0.13 s holding the GIL on a quiet core, 0.48 s
    measured in the middle of the start-up burst), and it stops every step at once. Young
    objects are still collected as usual, and so is what the run itself keeps. The last graph
    to end hands the frozen heap back (``gc.unfreeze``): garbage that was frozen is collected
    by the next full collection, which then walks the whole heap once (it comes soon after
    the graph when one ran during it)."""
    global _frozen_runs
    with _frozen_lock:
        _frozen_runs += 1
        if _frozen_runs == 1:
            gc.freeze()
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen_runs -= 1
            if _frozen_runs == 0:
                gc.unfreeze()


def execute(graph: Graph, cfg: Config, *, dry_run: bool, sequential: bool = False) -> Outcome:
    """Run every node once everything it needs has finished; raise when any node failed."""
    with _heap_frozen():
        return _execute(graph, cfg, dry_run=dry_run, sequential=sequential)


def _execute(graph: Graph, cfg: Config, *, dry_run: bool, sequential: bool) -> Outcome:
    outputs: dict[str, Any] = {}
    results: dict[str, StepResult] = {}
    failed: dict[str, BaseException] = {}
    started: list[str] = []
    finished: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    running = 0
    # Ready nodes start longest chain first: the critical path's steps are not queued behind
    # the burst of short ones (every root starts at once and shares this process's GIL).
    height = graph.heights()

    def ready(n: Node) -> bool:
        return n.key not in started and all(k in outputs for k in n.needs)

    def start(n: Node) -> None:
        nonlocal running
        started.append(n.key)
        token = CURRENT_NODE.set(n.key)
        try:
            handle = _launch(n, Inputs(n, outputs), cfg, dry_run=dry_run, inline=sequential)
        finally:
            CURRENT_NODE.reset(token)
        if isinstance(handle, _Now):
            finished.put((n.key, handle))
        else:
            handle.add_done_callback(functools.partial(_put, finished, n.key))
        running += 1

    while True:
        now = [n for n in graph if ready(n)]
        for n in now if sequential else sorted(now, key=lambda n: -height[n.key]):
            if sequential and running:
                break
            start(n)
        if running == 0:
            break
        key, handle = finished.get()
        running -= 1
        node = graph.nodes[key]
        try:
            result = handle.result()
            if isinstance(result, StepResult):
                outputs[key] = node.output.model_validate(result.outputs)
                results[key] = result
            else:
                outputs[key] = result
        except Exception as exc:
            failed[key] = exc
    if failed:
        raise _failure(graph, failed, started)
    changes = [c for n in graph if n.key in results for c in results[n.key].changes]
    return Outcome(changes=changes, started=started, outputs=outputs)


def _launch(n: Node, inputs: Inputs, cfg: Config, *, dry_run: bool, inline: bool) -> Any:
    """Start one node: a Prefect future, or a finished :class:`_Now` (a skip, a plain function,
    one-at-a-time mode, or a failure to build the call)."""
    try:
        value = n.skip(inputs) if n.skip is not None else None
        if value is not None:
            return _Now(value)
        args = n.args(inputs)
        kwargs = {"dry_run": dry_run} if n.mutating else {}
        if inline or not isinstance(n.step, Task):
            return _Now(n.step(cfg, *args, **kwargs))
        return n.step.submit(cfg, *args, **kwargs)
    except Exception as exc:
        return _Now(exc, failed=True)


def _put(finished: queue.SimpleQueue[tuple[str, Any]], key: str, future: Any) -> None:
    finished.put((key, future))


class _Now:
    """A finished call that looks like a Prefect future."""

    def __init__(self, value: Any, *, failed: bool = False) -> None:
        self.value, self.failed = value, failed

    def result(self) -> Any:
        if self.failed:
            raise self.value
        return self.value


def _failure(graph: Graph, failed: dict[str, BaseException], started: list[str]) -> TierbookError:
    """One error naming every failed node and what it kept from starting; it keeps the first
    failure's exit code (a refusal stays a refusal) and is raised from it. A Ctrl-C is not a
    failure: when nodes stopped because of one, the run is interrupted."""
    held = sorted(k for k in graph.nodes if k not in started)
    interrupted = [e for e in failed.values() if isinstance(e, Interrupted)]
    if interrupted:
        stopped = Interrupted(
            f"interrupted: {len(failed)} step(s) stopped, {len(held)} not started"
        )
        stopped.__cause__ = interrupted[0]
        return stopped
    text = "; ".join(f"{k} failed: {type(e).__name__}: {e}" for k, e in failed.items())
    if held:
        text += f" (not started: {', '.join(held)})"
    first = next(iter(failed.values()))
    error = StepFailed(text)
    error.exit_code = first.exit_code if isinstance(first, TierbookError) else 1
    error.__cause__ = first
    return error
