"""Distributed workers over Redis (DESIGN.md §7): with LAVKA_REDIS_URL set, Redis tells the workers of
every machine which outbox events and jobs to work on *now*; the database stays the queue and the record.

An event exists because its outbox row committed; a receiver runs once because of its unique
ReceiverDelivery row; a job is due because of its Job row. Redis carries only ids, so a duplicate
message costs one claim that finds nothing, and a lost one (a crash between the commit and the send, a
flushed or restarted Redis, a trimmed stream, Redis away for a while) delays work, never loses or doubles
it. Without LAVKA_REDIS_URL nothing here runs and the workers poll the database as before.

Two Redis streams, `<prefix>:events` and `<prefix>:jobs` (LAVKA_REDIS_PREFIX), one entry per id, read
through one consumer group ("workers") in which each worker process is a consumer:

- Publish. When a transaction that emitted events (events.emit) or enqueued a job due now (jobs.enqueue)
  commits, the ids go to this process's publisher thread, which XADDs them in pipelines. A thread, so
  that a web request never waits for Redis nor fails because of it; what it still holds when the process
  is killed is found by the sweeper. The streams are capped (about MAXLEN entries) for the same reason.
- Consume (lavka.core.worker). A worker reads new entries with XREADGROUP (blocking up to a poll
  interval when there is nothing), claims exactly those ids in the database (dispatcher.claim_ids,
  jobs.claim_ids: the lease rules of polling), processes them and XACKs after the commit. An id it cannot
  claim (done, leased by another worker, backing off after a failure) is acknowledged at once: the row,
  not the message, says what happens to it next.
- Reclaim. An entry read by a worker that died stays pending in the group; once it has been idle for the
  lease time (LAVKA_OUTBOX_LEASE_SECONDS, or the job lease), any worker takes it with XAUTOCLAIM and
  claims its id as usual. The row's own lease expired at the same time, so the two agree.
- Sweep. Every LAVKA_REDIS_SWEEP_SECONDS one worker of the fleet (a SET NX lock) re-publishes rows that
  have been due for longer than that and are not leased: events not processed, jobs not done (a delayed
  job or a failed one's retry is published this way when its time comes, so it starts up to two sweep
  intervals late). It skips a stream whose group still has undelivered entries (its lag): then the
  stream already carries the backlog. It also forgets consumers that have been gone for an hour.

A Redis streams consumer group rather than a list (BRPOP) or pub/sub: entries are delivered once among
the consumers, stay pending until acknowledged and can be taken over from a dead consumer, and a
consumer that connects later still sees what was added before.

Redis down: the publisher logs a warning and drops what it holds; the workers log a warning, poll the
database until Redis answers again, and after that drain the database before they go back to Redis.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from lavka.core.models import Job, OutboxEvent

log = logging.getLogger(__name__)

EVENTS = "events"
JOBS = "jobs"
GROUP = "workers"
# Streams are trimmed to about this many entries; a backlog longer than that comes back by the sweep.
MAXLEN = 100_000
# At most this many ids re-published per stream and sweep.
SWEEP_LIMIT = 1000
# A consumer with nothing pending and no read for this long belongs to a worker that has gone.
GONE_MS = 3_600_000
# After a failed send, what the publisher is given for this long is dropped (the sweeper has it).
PUBLISH_RETRY_SECONDS = 1.0
# Longer than any blocking read (a poll interval), so that a dead connection is noticed.
SOCKET_TIMEOUT = 30.0


def stream(kind: str, prefix: str | None = None) -> str:
    return f"{prefix or settings.LAVKA_REDIS_PREFIX}:{kind}"


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def client(url: str) -> redis.Redis:
    """One client (and connection pool, which is thread- and fork-safe) per URL and process."""
    with _clients_lock:
        found = _clients.get(url)
        if found is None:
            found = _clients[url] = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=2,
                socket_timeout=SOCKET_TIMEOUT,
                health_check_interval=30,
            )
        return found


def publish(url: str, key: str, ids: Iterable[int]) -> int:
    """XADD one entry per id to the stream `key`, in one round trip; how many were sent."""
    pipe = client(url).pipeline(transaction=False)
    sent = 0
    for pk in ids:
        pipe.xadd(key, {"id": pk}, maxlen=MAXLEN, approximate=True)
        sent += 1
    if sent:
        pipe.execute()
    return sent


def publish_on_commit(kind: str, row: models.Model) -> None:
    """Announce `row` (an OutboxEvent or a Job) on Redis once the current transaction commits; nothing
    without LAVKA_REDIS_URL. Called by events.emit and jobs.enqueue."""
    url = settings.REDIS_URL
    if not url:
        return
    key = stream(kind)
    # The id is read at the commit: rows held by events.gathered() are inserted at the end of its block.
    transaction.on_commit(lambda: publisher().add(url, key, row.pk), robust=True)


class Publisher:
    """A daemon thread that sends the ids committed transactions announce, batched per round trip."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._queue: list[tuple[str, str, int]] = []
        self._sending = False
        self._down_until: dict[str, float] = {}  # Redis URL → when to try it again after a failure
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="lavka-redis-publisher", daemon=True)
        self._thread.start()

    def add(self, url: str, key: str, pk: int | None) -> None:
        if pk is None:  # a row that was never inserted
            return
        with self._cond:
            self._queue.append((url, key, pk))
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until everything added so far has been sent (or dropped, Redis being down)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._sending, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue)
                batch, self._queue = self._queue, []
                self._sending = True
            try:
                self._send(batch)
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _send(self, batch: list[tuple[str, str, int]]) -> None:
        by_stream: dict[tuple[str, str], list[int]] = defaultdict(list)
        for url, key, pk in batch:
            by_stream[url, key].append(pk)
        for (url, key), ids in by_stream.items():
            if time.monotonic() < self._down_until.get(url, 0):
                continue  # Redis failed a moment ago: drop without waiting for a connect timeout each time
            try:
                publish(url, key, ids)
            except Exception as exc:  # never let the thread die; the sweeper re-publishes these rows
                if url not in self._down_until:
                    log.warning(
                        "cannot publish %d ids to Redis %s (%r); the sweeper will", len(ids), key, exc
                    )
                self._down_until[url] = time.monotonic() + PUBLISH_RETRY_SECONDS
            else:
                if self._down_until.pop(url, None) is not None:
                    log.info("publishing to Redis again")


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


