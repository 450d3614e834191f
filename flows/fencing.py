"""Fencing on return, the first step of every runbook run on an environment.

A failover that found the primary dark left its fence pending (recorded in the DR region's
lock table: :mod:`tasks.runbooks.failover.fencing`). Each run asks for it (one read in the
DR region, nothing more when there is none) and, once the region answers again, fences it at
once: its services and autoscaling floor to 0, a ``tierbook.fence.applied`` event, the
record cleared. A region still dark keeps its record and the run goes on; so does a run that
cannot read the table (it does not exist before provision). The audit only reports a pending
fence: its permissions stay read-only.
"""

from __future__ import annotations

from concurrent.futures import Future

from configs.models import Config
from flows.report import Timeline
from tasks.runbooks.failover.fencing import PendingFence, fence_if_answers, pending_fences


def fence_on_return(
    tl: Timeline,
    cfg: Config,
    *,
    dry_run: bool = False,
    read: Future[list[PendingFence]] | None = None,
) -> None:
    """Fence every region a region move left unfenced that answers again; report it.
    ``read``: the pending fences, already being read (:func:`flows.guards.open_run`)."""
    try:
        pending = read.result() if read is not None else pending_fences(cfg)
    except Exception as exc:  # never the reason a run fails; said in its report
        tl.note(f"could not read pending fences in {cfg.regions.dr}: {exc}")
        return
    for fence in pending:
        done = fence_if_answers(cfg, fence, dry_run=dry_run)
        tl.changes.extend(done.changes)
        if done.applied:
            tl.metrics["fenced_on_return"] = fence.region
            tl.note(f"fenced on return: {fence.describe()}; {done.detail}")
        else:
            tl.note(f"fence pending: {fence.describe()}; {done.describe()}")


def report_fences(tl: Timeline, cfg: Config) -> None:
    """For read-only runbooks: name each pending fence in the report, change nothing."""
    try:
        pending = pending_fences(cfg)
    except Exception as exc:  # never the reason a run fails; said in its report
        tl.note(f"could not read pending fences in {cfg.regions.dr}: {exc}")
        return
    for fence in pending:
        tl.metrics["fence_pending"] = fence.region
        tl.note(
            f"fence pending: {fence.describe()}; the next run that changes the stack, or the "
            "readiness drill, fences it once it answers"
        )
