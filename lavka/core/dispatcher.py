"""Runs outbox events through their receivers: at least once per event, exactly once per receiver.

Claiming: a batch of pending rows whose lease is free gets this worker's name and a lease, in one
transaction (on PostgreSQL one UPDATE of the rows a SKIP LOCKED select picked; on SQLite the IMMEDIATE
transaction serialises claimers and the compare-and-set on the lease does the rest). A worker killed
mid-batch leaves rows whose lease expires, and another worker re-claims them. `claim` takes the oldest
pending rows (a worker polling the database); `claim_ids` takes the rows Redis named (lavka.core.redisq),
under the same lease rules.

Each event of a batch runs in its own transaction, and each receiver's run comes with the insert of its
unique ReceiverDelivery row, so a re-delivered event never runs a receiver twice. When a receiver fails,
the event runs again with each receiver in a savepoint, so that the failure undoes only its own work.
Receivers therefore only write to the database (and may run twice before one commit): what leaves the
machine (a webhook, a message) is a job they enqueue. A receiver registered with `wanted` is skipped,
without a ReceiverDelivery row, for events of types it has no work for at the moment.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from lavka.core.events import applies_to, receivers_for, wanted_now
from lavka.core.models import OutboxEvent, ReceiverDelivery

log = logging.getLogger(__name__)
_local = threading.local()


def new_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def current_worker() -> str:
    return getattr(_local, "worker", "")


def claim(worker: str, limit: int | None = None, lease_seconds: int | None = None) -> list[OutboxEvent]:
    """Lease the oldest pending events whose lease is free (the database polling path)."""
    limit = limit or settings.LAVKA_OUTBOX_BATCH
    lease = timedelta(seconds=lease_seconds or settings.LAVKA_OUTBOX_LEASE_SECONDS)
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _claim_postgresql(worker, limit, now, now + lease)
    free = Q(processed_at__isnull=True) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    with transaction.atomic():
        ids = list(OutboxEvent.objects.filter(free).order_by("id").values_list("id", flat=True)[:limit])
        if not ids:
            return []
        OutboxEvent.objects.filter(free, id__in=ids).update(claimed_by=worker, lease_until=now + lease)
    return list(OutboxEvent.objects.filter(id__in=ids, claimed_by=worker, lease_until=now + lease))


def claim_ids(worker: str, ids: Collection[int], lease_seconds: int | None = None) -> list[OutboxEvent]:
    """Lease those of `ids` that are pending and free, by the rules of `claim` (the Redis path: the
    stream says which events to work on, the lease decides who does). The others are done, leased by
    another worker, or backing off after a failure: nothing for this worker now."""
    ids = sorted({int(pk) for pk in ids})
    if not ids:
        return []
    lease = timedelta(seconds=lease_seconds or settings.LAVKA_OUTBOX_LEASE_SECONDS)
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _claim_postgresql(worker, len(ids), now, now + lease, ids)
    free = Q(processed_at__isnull=True) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    with transaction.atomic():
        OutboxEvent.objects.filter(free, id__in=ids).update(claimed_by=worker, lease_until=now + lease)
    return list(OutboxEvent.objects.filter(id__in=ids, claimed_by=worker, lease_until=now + lease))


def _claim_postgresql(
    worker: str, limit: int, now: Any, until: Any, ids: list[int] | None = None
) -> list[OutboxEvent]:
    """One statement: pick free rows (SKIP LOCKED), lease them and return them; the worker polls often."""
    table = OutboxEvent._meta.db_table
    only = " AND id = ANY(%s)" if ids is not None else ""
    claimed = OutboxEvent.objects.raw(
        f"UPDATE {table} SET claimed_by = %s, lease_until = %s WHERE id IN ("
        f"SELECT id FROM {table} WHERE processed_at IS NULL AND (lease_until IS NULL OR lease_until < %s)"
        f"{only} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING *",
        [worker, until, now, *([ids] if ids is not None else []), limit],
    )
    return sorted(claimed, key=lambda event: event.pk)


def process(event: OutboxEvent, worker: str) -> bool:
    """Run every receiver that has not yet handled `event`. True when all are done."""
    return process_batch([event], worker)[0]


def process_batch(batch: list[OutboxEvent], worker: str) -> list[bool]:
    """Run the receivers of each claimed event, one transaction per event; True for each event done.

    Events no receiver wants now are marked done together in one statement. Every other event commits
    on its own, so a receiver holding a lock that writers wait for (the history chain, a customer row)
    holds it for one event, not for the whole batch.
    """
    _local.worker = worker
    wanted = wanted_now()
    outcome = []
    idle = []
    for event in batch:
        due = _due(event, wanted)
        if due:
            outcome.append(_process_one(event, due, worker))
        else:
            idle.append(event.pk)
            outcome.append(True)
    _mark_done(idle)
    return outcome


def _process_one(event: OutboxEvent, due: list[tuple[str, Any]], worker: str) -> bool:
    """First without savepoints, which is what almost every event needs; if anything fails, that
    attempt is rolled back and the event runs again with each receiver in a savepoint, so the failure
    stays with its receiver and is recorded."""
    try:
        with transaction.atomic():
            for name, fn in due:
                ReceiverDelivery.objects.create(event=event, receiver=name, worker=worker)
                fn(event)
            _mark_done([event.pk])
        return True
    except Exception:
        log.debug("event %s failed as a whole; running it receiver by receiver", event.pk)
    with transaction.atomic():
        failed = _run_receivers(event, due, worker)
        if failed is None:
            _mark_done([event.pk])
            return True
        backoff = timedelta(seconds=min(3600, 2 ** min(event.attempts, 12)))
        OutboxEvent.objects.filter(pk=event.pk, claimed_by=worker).update(
            attempts=event.attempts + 1, last_error=failed[:2000], lease_until=timezone.now() + backoff
        )
    return False


def _due(event: OutboxEvent, wanted: dict[str, Collection[str]]) -> list[tuple[str, Any]]:
    """The receivers of `event`, less those that want nothing of its type now or decline it."""
    return [
        (name, fn)
        for name, fn in receivers_for(event.type).items()
        if (name not in wanted or event.type in wanted[name]) and applies_to(name, event)
    ]


def _mark_done(ids: list[int]) -> None:
    if ids:
        OutboxEvent.objects.filter(pk__in=ids).update(processed_at=timezone.now(), lease_until=None)


def _run_receivers(event: OutboxEvent, due: list[tuple[str, Any]], worker: str) -> str | None:
    """Run the event's receivers, each in a savepoint; the first failure's description, or None."""
    failed = None
    for name, fn in due:
        try:
            with transaction.atomic():
                ReceiverDelivery.objects.create(event=event, receiver=name, worker=worker)
                fn(event)
        except IntegrityError:
            # Another worker (or an earlier life of this one) already committed this receiver.
            if not ReceiverDelivery.objects.filter(event=event, receiver=name).exists():
                failed = failed or f"{name}: integrity error"
                log.exception("receiver %s failed on %s", name, event)
        except Exception as exc:  # a receiver's bug must not stop the others or the worker
            failed = failed or f"{name}: {exc!r}"
            log.exception("receiver %s failed on %s", name, event)
    return failed


def dispatch_once(worker: str, limit: int | None = None) -> int:
    """Claim and process one batch; return how many events were claimed."""
    batch = claim(worker, limit)
    if batch:
        process_batch(batch, worker)
    return len(batch)


def drain(worker: str | None = None, max_rounds: int = 1000) -> int:
    """Process everything pending now (tests and the CLI use it)."""
    worker = worker or new_worker_name()
    total = 0
    for _ in range(max_rounds):
        claimed = dispatch_once(worker)
        if not claimed:
            break
        total += claimed
    return total
