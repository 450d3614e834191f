"""A run lock that holds across machines and without the Prefect server.

Kept in a DynamoDB table of the environment's own account (``names.lock_table``), taken by a
conditional write: two runs cannot both win, whether started from the UI or a terminal. A lock
has a lease; a crashed holder's lock expires instead of blocking the next run forever. Region
matters: failover keeps its lock in the DR region, the one expected to answer.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from configs.errors import LockHeld
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import StepResult, deleted, result
from tasks.core.log import logger
from tasks.core.retry import absent, is_code, wait_for
from tasks.core.steps import step

DEFAULT_LEASE_S = 3600.0


def ensure_lock_table(cfg: Config, region: str) -> str:
    """Create the lock table if it is missing; return its name."""
    table = names_for(cfg).lock_table
    ddb = connect(cfg).client("dynamodb", region)
    try:
        ddb.describe_table(TableName=table)
        return table
    except Exception as exc:
        if not is_code(exc, "ResourceNotFoundException"):
            raise
    try:
        ddb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "lock_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "lock_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": k, "Value": v} for k, v in names_for(cfg).tags("locks").items()],
        )
    except Exception as exc:
        if not is_code(exc, "ResourceInUseException"):
            raise
    wait_for(
        lambda: ddb.describe_table(TableName=table)["Table"]["TableStatus"],
        until=lambda status: status == "ACTIVE",
        what=f"lock table {table} active",
        timeout_s=120,
        interval_s=2,
    )
    return table


@contextmanager
def hold(
    cfg: Config, name: str, *, region: str, purpose: str, lease_s: float = DEFAULT_LEASE_S
) -> Iterator[dict[str, Any]]:
    """Hold lock ``name`` (e.g. ``failover``) for the block; raise :class:`LockHeld` if taken."""
    table = ensure_lock_table(cfg, region)
    ddb = connect(cfg).client("dynamodb", region)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    now = time.time()
    lock_id = f"{cfg.stack}/{name}"
    item = {
        "lock_id": {"S": lock_id},
        "owner": {"S": owner},
        "purpose": {"S": purpose},
        "acquired_at": {"N": f"{now:.3f}"},
        "expires_at": {"N": f"{now + lease_s:.3f}"},
    }
    try:
        ddb.put_item(
            TableName=table,
            Item=item,
            ConditionExpression="attribute_not_exists(lock_id) OR expires_at < :now",
            ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
        )
    except Exception as exc:
        if not is_code(exc, "ConditionalCheckFailedException"):
            raise
        held = ddb.get_item(TableName=table, Key={"lock_id": {"S": lock_id}}).get("Item", {})
        since = float(held.get("acquired_at", {}).get("N", "0"))
        raise LockHeld(
            f"{lock_id} is held by {held.get('owner', {}).get('S', '?')} "
            f"({held.get('purpose', {}).get('S', '?')}) since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(since))} UTC; "
            "wait for it to finish (or let its lease expire)"
        ) from None
    logger().info("took lock %s in %s", lock_id, region)
    try:
        yield {"lock_id": lock_id, "owner": owner, "table": table, "region": region}
    finally:
        try:
            ddb.delete_item(
                TableName=table,
                Key={"lock_id": {"S": lock_id}},
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": owner}},
            )
        except Exception as exc:  # lost the lease meanwhile: say so, do not mask the run's outcome
            logger().warning("could not release lock %s: %s", lock_id, exc)


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
