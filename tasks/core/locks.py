"""A run lock that holds across machines and without the Prefect server.

Kept in a DynamoDB table of the environment's own account (``names.lock_table``), taken by a
conditional write: two runs cannot both win, whether started from the UI or a terminal. Region
matters: failover keeps its lock in the DR region, the one expected to answer.

A lock has a short lease (``configs.defaults.LOCK_LEASE_S``, a minute) that a heartbeat thread
renews while the run is alive, so a run killed with ``kill -9`` blocks the next one for about a
minute, not for the length of a runbook. Every renewal and the release are conditional on the
holder's token: a run never renews or releases a lock it does not hold. A run whose lock was
taken over (its heartbeat could not renew in time, or an operator released it) is told: an
error in its log, a Prefect event, and :attr:`Held.lost`.

``tierbook lock list`` / ``tierbook lock release`` are :func:`list_locks` and
:func:`release_lock`: the operator's override, recorded in the table with who and why.

::

    lock item      lock_id "<app>-<env>/<name>", kind "lock", owner (the holder's token),
                   holder (user), host, pid, run (Prefect flow run id), purpose,
                   acquired_at, renewed_at, expires_at, lease_s
    release item   lock_id "<app>-<env>/<name>/released/<ms>", kind "release", released_by,
                   reason, released_at, and the released lock's holder, host, pid, run, since
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from configs import defaults
from configs.errors import NotFound, Refused
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import StepResult, deleted, result
from tasks.core.errors import AwsError, LockHeld, PermanentAwsError
from tasks.core.log import logger
from tasks.core.retry import absent, wait_for
from tasks.core.steps import step

LOST_EVENT = "tierbook.lock.lost"


RELEASED_EVENT = "tierbook.lock.released"


# -- pure: what an item says ------------------------------------------------------------------
def lock_key(cfg: Config, name: str) -> str:
    """``<app>-<env>/<name>``; ``name`` may already carry the stack prefix."""
    prefix = f"{cfg.stack}/"
    return name if name.startswith(prefix) else prefix + name


def _s(item: dict[str, Any], key: str, default: str = "") -> str:
    return str(item.get(key, {}).get("S", default))


def _n(item: dict[str, Any], key: str) -> float | None:
    raw = item.get(key, {}).get("N")
    return float(raw) if raw is not None else None


@dataclass(frozen=True)
class LockView:
    """One lock (or release record) as the table holds it."""

    lock_id: str
    region: str
    kind: str
    owner: str
    holder: str
    host: str
    pid: int | None
    run: str
    purpose: str
    since: float | None
    expires_at: float | None
    released_by: str = ""
    reason: str = ""

    @property
    def name(self) -> str:
        return self.lock_id.split("/", 1)[1] if "/" in self.lock_id else self.lock_id

    def lease_left(self, now: float) -> float:
        """Seconds until the lease lapses; 0 or less: lapsed (anyone may take the lock)."""
        return (self.expires_at or 0.0) - now

    def describe(self, now: float) -> str:
        left = self.lease_left(now)
        lease = f"lease {left:.0f}s left" if left > 0 else f"lease lapsed {-left:.0f}s ago"
        since = _utc(self.since) if self.since else "?"
        run = f", run {self.run}" if self.run else ""
        return (
            f"{self.lock_id} is held by {self.holder or '?'} on {self.host or '?'} "
            f"(pid {self.pid or '?'}{run}) for {self.purpose or '?'} since {since} UTC; {lease}"
        )


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def view_of(item: dict[str, Any], region: str) -> LockView:
    pid = _n(item, "pid")
    return LockView(
        lock_id=_s(item, "lock_id"),
        region=region,
        # items written before kinds existed are locks when they have an owner
        kind=_s(item, "kind", "lock" if "owner" in item else ""),
        owner=_s(item, "owner"),
        holder=_s(item, "holder"),
        host=_s(item, "host"),
        pid=int(pid) if pid is not None else None,
        run=_s(item, "run"),
        purpose=_s(item, "purpose"),
        since=_n(item, "acquired_at"),
        expires_at=_n(item, "expires_at"),
        released_by=_s(item, "released_by"),
        reason=_s(item, "reason"),
    )


def lock_views(
    items: list[dict[str, Any]], stack: str, region: str, kinds: tuple[str, ...] = ("lock",)
) -> list[LockView]:
    """The environment's items of ``kinds`` (the table also keeps the readiness scorecard)."""
    views = [view_of(i, region) for i in items]
    return sorted(
        (v for v in views if v.lock_id.startswith(f"{stack}/") and v.kind in kinds),
        key=lambda v: (v.kind, v.lock_id),
    )


