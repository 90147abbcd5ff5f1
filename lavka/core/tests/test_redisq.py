"""Distributed workers over Redis (DESIGN.md §7, lavka.core.redisq), against the local Redis server: what a
committed transaction emits or enqueues reaches a worker through a stream; a lost message comes back by
the sweeper; two workers share the stream; a dead worker's entries are taken over; without Redis the
worker polls the database. Every test has its own stream prefix."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from django.db import transaction
from django.utils import timezone

from lavka.core import dispatcher, events, jobs, redisq
from lavka.core.actor import Actor
from lavka.core.models import Job, OutboxEvent, ReceiverDelivery
from lavka.core.worker import Worker

REDIS_URL = os.environ.get("LAVKA_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
SYSTEM = Actor.system("tests")


def _unreachable(url: str) -> str:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"no Redis server answers at {url} ({exc}); start the local one or set LAVKA_TEST_REDIS_URL"
    return ""


_why_not = _unreachable(REDIS_URL)
# The publisher acts when a transaction really commits.
commits = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class Ping(events.DomainEvent):
    type = "tests.redisq.ping"
    n: int


class Receivers:
    def __init__(self) -> None:
        self.calls: dict[int, list[str]] = defaultdict(list)  # event id → workers that ran the receiver
        self.fail = False

    def __call__(self, event: OutboxEvent) -> None:
        if self.fail:
            raise RuntimeError("provider down")
        self.calls[event.pk].append(dispatcher.current_worker())


@pytest.fixture
def receiver():
    registered = Receivers()
    events.receiver(Ping.type, name="tests.redisq")(registered)
    yield registered
    events.unregister("tests.redisq")


@pytest.fixture
def queue(settings):
    """Redis switched on, with streams of this test's own."""
    if _why_not:
        pytest.skip(_why_not)
    prefix = f"lavka-test-{uuid.uuid4().hex[:12]}"
    settings.REDIS_URL = REDIS_URL
    settings.LAVKA_REDIS_PREFIX = prefix
    settings.LAVKA_REDIS_SWEEP_SECONDS = 1.0
    client = redisq.client(REDIS_URL)
    yield SimpleNamespace(
        redis=client,
        prefix=prefix,
        events=f"{prefix}:events",
        jobs=f"{prefix}:jobs",
        lock=f"{prefix}:sweeper",
    )
    redisq.flush()
    leftovers = client.keys(f"{prefix}:*")
    if leftovers:
        client.delete(*leftovers)


CALLS: list[Any] = []


def record(*args: Any) -> None:
    CALLS.append(list(args))


@pytest.fixture(autouse=True)
def calls():
    CALLS.clear()
    yield CALLS
    CALLS.clear()


def pings(count: int) -> list[int]:
    """Emit and commit `count` events, and wait until the publisher has sent what it was given."""
    with transaction.atomic():
        rows = [events.emit(Ping(n), actor=SYSTEM) for n in range(count)]
    redisq.flush()
    return [row.pk for row in rows]


def enqueue(*args: Any, **options: Any) -> Job:
    job = jobs.enqueue(record, *args, **options)  # outside a transaction: committed at once
    redisq.flush()
    return job


def carried(client: redis.Redis, key: str) -> list[int]:
    """The ids a stream holds, in order."""
    return [int(fields["id"]) for _, fields in client.xrange(key)]


def group(client: redis.Redis, key: str) -> dict[str, Any]:
    [found] = [g for g in client.xinfo_groups(key) if g["name"] == redisq.GROUP]
    return found


def on_redis(name: str) -> Worker:
    """A worker that has drained the (empty) database and taken to Redis."""
    worker = Worker(name=name, redis_url=REDIS_URL)
    assert worker.tick() == 0
    assert worker.via_redis
    return worker


def age(seconds: float = 60) -> None:
    """What the clock does: the rows have been due for a while, and no lease holds them."""
    past = timezone.now() - timedelta(seconds=seconds)
    OutboxEvent.objects.update(created_at=past, lease_until=None)
    Job.objects.update(run_after=past, lease_until=None)


def unprocessed() -> int:
    return OutboxEvent.objects.filter(processed_at__isnull=True).count()


def no_polling(*_: object, **__: object) -> None:
    raise AssertionError("a worker on Redis polled the database")


@commits
def test_committed_events_reach_a_worker_through_redis(queue, receiver, monkeypatch) -> None:
    worker = on_redis("w1")
    monkeypatch.setattr(dispatcher, "claim", no_polling)
    monkeypatch.setattr(jobs, "run_due", no_polling)

    ids = pings(5)
    assert carried(queue.redis, queue.events) == ids

    assert worker.tick() == 5
    assert receiver.calls == {pk: ["w1"] for pk in ids}
    assert unprocessed() == 0
    assert set(ReceiverDelivery.objects.filter(receiver="tests.redisq").values_list("worker", flat=True)) == {
        "w1"
    }
    assert group(queue.redis, queue.events)["pending"] == 0  # acknowledged after the commit
    assert worker.tick() == 0