def publisher() -> Publisher:
    global _publisher
    current = _publisher
    if current is not None and current.pid == os.getpid():
        return current
    with _publisher_lock:
        if _publisher is None or _publisher.pid != os.getpid():  # none yet, or inherited through a fork
            _publisher = Publisher()
        return _publisher


def flush(timeout: float = 5.0) -> bool:
    """Wait until what this process announced has reached Redis (tests; and at exit, briefly)."""
    current = _publisher
    return current is None or current.pid != os.getpid() or current.flush(timeout)


def _after_fork() -> None:
    # The child has none of the parent's threads; a lock one of them held would never be released.
    global _publisher, _publisher_lock, _clients_lock
    _publisher, _publisher_lock, _clients_lock = None, threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_after_fork)
# A command that emits events and exits (an import, `lavka rules import`) sends them before it goes.
atexit.register(flush, 2.0)


@dataclasses.dataclass(frozen=True)
class Entry:
    """A stream entry: its id in the stream and the row id it carries (None if it carries none)."""

    entry_id: str
    pk: int | None


def _entries(raw: Iterable[Any]) -> list[Entry]:
    found = []
    for entry_id, fields in raw:
        try:
            pk = int((fields or {})["id"])
        except (KeyError, TypeError, ValueError):
            pk = None  # not ours or trimmed away: acknowledged and dropped
        found.append(Entry(entry_id, pk))
    return found


