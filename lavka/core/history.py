"""The hash-chained, append-only change log (DESIGN.md §2.3).

Writers take the chain head row's lock, so records get consecutive ids in commit order and each
record's hash covers its content and the previous record's hash. `verify_chain` recomputes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from lavka.core.actor import Actor
from lavka.core.models import ChainHead, HistoryRecord
from lavka.core.rows import insert_rows

GENESIS = "0" * 64


@dataclass
class Change:
    entity: str
    entity_id: int
    field: str
    old: Any = None
    new: Any = None
    created: bool = False
    context: dict[str, Any] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """The JSON form a value is stored and hashed in (Decimal and dates become strings)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _digest(record: HistoryRecord) -> str:
    body = [
        record.id,
        record.entity,
        record.entity_id,
        record.field,
        record.old_value,
        record.new_value,
        record.created,
        record.source,
        record.user_id,
        record.actor_ref,
        record.actor_name,
        record.context,
        record.created_at.isoformat(timespec="microseconds"),
        record.prev_hash,
    ]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
    return hashlib.sha256(text.encode()).hexdigest()


def write(
    changes: Iterable[Change],
    actor: Actor,
    *,
    at: Any = None,
    insert: Callable[[list[HistoryRecord]], Any] | None = None,
) -> list[HistoryRecord]:
    """Append `changes` to the chain. Must run inside the action's transaction.

    `insert` stores the records (default: bulk_create; the bulk import passes its faster writer).
    Inside `gathered()` the changes are held and appended when it ends (and [] is returned).
    """
    changes = [c for c in changes if c.created or plain(c.old) != plain(c.new)]
    if not changes:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("history.write must run inside the action's transaction")
    when = at or timezone.now()
    pending = getattr(_gathering, "pending", None)
    if pending is not None and insert is None:
        pending.extend((change, actor, when) for change in changes)
        return []
    return _append([(change, actor, when) for change in changes], insert)


_gathering = threading.local()


@contextlib.contextmanager
def gathered() -> Iterator[None]:
    """Hold the history an action writes and append it in one go when the block ends.

    An action that writes several entities (an order with its new customer) then takes the chain
    lock once, at the end, just before its commit: concurrent actions wait for each other only
    for the append, not for the whole action.
    """
    if getattr(_gathering, "pending", None) is not None:
        yield
        return
    _gathering.pending = []
    try:
        yield
        entries = _gathering.pending
    finally:
        _gathering.pending = None
    if entries:
        _append(entries, None)


def _append(
    entries: list[tuple[Change, Actor, Any]], insert: Callable[[list[HistoryRecord]], Any] | None
) -> list[HistoryRecord]:
    # Everything that does not depend on the chain's tip is prepared before taking its lock: the
    # lock is held until the commit, and every writer of the installation waits for it.
    records = [
        HistoryRecord(
            entity=change.entity,
            entity_id=change.entity_id,
            field=change.field,
            old_value=plain(change.old),
            new_value=plain(change.new),
            created=change.created,
            source=actor.source,
            user_id=actor.user_id,
            actor_ref=actor.ref,
            actor_name=actor.name[:150],
            context=plain(change.context),
            created_at=when,
        )
        for change, actor, when in entries
    ]
    head = ChainHead.objects.select_for_update().get(pk=1)
    prev_hash, next_id = head.last_hash, head.last_id
    for record in records:
        next_id += 1
        record.id, record.prev_hash = next_id, prev_hash
        record.hash = prev_hash = _digest(record)
    (insert or _insert)(records)
    ChainHead.objects.filter(pk=1).update(last_id=next_id, last_hash=prev_hash)
    return records


_COLUMNS = (
    "id, entity, entity_id, field, old_value, new_value, created, source, user_id, actor_ref, actor_name,"
    " context, created_at, prev_hash, hash"
)


_PG_TYPES = (
    "bigint[]",
    "varchar[]",
    "bigint[]",
    "varchar[]",
    "jsonb[]",
    "jsonb[]",
    "boolean[]",
    "varchar[]",
    "bigint[]",
    "varchar[]",
    "varchar[]",
    "jsonb[]",
    "timestamptz[]",
    "varchar[]",
    "varchar[]",
)


def _insert(records: list[HistoryRecord]) -> None:
    """One INSERT without the ORM's per-row compilation (this runs under the chain lock)."""
    connection = transaction.get_connection()
    moment = (
        (lambda at: at) if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value
    )
    rows = [
        (
            r.id,
            r.entity,
            r.entity_id,
            r.field,
            _json(r.old_value),
            _json(r.new_value),
            r.created,
            r.source,
            r.user_id,
            r.actor_ref,
            r.actor_name,
            _json(r.context),
            moment(r.created_at),
            r.prev_hash,
            r.hash,
        )
        for r in records
    ]
    insert_rows(HistoryRecord._meta.db_table, _COLUMNS.split(", "), _PG_TYPES, rows)


def _json(value: Any) -> str | None:
    """As the ORM stores a JSONField: None is SQL NULL."""
    return None if value is None else json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


@dataclass
class ChainProblem:
    record_id: int
    reason: str

    def __str__(self) -> str:
        return f"history record {self.record_id}: {self.reason}"


def _records(batch: int = 5000) -> Iterator[HistoryRecord]:
    last = 0
    while True:
        chunk = list(HistoryRecord.objects.filter(id__gt=last).order_by("id")[:batch])
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].id


def verify_chain() -> tuple[int, ChainProblem | None]:
    """Walk the chain; return (records checked, the first problem or None)."""
    expected_id, prev_hash, count = 1, GENESIS, 0
    for record in _records():
        if record.id != expected_id:
            return count, ChainProblem(expected_id, f"missing (next present record is {record.id})")
        if record.prev_hash != prev_hash:
            return count, ChainProblem(record.id, "does not link to the previous record")
        if _digest(record) != record.hash:
            return count, ChainProblem(record.id, "content does not match its hash (altered)")
        prev_hash = record.hash
        expected_id += 1
        count += 1
    head = ChainHead.objects.get(pk=1)
    if head.last_id != count or head.last_hash != prev_hash:
        return count, ChainProblem(head.last_id, "missing or altered at the end of the chain")
    return count, None


def snapshot(instance: Any, fields: dict[str, str]) -> dict[str, Any]:
    """The tracked attribute values of `instance`, keyed by history field name."""
    return {name: plain(getattr(instance, attr)) for attr, name in fields.items()}


def diff(
    entity: str,
    entity_id: int,
    before: dict[str, Any],
    after: dict[str, Any],
    context: dict[str, Any] | None = None,
) -> list[Change]:
    return [
        Change(entity, entity_id, name, before.get(name), after.get(name), context=dict(context or {}))
        for name in after
        if before.get(name) != after.get(name)
    ]