@commits
def test_a_rolled_back_transaction_announces_nothing_and_gathered_rows_their_ids(queue, receiver) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit(Ping(1), actor=SYSTEM)
        raise RuntimeError("the action fails")
    with transaction.atomic(), events.gathered():
        # The rows get their ids when the block ends, after the emit calls: the message must carry them.
        rows = [events.emit(Ping(n), actor=SYSTEM) for n in range(3)]
    redisq.flush()

    assert carried(queue.redis, queue.events) == [row.pk for row in rows]


@commits
def test_queued_jobs_go_through_redis_and_delayed_ones_wait_for_the_sweeper(queue, monkeypatch) -> None:
    worker = on_redis("w1")
    monkeypatch.setattr(jobs, "run_due", no_polling)
    now_job = enqueue(1)
    later = enqueue(2, delay=timedelta(minutes=5))
    assert carried(queue.redis, queue.jobs) == [now_job.pk]  # the delayed one is not due yet

    assert worker.tick() == 1
    assert CALLS == [[1]]
    assert group(queue.redis, queue.jobs)["pending"] == 0

    age()  # five minutes later
    queue.redis.delete(queue.lock)  # and the last sweep long past
    worker.upkeep()
    assert carried(queue.redis, queue.jobs) == [now_job.pk, later.pk]
    worker.tick()
    assert CALLS == [[1], [2]]
    assert Job.objects.filter(done_at__isnull=True).count() == 0


@commits
def test_a_lost_message_is_republished_by_the_sweeper(queue, receiver, monkeypatch) -> None:
    worker = on_redis("w1")
    ids = pings(3)
    queue.redis.delete(queue.events)  # Redis flushed (or restarted empty) before a worker read them
    with monkeypatch.context() as crash:
        crash.setattr(redisq, "publish_on_commit", lambda *args: None)  # died between commit and XADD
        job = enqueue(7)

    assert worker.tick() == 0  # finds the stream gone, makes it and its group again
    assert worker.via_redis
    queue.redis.delete(queue.lock)
    assert worker.upkeep() == 0  # nothing is overdue yet: the sweeper leaves fresh rows to the publishers
    assert carried(queue.redis, queue.events) == []

    age(seconds=2)
    queue.redis.delete(queue.lock)
    worker.upkeep()
    assert carried(queue.redis, queue.events) == ids
    assert carried(queue.redis, queue.jobs) == [job.pk]
    assert worker.tick() == 4
    assert receiver.calls == {pk: ["w1"] for pk in ids}
    assert CALLS == [[7]]

    # One worker of the fleet sweeps per interval; and what is done is never re-published.
    age(seconds=2)
    assert on_redis("w2").queue.sweep(1.0) == {}  # w1 swept a moment ago
    queue.redis.delete(queue.lock)
    assert worker.queue.sweep(1.0) == {redisq.EVENTS: 0, redisq.JOBS: 0}
    assert carried(queue.redis, queue.events) == ids


@commits
def test_the_sweeper_leaves_a_backlog_to_the_stream(queue, receiver) -> None:
    worker = on_redis("w1")
    ids = pings(3)
    age()
    queue.redis.delete(queue.lock)
    worker.queue.sweep(1.0)  # the three are still waiting in the stream: nothing to add
    assert carried(queue.redis, queue.events) == ids


@commits
def test_two_workers_share_the_stream_and_run_each_receiver_once(queue, receiver, settings) -> None:
    settings.LAVKA_OUTBOX_BATCH = 10
    first, second = on_redis("w1"), on_redis("w2")
    ids = pings(100)

    for _ in range(20):
        first.tick()
        second.tick()
    assert unprocessed() == 0
    assert sorted(receiver.calls) == ids
    assert all(len(workers) == 1 for workers in receiver.calls.values())
    by_worker = defaultdict(int)
    for workers in receiver.calls.values():
        by_worker[workers[0]] += 1
    assert by_worker == {"w1": 50, "w2": 50}
    assert ReceiverDelivery.objects.filter(receiver="tests.redisq").count() == 100


@commits
def test_a_dead_workers_entries_are_taken_over_after_the_lease(
    queue, receiver, settings, monkeypatch
) -> None:
    settings.LAVKA_OUTBOX_LEASE_SECONDS = 1
    dead = redisq.Consumer("dead", REDIS_URL)
    dead.ensure_groups()
    ids = pings(4)
    # It read the entries and claimed their rows, then was killed before it committed anything.
    assert [entry.pk for entry in dead.read({redisq.EVENTS: 10})[redisq.EVENTS]] == ids
    assert len(dispatcher.claim_ids("dead", ids)) == 4

    survivor = on_redis("w2")  # the rows are leased: the database has nothing for it
    assert survivor.tick() == 0
    assert receiver.calls == {}

    time.sleep(1.2)  # the lease and the entries' idle time pass
    queue.redis.delete(queue.lock)
    assert survivor.upkeep() == 4
    assert receiver.calls == {pk: ["w2"] for pk in ids}
    assert group(queue.redis, queue.events)["pending"] == 0
    assert unprocessed() == 0

    # A consumer with nothing pending that has not read for an hour is forgotten by the sweep.
    monkeypatch.setattr(redisq, "GONE_MS", -1)
    queue.redis.delete(queue.lock)
    survivor.queue.sweep(1.0)
    assert [c["name"] for c in queue.redis.xinfo_consumers(queue.events, redisq.GROUP)] == ["w2"]