def lock_item(
    lock_id: str, owner: str, purpose: str, *, now: float, lease_s: float, run: str | None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "lock_id": {"S": lock_id},
        "kind": {"S": "lock"},
        "owner": {"S": owner},
        "holder": {"S": _user()},
        "host": {"S": socket.gethostname()},
        "pid": {"N": str(os.getpid())},
        "purpose": {"S": purpose},
        "acquired_at": {"N": f"{now:.3f}"},
        "renewed_at": {"N": f"{now:.3f}"},
        "expires_at": {"N": f"{now + lease_s:.3f}"},
        "lease_s": {"N": f"{lease_s:g}"},
    }
    if run:
        item["run"] = {"S": run}
    return item


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return os.environ.get("USER", "?")


def _flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx is not None and ctx.flow_run is not None else None


# -- the table ---------------------------------------------------------------------------------
def ensure_lock_table(cfg: Config, region: str) -> str:
    """Create the lock table if it is missing; return its name."""
    table = names_for(cfg).lock_table
    ddb = connect(cfg).client("dynamodb", region)
    if absent(lambda: ddb.describe_table(TableName=table), "ResourceNotFoundException") is not None:
        return table
    try:
        ddb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "lock_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "lock_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": k, "Value": v} for k, v in names_for(cfg).tags("locks").items()],
        )
    except PermanentAwsError as exc:
        if exc.code != "ResourceInUseException":  # another run created it a moment ago
            raise
    wait_for(
        lambda: ddb.describe_table(TableName=table)["Table"]["TableStatus"],
        until=lambda status: status == "ACTIVE",
        what=f"lock table {table} active",
        timeout_s=defaults.LOCK_TABLE_TIMEOUT_S,
        interval_s=2,
    )
    return table


# -- holding a lock ----------------------------------------------------------------------------
@dataclass
class Held:
    """A lock this run holds. ``lost`` says why it is no longer ours, once it is not."""

    lock_id: str
    owner: str
    table: str
    region: str
    lease_s: float
    run: str | None = None
    renewals: int = 0
    lost: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)


def _renew(ddb: Any, held: Held, now: float) -> None:
    """Push the lease out by one lease, only while the item still names this run's token."""
    ddb.update_item(
        TableName=held.table,
        Key={"lock_id": {"S": held.lock_id}},
        UpdateExpression="SET expires_at = :exp, renewed_at = :now",
        ConditionExpression="#o = :me",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={
            ":me": {"S": held.owner},
            ":now": {"N": f"{now:.3f}"},
            ":exp": {"N": f"{now + held.lease_s:.3f}"},
        },
    )


def _heartbeat(cfg: Config, ddb: Any, held: Held, log: Any) -> None:
    """Renew until told to stop. A failed renewal is logged and tried again next beat (the
    lease outlives two misses); a renewal refused because the item names another holder means
    the lock is lost: said loudly, recorded, and the beating stops."""
    every = held.lease_s / defaults.LOCK_HEARTBEATS_PER_LEASE
    while not held._stop.wait(every):
        try:
            _renew(ddb, held, time.time())
            held.renewals += 1
        except AwsError as exc:
            if held._stop.is_set():  # released meanwhile: nothing to say
                return
            if exc.code == "ConditionalCheckFailedException":
                _lost(cfg, held, log)
                return
            if exc.code == "ResourceNotFoundException":  # destroy deletes the table last
                log.info("lock table of %s is gone; nothing left to renew", held.lock_id)
                return
            log.warning("could not renew lock %s (will retry): %s", held.lock_id, exc)


