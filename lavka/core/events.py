"""Domain events and the transactional outbox (DESIGN.md §6).

An action calls `emit(...)` inside its transaction; the event becomes an outbox row that commits or
rolls back with the change. Receivers are registered per event type and run by the dispatcher.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from typing import Any, ClassVar

from django.db import transaction

from lavka.core.actor import Actor
from lavka.core.history import plain
from lavka.core.models import OutboxEvent

# Set after a commit that wrote events, so an in-process worker wakes up at once (it also polls).
nudge = threading.Event()

Receiver = Callable[[OutboxEvent], None]
_receivers: dict[str, dict[str, Receiver]] = defaultdict(dict)
# Receiver name → what tells, once per batch, which event types it has any work for right now.
_wanted: dict[str, Callable[[], Collection[str]]] = {}
# Receiver name → what tells from an event alone whether the receiver has anything to do with it.
_applies: dict[str, Callable[[OutboxEvent], bool]] = {}
ANY = "*"


@dataclasses.dataclass(frozen=True)
class DomainEvent:
    type: ClassVar[str] = ""


def emit(event: DomainEvent, *, actor: Actor, depth: int = 0) -> OutboxEvent:
    """Add the event to the outbox, in the action's transaction (inside `gathered()`: when it ends)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events are emitted inside the action's transaction")
    depth = max(depth, getattr(_chain, "depth", 0))
    row = OutboxEvent(
        type=event.type, payload=plain(dataclasses.asdict(event)), actor=plain(actor.as_dict()), depth=depth
    )
    pending = getattr(_gathering, "pending", None)
    if pending is not None:
        pending.append(row)
    else:
        row.save(force_insert=True)
    transaction.on_commit(nudge.set)
    from lavka.core import redisq  # workers on other machines hear of it through Redis, if it is set

    redisq.publish_on_commit(redisq.EVENTS, row)
    return row


_gathering = threading.local()
_chain = threading.local()


@contextlib.contextmanager
def caused_by(depth: int) -> Iterator[None]:
    """Events emitted inside the block carry at least this depth: what a rule does because of an
    event of depth d raises events of depth d + 1, so that chains of rules can be cut off."""
    previous = getattr(_chain, "depth", 0)
    _chain.depth = depth
    try:
        yield
    finally:
        _chain.depth = previous


@contextlib.contextmanager
def gathered() -> Iterator[None]:
    """Hold the events an action emits and insert them in one statement when the block ends (in
    emission order, so their ids keep it). The rows get their ids then."""
    if getattr(_gathering, "pending", None) is not None:
        yield
        return
    _gathering.pending = []
    try:
        yield
        rows = _gathering.pending
    finally:
        _gathering.pending = None
    if rows:
        OutboxEvent.objects.bulk_create(rows)


def receiver(
    *event_types: str,
    name: str | None = None,
    wanted: Callable[[], Collection[str]] | None = None,
    applies: Callable[[OutboxEvent], bool] | None = None,
) -> Callable[[Receiver], Receiver]:
    """Register a function as a receiver of these event types ("*" for all).

    `wanted`, when given, returns the event types the receiver has work for at the moment (webhooks:
    those some subscription asks for); the dispatcher skips it for the others. `applies`, when given,
    tells from the event alone (type and payload, so that a re-delivery is judged alike) whether the
    receiver has anything to do; the dispatcher neither runs nor records it for an event it declines.
    """

    def register(fn: Receiver) -> Receiver:
        receiver_name = name or f"{fn.__module__}.{fn.__qualname__}"
        for event_type in event_types:
            _receivers[event_type][receiver_name] = fn
        if wanted is not None:
            _wanted[receiver_name] = wanted
        if applies is not None:
            _applies[receiver_name] = applies
        return fn

    return register


def unregister(receiver_name: str) -> None:
    for by_name in _receivers.values():
        by_name.pop(receiver_name, None)
    _wanted.pop(receiver_name, None)
    _applies.pop(receiver_name, None)


def wanted_now() -> dict[str, Collection[str]]:
    """For each receiver registered with `wanted`: the event types it has work for now."""
    return {name: wanted() for name, wanted in _wanted.items()}


def applies_to(receiver_name: str, event: OutboxEvent) -> bool:
    """Whether the receiver has anything to do with the event (see `receiver(applies=…)`)."""
    check = _applies.get(receiver_name)
    return check is None or check(event)


def receivers_for(event_type: str) -> dict[str, Receiver]:
    found = dict(_receivers.get(ANY, {}))
    found.update(_receivers.get(event_type, {}))
    return found


def registered() -> dict[str, list[str]]:
    return {event_type: sorted(by_name) for event_type, by_name in _receivers.items() if by_name}


def payload_of(event: OutboxEvent) -> dict[str, Any]:
    return event.payload
