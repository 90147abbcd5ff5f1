"""Two real `lavka worker` processes sharing the load over the local Redis server (DESIGN.md §2.2, §7,
lavka.core.redisq): orders are created while one worker is killed with SIGKILL again and again and
restarted; afterwards every event is processed, every receiver ran exactly once, both workers did work
taken from Redis, and Redis holds nothing unacknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import redis

from lavka.core import events
from lavka.core.events import receivers_for
from lavka.core.receivers import TRACE
from lavka.core.tests.processes import Database, Lavka, scratch_database, wait_until

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("LAVKA_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
ORDERS = 500
KILLS = 6
UNPROCESSED = "SELECT count(*) FROM core_outboxevent WHERE processed_at IS NULL"
TAKES_REDIS = "takes its work from Redis"
# `processes.seed`, at the pace of a busy shop rather than flat out: the workers keep up, so that they
# work from Redis (a worker that finds a backlog in the database drains it first) while one is killed.
PACED_SEED = """
import os, sys, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
django.setup()
from lavka.core.tests import processes
from lavka.orders import actions
create_order = actions.create_order
def paced(*args, **kwargs):
    time.sleep(0.02)
    return create_order(*args, **kwargs)
actions.create_order = paced
processes.seed(int(sys.argv[1]))
"""


@pytest.fixture
def client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis server answers at {REDIS_URL} ({exc}); start the local one")
    return client


@pytest.fixture
def prefix(client: redis.Redis):
    prefix = f"lavka-e2e-{uuid.uuid4().hex[:12]}"
    yield prefix
    leftovers = client.keys(f"{prefix}:*")
    if leftovers:
        client.delete(*leftovers)


@pytest.fixture
def scratch(tmp_path: Path):
    with scratch_database(tmp_path) as database:
        yield database


@pytest.fixture
def lavka(scratch: Database, tmp_path: Path, prefix: str):
    # Small batches, a short lease and a quick sweep, so that kills land mid-batch and come back soon.
    processes = Lavka(
        scratch,
        tmp_path,
        LAVKA_EVENT_TRACE="1",
        LAVKA_OUTBOX_LEASE_SECONDS="3",
        # The periodic jobs (analytics refreshes) a victim may die holding come back soon too.
        LAVKA_JOB_LEASE_SECONDS="5",
        LAVKA_OUTBOX_BATCH="10",
        LAVKA_WORKER_POLL_SECONDS="0.2",
        LAVKA_REDIS_URL=REDIS_URL,
        LAVKA_REDIS_PREFIX=prefix,
        LAVKA_REDIS_SWEEP_SECONDS="1",
    )
    try:
        processes.migrate()
        yield processes
    finally:
        processes.kill_all()


def traced_by(scratch: Database, worker: str) -> int:
    return scratch.scalar(f"SELECT count(*) FROM core_eventtrace WHERE worker = '{worker}'")


def pending(client: redis.Redis, prefix: str) -> int:
    """Entries read by some worker and not acknowledged yet, over both streams."""
    total = 0
    for kind in ("events", "jobs"):
        for group in client.xinfo_groups(f"{prefix}:{kind}"):
            total += group["pending"]
    return total


def test_two_workers_over_redis_survive_kill_9_and_run_each_receiver_once(
    lavka: Lavka, scratch: Database, client: redis.Redis, prefix: str, tmp_path: Path
) -> None:
    steady = lavka.start("worker", "--name", "steady")
    victim = lavka.start("worker", "--name", "victim-0")
    for worker in (steady, victim):
        wait_until(
            lambda w=worker: TAKES_REDIS in lavka.log(w), timeout=30, what="the workers to take to Redis"
        )

    # The orders are created while the workers run: their events reach the workers through Redis.
    with (tmp_path / "seed.log").open("wb") as seed_log:
        seeder = subprocess.Popen(
            [sys.executable, "-c", PACED_SEED, str(ORDERS)],
            env=lavka.env(),
            cwd=tmp_path,
            stdout=seed_log,
            stderr=subprocess.STDOUT,
        )
    stranded = []  # per kill: rows the victim had claimed and not committed, and its unacknowledged entries
    for kill in range(KILLS):
        name = f"victim-{kill}"
        holding = f"{UNPROCESSED} AND claimed_by = '{name}'"

        def busy(name: str = name, holding: str = holding, log: Path = lavka.logs[victim]) -> bool:
            # Kill it while it holds claimed rows that it read from Redis.
            if seeder.poll() is not None:
                return True
            return TAKES_REDIS in log.read_text() and scratch.scalar(holding) > 0

        wait_until(busy, timeout=60, what=f"{name} to be at work", interval=0.005)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        unacknowledged = sum(
            consumer["pending"]
            for kind in ("events", "jobs")
            for consumer in client.xinfo_consumers(f"{prefix}:{kind}", "workers")
            if consumer["name"] == name
        )
        stranded.append((scratch.scalar(holding), unacknowledged, TAKES_REDIS in lavka.log(victim)))
        victim = lavka.start("worker", "--name", f"victim-{kill + 1}")
    assert seeder.wait(timeout=120) == 0, (tmp_path / "seed.log").read_text()
    print("kills: (rows held, entries unacknowledged, on Redis)", stranded)
    # Some kills landed in the middle of a batch read from Redis.
    assert any(claimed and unacknowledged for claimed, unacknowledged, _ in stranded), stranded

    wait_until(lambda: scratch.scalar(UNPROCESSED) == 0, timeout=90, what="every event to be processed")
    # The dead victims' entries are taken over after the lease, and acknowledged.
    wait_until(lambda: pending(client, prefix) == 0, timeout=30, what="Redis to hold nothing unacknowledged")
    for worker in (steady, victim):
        assert lavka.terminate(worker, timeout=10) == 0
    assert "Redis is unavailable" not in lavka.log(steady)

    found = dict(scratch.rows("SELECT id, type FROM core_outboxevent"))
    types = sorted(set(found.values()))
    assert types == ["customers.created", "orders.created"]
    assert len(found) == 2 * ORDERS
    # Receivers registered with `wanted` want nothing in a store without rules, programmes or webhooks.
    expected = {t: {TRACE, *receivers_for(t)} - set(events._wanted) for t in types}
    assert "customers.refresh_stats" in expected["orders.created"]
    delivered: dict[int, list[str]] = defaultdict(list)
    for event_id, receiver in scratch.rows("SELECT event_id, receiver FROM core_receiverdelivery"):
        delivered[event_id].append(receiver)
    assert {event_id: sorted(names) for event_id, names in delivered.items()} == {
        event_id: sorted(expected[event_type]) for event_id, event_type in found.items()
    }
    # EventTrace is not unique: a second run of a receiver would show as a second row.
    traces = dict(scratch.rows("SELECT event_id, count(*) FROM core_eventtrace GROUP BY event_id"))
    assert traces.keys() == found.keys()
    assert [event_id for event_id, calls in traces.items() if calls != 1] == []

    # Both did work, and it came through Redis: every id published was read from the stream.
    workers = dict(scratch.rows("SELECT worker, count(*) FROM core_eventtrace GROUP BY worker"))
    assert workers.get("steady", 0) > 0
    assert sum(calls for worker, calls in workers.items() if worker.startswith("victim-")) > 0
    [group] = client.xinfo_groups(f"{prefix}:events")
    assert group["entries-read"] >= 2 * ORDERS
    assert scratch.scalar("SELECT count(*) FROM customers_customer WHERE orders_count != 1") == 0