class Consumer:
    """One worker's side of the streams: read, acknowledge, take over a dead worker's entries, sweep."""

    def __init__(self, name: str, url: str, prefix: str | None = None) -> None:
        self.name = name
        self.url = url
        self.prefix = prefix or settings.LAVKA_REDIS_PREFIX
        self.redis = client(url)
        self.keys = {kind: stream(kind, self.prefix) for kind in (EVENTS, JOBS)}
        self._kinds = {key: kind for kind, key in self.keys.items()}
        self._reclaim_from = {kind: "0-0" for kind in self.keys}

    def ensure_groups(self) -> None:
        """Create the streams' group (from the first entry: what publishers sent before any worker ran
        is delivered too); also what tells whether Redis answers."""
        for key in self.keys.values():
            try:
                self.redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def read(self, counts: dict[str, int], block: float = 0) -> dict[str, list[Entry]]:
        """New entries for this consumer, at most `counts[kind]` of each kind; when there are none, wait
        up to `block` seconds for the first to arrive."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            for kind, count in counts.items():
                pipe.xreadgroup(GROUP, self.name, {self.keys[kind]: ">"}, count=count)
            replies = [stream for reply in pipe.execute() for stream in reply or []]
            if not replies and block > 0:
                streams = {self.keys[kind]: ">" for kind in counts}
                wait_ms = max(1, int(min(block, SOCKET_TIMEOUT / 2) * 1000))
                replies = (
                    self.redis.xreadgroup(
                        GROUP, self.name, streams, count=min(counts.values()), block=wait_ms
                    )
                    or []
                )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or its group is gone (a flush, a new Redis): make them again. What was in them
            # comes back by the sweep.
            log.warning("Redis streams %s were gone; created them again", self.prefix)
            self.ensure_groups()
            return {}
        found: dict[str, list[Entry]] = {}
        for key, raw in replies:
            found.setdefault(self._kinds[key], []).extend(_entries(raw))
        return found

    def ack(self, kind: str, entry_ids: list[str]) -> None:
        if entry_ids:
            self.redis.xack(self.keys[kind], GROUP, *entry_ids)

    def reclaim(self, kind: str, idle_seconds: float, count: int) -> list[Entry]:
        """Take over up to `count` entries that other consumers read and left unacknowledged for
        `idle_seconds` (workers that died); each call goes on where the last one stopped."""
        try:
            cursor, raw, *_ = self.redis.xautoclaim(
                self.keys[kind],
                GROUP,
                self.name,
                min_idle_time=int(idle_seconds * 1000),
                start_id=self._reclaim_from[kind],
                count=count,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return []
        self._reclaim_from[kind] = cursor
        return [entry for entry in _entries(raw) if entry.pk is not None]

    def sweep(self, grace: float, limit: int = SWEEP_LIMIT) -> dict[str, int]:
        """Re-publish what has been due for over `grace` seconds and is not leased, unless another
        worker swept within the last `grace` seconds; how many ids of each kind were published."""
        if not self.redis.set(f"{self.prefix}:sweeper", self.name, nx=True, px=max(1, int(grace * 900))):
            return {}
        now = timezone.now()
        cutoff = now - timedelta(seconds=grace)
        published = {}
        for kind, overdue in ((EVENTS, _overdue_events), (JOBS, _overdue_jobs)):
            if self._lag(kind):
                continue  # undelivered entries: the stream carries the backlog already
            published[kind] = publish(self.url, self.keys[kind], overdue(now, cutoff, limit))
            if published[kind]:
                log.info("re-published %d %s that Redis did not carry", published[kind], kind)
        self._forget_gone()
        return published

    def _lag(self, kind: str) -> int | None:
        """Entries of the stream not yet delivered to any consumer (None: unknown, or no group)."""
        try:
            groups = self.redis.xinfo_groups(self.keys[kind])
        except redis.ResponseError:  # no stream
            return None
        return next((group.get("lag") for group in groups if group["name"] == GROUP), None)

    def _forget_gone(self) -> None:
        for key in self.keys.values():
            try:
                consumers = self.redis.xinfo_consumers(key, GROUP)
            except redis.ResponseError:
                continue
            for consumer in consumers:
                if consumer["name"] != self.name and not consumer["pending"] and consumer["idle"] > GONE_MS:
                    self.redis.xgroup_delconsumer(key, GROUP, consumer["name"])


def _free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def _overdue_events(now: datetime, cutoff: datetime, limit: int) -> list[int]:
    pending = OutboxEvent.objects.filter(_free(now), processed_at__isnull=True, created_at__lt=cutoff)
    return list(pending.order_by("id").values_list("id", flat=True)[:limit])


def _overdue_jobs(now: datetime, cutoff: datetime, limit: int) -> list[int]:
    pending = Job.objects.filter(_free(now), done_at__isnull=True, run_after__lt=cutoff)
    return list(pending.order_by("run_after", "id").values_list("id", flat=True)[:limit])
