"""Records a run leaves for later runs, kept beside the locks in the DR region's lock table (a
pending fence, a game day's network cut): one item each, keyed like the locks
(``<app>-<env>/<what>/<region>``) and tagged with a ``kind``, so ``tierbook lock list`` does
not take them for locks. Values are plain Python (str, float, int, list, dict), turned into
DynamoDB's typed attributes by boto3's own serializer.

Reads of a table that does not exist yet (before provision) find nothing. ``probe``: a read
that must never hold a run up (a hang is not retried).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from configs.models import Config
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.retry import absent

NO_TABLE = "ResourceNotFoundException"
_to_item, _from_item = TypeSerializer(), TypeDeserializer()


def _table(cfg: Config, *, probe: bool = False) -> tuple[Any, str]:
    return connect(cfg).client("dynamodb", cfg.regions.dr, probe=probe), names_for(cfg).lock_table


def _typed(value: Any) -> Any:
    """Floats as Decimal (DynamoDB numbers), also inside lists and maps."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, (list, tuple)):
        return [_typed(v) for v in value]
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    """DynamoDB numbers back as int or float, also inside lists and maps."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def item_of(record_id: str, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The DynamoDB item of a record (pure)."""
    data = {"lock_id": record_id, "kind": kind, **fields}
    return {k: _to_item.serialize(_typed(v)) for k, v in data.items()}


def fields_of(item: dict[str, Any]) -> dict[str, Any]:
    """A record's fields from its item (pure): its key and kind left out."""
    return {
        k: _plain(_from_item.deserialize(v))
        for k, v in item.items()
        if k not in ("lock_id", "kind")
    }


def put_record(cfg: Config, record_id: str, kind: str, fields: dict[str, Any]) -> None:
    ddb, table = _table(cfg)
    ddb.put_item(TableName=table, Item=item_of(record_id, kind, fields))


def get_record(cfg: Config, record_id: str, *, probe: bool = False) -> dict[str, Any] | None:
    ddb, table = _table(cfg, probe=probe)
    key = {"lock_id": {"S": record_id}}
    found = absent(lambda: ddb.get_item(TableName=table, Key=key, ConsistentRead=True), NO_TABLE)
    item = (found or {}).get("Item")
    return fields_of(item) if item else None


def get_records(cfg: Config, record_ids: list[str], *, probe: bool = False) -> list[dict[str, Any]]:
    """The records among ``record_ids`` that exist, in one read."""
    ddb, table = _table(cfg, probe=probe)
    keys = [{"lock_id": {"S": r}} for r in record_ids]
    found = absent(
        lambda: ddb.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}}),
        NO_TABLE,
    )
    return [fields_of(i) for i in (found or {}).get("Responses", {}).get(table, [])]


def delete_record(cfg: Config, record_id: str) -> bool:
    """Delete the record; True when there was one."""
    ddb, table = _table(cfg)
    gone = absent(
        lambda: ddb.delete_item(
            TableName=table, Key={"lock_id": {"S": record_id}}, ReturnValues="ALL_OLD"
        ),
        NO_TABLE,
    )
    return bool((gone or {}).get("Attributes"))


def take_record(
    cfg: Config, record_id: str, *, expect: dict[str, str], now: float
) -> dict[str, Any] | None:
    """Delete the record if its ``expect`` fields hold and its ``expires_at`` is after
    ``now``, and return its fields; None when there is no such record. Conditional, so two
    runs cannot both take one record."""
    ddb, table = _table(cfg)
    names = {f"#{i}": k for i, k in enumerate(expect)}
    values = {f":{i}": _to_item.serialize(v) for i, v in enumerate(expect.values())}
    checks = [f"#{i} = :{i}" for i in range(len(expect))]
    gone = absent(
        lambda: ddb.delete_item(
            TableName=table,
            Key={"lock_id": {"S": record_id}},
            ConditionExpression=" AND ".join([*checks, "expires_at > :now"]),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={**values, ":now": _to_item.serialize(_typed(now))},
            ReturnValues="ALL_OLD",
        ),
        NO_TABLE,
        "ConditionalCheckFailedException",
    )
    item = (gone or {}).get("Attributes")
    return fields_of(item) if item else None