def _lost(cfg: Config, held: Held, log: Any) -> None:
    ddb = connect(cfg).client("dynamodb", held.region, impaired=True)
    try:
        item = ddb.get_item(TableName=held.table, Key={"lock_id": {"S": held.lock_id}}).get("Item")
    except AwsError as exc:  # who holds it now is detail; that this run does not, is the news
        item, unknown = None, f"{held.lock_id} is no longer this run's (could not read it: {exc})"
    else:
        unknown = f"{held.lock_id} was released by someone else"
    held.lost = view_of(item, held.region).describe(time.time()) if item else unknown
    log.error(
        "LOCK LOST: %s is no longer held by this run (%s); another run may act on the same "
        "resources now",
        held.lock_id,
        held.lost,
    )
    if held.run:
        _emit(cfg, LOST_EVENT, held.lock_id, {"lock": held.lock_id, "now": held.lost})


def _emit(cfg: Config, event: str, lock_id: str, payload: dict[str, Any]) -> None:
    """A Prefect event about a lock, for automations; only from within a flow run."""
    try:
        from prefect.events import emit_event

        emit_event(
            event=event,
            resource={
                "prefect.resource.id": f"tierbook.lock.{lock_id}",
                "prefect.resource.name": lock_id,
            },
            related=[
                {
                    "prefect.resource.id": f"tierbook.env.{cfg.stack}",
                    "prefect.resource.role": "environment",
                }
            ],
            payload=payload,
        )
    except Exception as exc:  # events are telemetry: log, never fail the run
        logging.getLogger("tierbook").debug("could not emit %s: %s", event, exc)


@contextmanager
def hold(cfg: Config, name: str, *, region: str, purpose: str) -> Iterator[Held]:
    """Hold lock ``name`` (e.g. ``failover``) for the block; raise :class:`LockHeld` if taken.

    The lease is short and renewed by a heartbeat thread while the block runs; set
    ``TIERBOOK_LOCK_LEASE_S`` to shorten it (tests).
    """
    table = ensure_lock_table(cfg, region)
    ddb = connect(cfg).client("dynamodb", region)
    lease_s = defaults.lock_lease_s()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    now = time.time()
    lock_id = lock_key(cfg, name)
    run = _flow_run_id()
    try:
        ddb.put_item(
            TableName=table,
            Item=lock_item(lock_id, owner, purpose, now=now, lease_s=lease_s, run=run),
            ConditionExpression="attribute_not_exists(lock_id) OR expires_at < :now",
            ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
        )
    except PermanentAwsError as exc:
        if exc.code != "ConditionalCheckFailedException":
            raise
        found = ddb.get_item(TableName=table, Key={"lock_id": {"S": lock_id}}).get("Item", {})
        raise LockHeld(
            f"{view_of(found, region).describe(time.time())}; wait for it to finish, or if "
            f"its run is gone: tierbook lock release {name} --reason TEXT"
        ) from None
    log = logger()
    log.info(
        "took lock %s in %s (lease %gs, renewed while this run lives)", lock_id, region, lease_s
    )
    held = Held(lock_id=lock_id, owner=owner, table=table, region=region, lease_s=lease_s, run=run)
    # Renewals go through an impaired-region client: a short retry deadline, so one slow call
    # cannot outlast the lease it is renewing.
    beat = threading.Thread(
        target=_heartbeat,
        args=(cfg, connect(cfg).client("dynamodb", region, impaired=True), held, log),
        name=f"lock-heartbeat {lock_id}",
        daemon=True,
    )
    beat.start()
    try:
        yield held
    finally:
        held._stop.set()
        beat.join(timeout=lease_s)
        _release_own(ddb, held, log)


def _release_own(ddb: Any, held: Held, log: Any) -> None:
    """Delete the item only if it still names this run; never someone else's lock."""
    if held.lost:
        log.error("lock %s was lost during the run: %s", held.lock_id, held.lost)
        return
    try:
        ddb.delete_item(
            TableName=held.table,
            Key={"lock_id": {"S": held.lock_id}},
            ConditionExpression="#o = :me",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":me": {"S": held.owner}},
        )
    except AwsError as exc:  # lost meanwhile, or AWS down: say so, do not mask the run's outcome
        if exc.code == "ConditionalCheckFailedException":
            held.lost = f"{held.lock_id} was taken over or released by an operator"
            log.error("lock %s was no longer this run's at release: left as it is", held.lock_id)
        elif exc.code == "ResourceNotFoundException":
            log.info("lock %s went with its table", held.lock_id)
        else:
            log.warning(
                "could not release lock %s (its lease lapses on its own): %s", held.lock_id, exc
            )
    else:
        log.info("released lock %s", held.lock_id)


