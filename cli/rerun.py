"""What is safe to run again after a Ctrl-C or a failure: the epilog of each command's help."""

from __future__ import annotations

READ_ONLY = "Safe to re-run: it only reads."

RERUN = {
    "snapshot-copy": (
        "Safe to re-run: a copy stopped half-way is picked up by its name within the same "
        "second, else a new one is made; pruning keeps the newest copies."
    ),
    "preflight": READ_ONLY,
    "audit": READ_ONLY,
    "readiness": (
        "Safe to re-run: it only reads, except that it restores the network ACLs of an AZ a "
        "killed game day left cut off (--isolate-network), then deletes the drill's deny-all "
        "ACL and its record."
    ),
    "provision": (
        "Safe to re-run, also after Ctrl-C or a failure: every step describes, compares and "
        "changes only the difference, so a re-run picks up where the last one stopped and a "
        "converged stack is left alone."
    ),
    "deploy": (
        "Safe to re-run with the same --tag: a task-definition revision is registered only if "
        "it differs and a service is rolled only if it does not run the digest yet. Rebuilding "
        "a tag that is already in an immutable repository fails (take it with --source "
        "pushed). Ctrl-C releases the deploy lock; after a crash it lapses with its lease."
    ),
    "rollback": (
        "Re-running rolls back from the revision now running: name the revision with --to "
        "to repeat the same rollback."
    ),
    "failover": (
        "Interrupted before the database promotion: re-run. After it, readiness reports the DR "
        "database as already promoted and refuses: finish with --force '<reason>' or go home "
        "with `tierbook failback`. Ctrl-C releases the failover lock."
    ),
    "switchover": (
        "Safe to re-run: each step checks where the environment stands before acting (a "
        "promoted DR database is not promoted twice). Stopped after the fence, the primary "
        "stays fenced until a re-run completes. Ctrl-C releases the lock."
    ),
    "region": (
        "Safe to re-run: a drill stopped half-way is finished by `tierbook failback` (or "
        "re-run once the stack is home). Ctrl-C releases the lock."
    ),
    "failback": (
        "Safe to re-run: each step checks where the environment stands before acting. Ctrl-C "
        "releases the lock."
    ),
    "redrive": (
        "Safe to re-run: a message is deleted from the dead-letter queue only after it was "
        "sent; one received when the run stopped is back after --visibility-timeout and moves "
        "with the next run (so a message can arrive twice, never be lost)."
    ),
    "destroy": "Safe to re-run: it deletes what is left.",
    "backup": (
        "Safe to re-run: each run restores under its own drill id; an interrupted run may "
        "leave its restored database (named in its report) to delete."
    ),
    "gameday": (
        "Do not re-run at once: the faults already injected (a database or cache failover, "
        "stopped tasks) recover on their own; wait for `tierbook drill readiness` to pass. "
        "An AZ cut off with --isolate-network is put back on its network ACLs at the end, "
        "after a failure and on Ctrl-C; after a crash the next game day or `tierbook drill "
        "readiness` restores it from the record in the DR region's lock table."
    ),
}