@commits
def test_a_failed_event_backs_off_and_comes_back_by_the_sweeper(queue, receiver) -> None:
    worker = on_redis("w1")
    receiver.fail = True
    [pk] = pings(1)
    assert worker.tick() == 1
    event = OutboxEvent.objects.get(pk=pk)
    assert event.processed_at is None and event.attempts == 1
    assert group(queue.redis, queue.events)["pending"] == 0  # the row keeps the retry, not the message

    receiver.fail = False
    age()  # the back-off is over
    queue.redis.delete(queue.lock)
    worker.upkeep()
    worker.tick()
    assert receiver.calls == {pk: ["w1"]}
    assert unprocessed() == 0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@commits
def test_without_redis_the_worker_polls_the_database_and_warns_once(settings, receiver, caplog) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.LAVKA_REDIS_PREFIX = f"lavka-test-{uuid.uuid4().hex[:12]}"
    worker = Worker(name="w1")
    caplog.set_level(logging.INFO, logger="lavka.core")

    ids = pings(3)  # the commit succeeds though the publisher cannot reach Redis
    assert worker.tick() == 3
    for _ in range(3):
        assert worker.tick() == 0
    assert not worker.via_redis
    assert receiver.calls == {pk: ["w1"] for pk in ids}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([m for m in warnings if "Redis is unavailable" in m]) == 1
    assert len([m for m in warnings if "cannot publish" in m]) == 1


@commits
def test_a_worker_falls_back_to_the_database_when_redis_fails_and_comes_back(queue, receiver, caplog) -> None:
    worker = on_redis("w1")
    caplog.set_level(logging.INFO, logger="lavka.core.worker")
    # The worker loses its connection (the publisher, with its own, still reaches Redis).
    worker.queue.redis = redis.Redis.from_url(
        f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=1
    )
    first = pings(2)
    assert worker.tick() == 2  # from the database, in the same tick
    assert not worker.via_redis
    assert worker.tick() == 0  # and it waits before it tries Redis again
    assert receiver.calls == {pk: ["w1"] for pk in first}
    worker.queue.redis = queue.redis

    worker._retry_redis_at = 0  # the retry interval has passed
    assert worker.tick() == 0
    assert worker.via_redis
    second = pings(2)
    worker.tick()  # the stream also carries the first two, which are done: acknowledged, not run again
    assert receiver.calls == {pk: ["w1"] for pk in first + second}
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "Redis is unavailable" in m]) == 1
    assert len([m for m in messages if "takes its work from Redis" in m]) == 2


@commits
def test_without_a_redis_url_nothing_is_published(settings, receiver, monkeypatch) -> None:
    settings.REDIS_URL = ""
    published: list[Any] = []
    monkeypatch.setattr(redisq, "publisher", lambda: published.append("a publisher was asked for"))
    worker = Worker(name="w1")
    assert worker.queue is None
    ids = pings(2)
    enqueue(1)
    assert worker.tick() == 3
    assert receiver.calls == {pk: ["w1"] for pk in ids}
    assert published == []


def test_claim_ids_follows_the_lease_rules(db) -> None:
    ids = pings(5)
    assert [e.pk for e in dispatcher.claim("w1", limit=2)] == ids[:2]

    assert [e.pk for e in dispatcher.claim_ids("w2", [*ids, 10**9])] == ids[2:]
    assert dispatcher.claim_ids("w3", ids) == []  # all leased
    assert dispatcher.claim_ids("w3", []) == []
    dispatcher.process_batch(list(OutboxEvent.objects.filter(pk__in=ids[2:]).order_by("id")), "w2")

    OutboxEvent.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # w1 died
    assert [e.pk for e in dispatcher.claim_ids("w3", ids)] == ids[:2]  # the processed three are not
    assert set(OutboxEvent.objects.filter(pk__in=ids[:2]).values_list("claimed_by", flat=True)) == {"w3"}


def test_jobs_claim_ids_takes_only_due_free_jobs(db) -> None:
    due, later, done = (
        jobs.enqueue(record, 1),
        jobs.enqueue(record, 2, delay=timedelta(hours=1)),
        jobs.enqueue(record, 3),
    )
    Job.objects.filter(pk=done.pk).update(done_at=timezone.now())

    assert [job.pk for job in jobs.claim_ids("w1", [due.pk, later.pk, done.pk])] == [due.pk]
    assert jobs.claim_ids("w2", [due.pk]) == []  # leased by w1
    assert jobs.run_claimed(jobs.claim_ids("w2", [])) == 0
