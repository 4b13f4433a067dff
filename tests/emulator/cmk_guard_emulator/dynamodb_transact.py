"""A DynamoDB transaction rolls back the items it touched, not a copy of every table.

moto's `transact_write_items` deep-copies each table a transaction names, once per item of
the transaction, so that it can put the copy back if the transaction is cancelled: every
TransactWriteItems cost time in proportion to everything the table holds (two copies of the
ledger per run that tells or fixes, and the ledger grows with every event). Here a
transaction keeps a copy of only the items it names, and a cancelled one puts exactly those
back; what moto answers is unchanged.

Requests to DynamoDB are answered one at a time (dynamodb_atomic.py), so nothing else writes
between the snapshot and the rollback. A table with a stream keeps moto's whole-table copy
(the stream's records of a cancelled transaction are rolled back with it there).
"""

import copy
import threading
from typing import Any, Optional

_local = threading.local()

Snapshot = list[tuple[Any, Any, Any, Any]]  # (table, hash value, range value, item copy or None)


def apply() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend, "_cmk_guard_transact", False):
        return

    class TablesNotCopied:
        """`copy` as moto.dynamodb.models sees it: inside a transaction this module snapshots,
        a whole table is not copied (its rollback is the snapshot's)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(x: Any, memo: Any = None) -> Any:
            if isinstance(x, Table) and getattr(_local, "items_only", False):
                return x
            return copy.deepcopy(x, memo)

    models.copy = TablesNotCopied()  # type: ignore[assignment]
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshot = _snapshot(self, transact_items)
        if snapshot is None:
            return original(self, transact_items)
        _local.items_only = True
        try:
            return original(self, transact_items)
        except BaseException:
            _restore(snapshot)
            raise
        finally:
            _local.items_only = False

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend._cmk_guard_transact = True  # type: ignore[attr-defined]


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> Optional[Snapshot]:
    """A copy of every item the transaction names (None where there is none yet); None when
    this cannot be done item by item (a streamed table, a key moto will refuse anyway)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    snapshot: Snapshot = []
    for entry in transact_items:
        if not isinstance(entry, dict) or len(entry) != 1:
            return None
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is None or table.stream_shard is not None:
            return None
        key = op.get("Item") if op_type == "Put" else op.get("Key")
        try:
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            current = table.get_item(hash_value, range_value)
        except Exception:  # noqa: BLE001 - moto answers the bad key itself
            return None
        snapshot.append((table, hash_value, range_value, copy.deepcopy(current)))
    return snapshot


def _restore(snapshot: Snapshot) -> None:
    """Puts every named item back as it was (in reverse, so a key named twice ends as first
    seen), without a stream record: the writes never happened."""
    for table, hash_value, range_value, item in reversed(snapshot):
        if range_value is not None:
            if item is None:
                table.items.get(hash_value, {}).pop(range_value, None)
            else:
                table.items[hash_value][range_value] = item
        elif item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
