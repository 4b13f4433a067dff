"""DynamoDB answers one request at a time, so each request is atomic.

moto's DynamoDB evaluates a condition and then writes, without a lock; under the threaded
server two conditional writes to one item (or two transactions) can both pass their
conditions, and a read can see half a transaction. In DynamoDB a conditional write is atomic
and a transaction is serializable with every other request on its items ("Isolation levels
for DynamoDB transactions", Developer Guide). The guard's ledger relies on exactly that, so
the emulator serialises moto's DynamoDB handler. Faults are injected before the lock
(setup_class), so a slow answer from an injected fault holds no other request back.
"""

import threading
from typing import Any

_lock = threading.Lock()


def apply() -> None:
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, "_cmk_guard_atomic", False):
        return
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    DynamoHandler._cmk_guard_atomic = True  # type: ignore[attr-defined]
