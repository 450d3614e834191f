"""Named defaults, in one place. Configs may override the retry and timeout ones."""

from __future__ import annotations

import os

# --- AWS calls ------------------------------------------------------------------------------
CONNECT_TIMEOUT_S = 5.0


READ_TIMEOUT_S = 30.0


RETRY_MAX_ATTEMPTS = 8


RETRY_DEADLINE_S = 90.0


RETRY_INITIAL_BACKOFF_S = 0.2


RETRY_MAX_BACKOFF_S = 8.0


# Calls into a region that may be down (fencing the old primary) get these instead.
IMPAIRED_REGION_DEADLINE_S = 15.0


IMPAIRED_REGION_CONNECT_TIMEOUT_S = 2.0


IMPAIRED_REGION_READ_TIMEOUT_S = 5.0


# One probe of a region that may be dark: every probe call in parallel, all under this.
REGION_PROBE_DEADLINE_S = 6.0


# --- Waiting for AWS state ------------------------------------------------------------------
POLL_INTERVAL_S = 5.0


def poll_scale() -> float:
    """Multiplier on every poll interval; tests shrink it (``TIERBOOK_POLL_SCALE=0.01``)."""
    try:
        return max(0.0, float(os.environ.get("TIERBOOK_POLL_SCALE", "1")))
    except ValueError:
        return 1.0


# An ElastiCache Global Datastore: creating it, or a member joining or leaving, takes AWS
# ten to twenty minutes.
GLOBAL_CACHE_TIMEOUT_S = 2400.0


# --- Run locks ------------------------------------------------------------------------------
# A held lock is renewed by a heartbeat; a crashed holder's lock lapses one lease after its
# last renewal, so a re-run waits about a minute, not the length of a runbook.
LOCK_LEASE_S = 60.0


LOCK_HEARTBEATS_PER_LEASE = 3  # renew every 20 s: two renewals may fail before the lease does


LOCK_TABLE_TIMEOUT_S = 120.0


def lock_lease_s() -> float:
    """The lease of a run lock; tests shorten it (``TIERBOOK_LOCK_LEASE_S=3``)."""
    try:
        value = float(os.environ.get("TIERBOOK_LOCK_LEASE_S", LOCK_LEASE_S))
    except ValueError:
        return LOCK_LEASE_S
    return value if value >= 1.0 else LOCK_LEASE_S
