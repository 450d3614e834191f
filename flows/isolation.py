"""A game day's network cut undone: by the game day itself, or, left behind by a crash, by the
next game day or readiness drill.

The game day records the original network ACLs of the AZ it cuts off before the cut
(:mod:`tasks.runbooks.drills.isolation`) and restores them at its end, after a failure or an
abort. A run killed mid-cut leaves the record: the next game day and the readiness drill read
it (one read in the DR region) and restore the subnets, then delete the drill's ACL and the
record — unless a game day holds its lock right now (its cut is not left over).
"""

from __future__ import annotations

from configs.models import Config
from flows.report import Timeline
from tasks.runbooks.drills.isolation import game_day_running, pending_isolation, restore_isolation


def restore_left_isolation(
    tl: Timeline, cfg: Config, *, dry_run: bool = False, strict: bool = False
) -> None:
    """Restore what a crashed game day's cut left; report it. ``strict``: a failure to read or
    restore fails the run (the game day does not start on a cut AZ); else it is a note."""
    try:
        left = pending_isolation(cfg)
        if left is None:
            return
        if game_day_running(cfg):
            tl.note(f"network isolation in progress: {left.describe()} (a game day is running)")
            return
        if dry_run:
            tl.note(f"left by a game day: {left.describe()}; a run restores it first")
            return
        done = restore_isolation(cfg, left)
    except Exception as exc:
        if strict:
            raise
        tl.note(f"could not restore a game day's network isolation: {exc}")
        return
    tl.changes.extend(done.changes)
    tl.metrics["isolation_restored"] = left.az
    tl.note(f"restored what a game day left: {left.describe()}; {done.detail}")


def reconnect(tl: Timeline, cfg: Config, *, failing: bool) -> None:
    """The game day's own undo of its cut, as recorded; a failed restore never hides the run's
    own failure (``failing``): the record stays and the next game day or readiness drill
    restores it."""
    try:
        left = pending_isolation(cfg)
        if left is not None:
            done = restore_isolation(cfg, left)
            tl.changes.extend(done.changes)
            tl.metrics["subnets_restored"] = done.outputs["restored"]
    except Exception as exc:
        if not failing:
            raise
        tl.note(
            f"could not restore the network ACLs of the isolated AZ: {exc}; the next game day "
            "or `tierbook drill readiness` restores them"
        )