# -- the operator's view and override ---------------------------------------------------------
def _regions(cfg: Config) -> tuple[str, ...]:
    return (cfg.regions.primary, cfg.regions.dr)


def _scan(cfg: Config, region: str) -> list[dict[str, Any]]:
    """Every item of the region's lock table; none when the table does not exist."""
    table = names_for(cfg).lock_table
    ddb = connect(cfg).client("dynamodb", region, impaired=True)
    if absent(lambda: ddb.describe_table(TableName=table), "ResourceNotFoundException") is None:
        return []
    pages = ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [item for page in pages for item in page.get("Items", [])]


@dataclass
class LockListing:
    locks: list[LockView]
    releases: list[LockView]
    unreachable: dict[str, str]  # region -> why its table could not be read


def list_locks(cfg: Config) -> LockListing:
    """Every lock of the environment in both regions, and the releases recorded so far. A
    region that does not answer is reported, not fatal (the other one may hold the lock)."""
    out = LockListing([], [], {})
    for region in _regions(cfg):
        try:
            items = _scan(cfg, region)
        except AwsError as exc:
            out.unreachable[region] = str(exc)
            continue
        out.locks += lock_views(items, cfg.stack, region)
        out.releases += lock_views(items, cfg.stack, region, kinds=("release",))
    return out


def operator() -> str:
    return f"{_user()}@{socket.gethostname()}"


def release_lock(cfg: Config, name: str, *, reason: str, by: str | None = None) -> LockView:
    """Release lock ``name`` whoever holds it, recording who and why next to it.

    The delete is conditional on the holder seen here, so a lock that changed hands meanwhile
    is not released by mistake. Refused without a reason."""
    if not reason.strip():
        raise Refused("releasing a lock needs a reason (--reason TEXT): it is recorded")
    lock_id = lock_key(cfg, name)
    found = [v for v in list_locks(cfg).locks if v.lock_id == lock_id]
    if not found:
        raise NotFound(f"no lock {lock_id} in {' or '.join(_regions(cfg))}")
    view = found[0]
    table = names_for(cfg).lock_table
    ddb = connect(cfg).client("dynamodb", view.region)
    now = time.time()
    by = by or operator()
    try:
        ddb.delete_item(
            TableName=table,
            Key={"lock_id": {"S": lock_id}},
            ConditionExpression="#o = :seen",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":seen": {"S": view.owner}},
        )
    except PermanentAwsError as exc:
        if exc.code != "ConditionalCheckFailedException":
            raise
        raise Refused(
            f"{lock_id} changed hands while being released; list the locks again"
        ) from None
    record: dict[str, Any] = {
        "lock_id": {"S": f"{lock_id}/released/{int(now * 1000)}"},
        "kind": {"S": "release"},
        "released_by": {"S": by},
        "reason": {"S": reason.strip()},
        "released_at": {"N": f"{now:.3f}"},
        "owner": {"S": view.owner},
        "holder": {"S": view.holder or "?"},
        "host": {"S": view.host or "?"},
        "purpose": {"S": view.purpose or "?"},
        "acquired_at": {"N": f"{view.since or 0:.3f}"},
        "expires_at": {"N": f"{view.expires_at or 0:.3f}"},
    }
    if view.pid is not None:
        record["pid"] = {"N": str(view.pid)}
    if view.run:
        record["run"] = {"S": view.run}
    ddb.put_item(TableName=table, Item=record)
    logger().warning(
        "lock %s released by %s: %s (was: %s)", lock_id, by, reason.strip(), view.describe(now)
    )
    if _flow_run_id():
        _emit(cfg, RELEASED_EVENT, lock_id, {"lock": lock_id, "by": by, "reason": reason.strip()})
    return view


# -- the run lock's table, deleted last ------------------------------------------------------
@step("delete {role} tierbook tables")
def ensure_tables_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """The lock table (which also keeps the readiness scorecard): tierbook made it."""
    names = names_for(cfg, role)
    ddb = connect(cfg).client("dynamodb", names.region)
    table = names.lock_table
    found = absent(
        lambda: ddb.describe_table(TableName=table)["Table"], "ResourceNotFoundException"
    )
    if found is None or found.get("TableStatus") == "DELETING":
        return result([], dry_run)
    if not dry_run:
        ddb.delete_table(TableName=table)
    return result([deleted("dynamodb:table", table, names.region)], dry_run)
