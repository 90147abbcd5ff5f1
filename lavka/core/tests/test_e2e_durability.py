"""Real `lavka` processes on a database they share with the test (DESIGN.md §2.2, §7): after `kill -9` of
a worker nothing is lost and no receiver runs twice; SIGTERM stops a worker cleanly; `lavka serve`
answers and runs its own worker."""

from __future__ import annotations

import os
import signal
import sys
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from lavka.core.events import receivers_for
from lavka.core.receivers import TRACE
from lavka.core.tests.processes import Database, Lavka, free_port, scratch_database, wait_until

pytestmark = pytest.mark.slow

ORDERS = 500
# Small batches and a short lease, so that a kill lands mid-batch and its claims come back quickly.
SETTINGS = {"LAVKA_EVENT_TRACE": "1", "LAVKA_OUTBOX_LEASE_SECONDS": "3", "LAVKA_OUTBOX_BATCH": "10",
            "LAVKA_WORKER_POLL_SECONDS": "0.2"}
UNPROCESSED = "SELECT count(*) FROM core_outboxevent WHERE processed_at IS NULL"


@pytest.fixture
def scratch(tmp_path: Path):
    with scratch_database(tmp_path) as database:
        yield database


@pytest.fixture
def lavka(scratch: Database, tmp_path: Path):
    processes = Lavka(scratch, tmp_path, **SETTINGS)
    try:
        processes.migrate()
        yield processes
    finally:
        processes.kill_all()


def deliveries(scratch: Database) -> int:
    return scratch.scalar("SELECT count(*) FROM core_receiverdelivery")


def test_kill_9_mid_batch_loses_nothing_and_runs_no_receiver_twice(lavka: Lavka, scratch: Database) -> None:
    lavka.seed(ORDERS)
    # Fresh customer metrics: otherwise the first worker to start queues the day's full analytics
    # refresh, and a survivor busy with it would leave the events to the other one.
    lavka.run([sys.executable, "-m", "lavka.cli", "analytics", "refresh"])
    events = dict(scratch.rows("SELECT id, type FROM core_outboxevent"))
    types = sorted(set(events.values()))
    assert types == ["customers.created", "orders.created"]
    assert len(events) == 2 * ORDERS
    # The store has no webhook subscriptions, rules or loyalty programme: the dispatcher skips the
    # receivers that would find nothing to do.
    idle = {"webhooks.fanout", "automation.engine", "loyalty.accrue"}
    expected = {t: {TRACE, *receivers_for(t)} - idle for t in types}
    assert "customers.refresh_stats" in expected["orders.created"]
    total_deliveries = sum(len(expected[t]) for t in events.values())

    # Kill workers until one dies holding claimed events it has not committed: half a batch of
    # deliveries in (a batch's last delivery is followed by the next claim only after the periodic jobs).
    # None of an uncommitted event's receivers' work (their ReceiverDelivery rows, the trace) may be left.
    for attempt in range(20):
        name = f"doomed-{attempt}"
        doomed = lavka.start("worker", "--name", name)
        start = deliveries(scratch)
        wait_until(lambda start=start: deliveries(scratch) >= start + 15, timeout=30,
                   what="the worker's progress", interval=0.01)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        stranded = f"SELECT id FROM core_outboxevent WHERE processed_at IS NULL AND claimed_by = '{name}'"
        stranded_ids = [row[0] for row in scratch.rows(stranded)]
        if stranded_ids:
            break
    assert stranded_ids, "no kill landed in the middle of a batch"
    assert scratch.rows(f"{stranded} AND id IN (SELECT event_id FROM core_receiverdelivery)") == []
    assert scratch.rows(f"{stranded} AND id IN (SELECT event_id FROM core_eventtrace)") == []
    processed = 2 * ORDERS - scratch.scalar(UNPROCESSED)
    assert 0 < processed < 2 * ORDERS
    assert 0 < deliveries(scratch) < total_deliveries

    # Two workers at once take over; the stranded batch comes back when its lease expires.
    survivors = [lavka.start("worker", "--name", f"survivor-{n}") for n in (1, 2)]
    wait_until(lambda: scratch.scalar(UNPROCESSED) == 0, timeout=60, what="every event to be processed")
    for survivor in survivors:
        assert lavka.terminate(survivor, timeout=10) == 0

    delivered: dict[int, list[str]] = defaultdict(list)
    for event_id, receiver in scratch.rows("SELECT event_id, receiver FROM core_receiverdelivery"):
        delivered[event_id].append(receiver)
    assert {event_id: sorted(names) for event_id, names in delivered.items()} == {
        event_id: sorted(expected[event_type]) for event_id, event_type in events.items()
    }
    # EventTrace is not unique: a second run of a receiver would show as a second row.
    traces = dict(scratch.rows("SELECT event_id, count(*) FROM core_eventtrace GROUP BY event_id"))
    assert traces.keys() == events.keys()
    assert [event_id for event_id, calls in traces.items() if calls != 1] == []
    # The stranded claims were re-claimed after their lease, and both survivors did share the work.
    reclaimed = {row[0] for row in scratch.rows(
        f"SELECT DISTINCT claimed_by FROM core_outboxevent WHERE id IN ({','.join(map(str, stranded_ids))})"
    )}
    assert reclaimed <= {"survivor-1", "survivor-2"}
    workers = {row[0] for row in scratch.rows("SELECT DISTINCT worker FROM core_eventtrace")}
    assert {"survivor-1", "survivor-2"} <= workers

    assert scratch.scalar("SELECT count(*) FROM customers_customer") == ORDERS
    wrong_figures = scratch.scalar(
        "SELECT count(*) FROM customers_customer c WHERE c.orders_count != "
        "(SELECT count(*) FROM orders_order o WHERE o.customer_id = c.id) OR c.total_summ != "
        "(SELECT sum(o.total_summ) FROM orders_order o WHERE o.customer_id = c.id)"
    )
    assert wrong_figures == 0
    assert scratch.scalar("SELECT min(orders_count) FROM customers_customer") == 1


def test_sigterm_stops_a_busy_worker_after_its_batch(lavka: Lavka, scratch: Database) -> None:
    lavka.seed(50)
    worker = lavka.start("worker", "--name", "busy")
    wait_until(lambda: deliveries(scratch) > 0, timeout=30, what="the worker to start", interval=0.01)

    assert lavka.terminate(worker, timeout=5) == 0
    assert "worker busy stopped" in lavka.log(worker)
    # A graceful stop finishes the batch: it leaves no claim for a lease to time out.
    assert scratch.scalar(f"{UNPROCESSED} AND claimed_by = 'busy'") == 0


SIGTERM_INSIDE_THE_IDLE_WAIT = """
import os, signal, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
django.setup()
from lavka.core.events import nudge
from lavka.core.worker import Worker
worker = Worker()
signal.signal(signal.SIGTERM, worker.stop)
with nudge._cond:  # where an idle worker's main thread waits: inside nudge's lock, between bytecodes
    os.kill(os.getpid(), signal.SIGTERM)  # runs the handler before it returns
assert worker.stopping.is_set() and nudge.wait(10)
"""


def test_sigterm_that_interrupts_the_idle_wait_does_not_deadlock(lavka: Lavka) -> None:
    lavka.run([sys.executable, "-c", SIGTERM_INSIDE_THE_IDLE_WAIT], timeout=30)


def test_serve_answers_and_processes_events_from_other_processes(lavka: Lavka, scratch: Database) -> None:
    port = free_port()
    server = lavka.start("serve", "--port", str(port))

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return response.status == 200 and response.read() == b"ok"
        except OSError:
            return server.poll() is not None  # a dead server stops the wait; the assert below explains

    wait_until(healthy, timeout=30, what="lavka serve to answer /healthz", interval=0.1)
    assert server.poll() is None, lavka.log(server)

    lavka.seed(5)
    wait_until(lambda: scratch.scalar(UNPROCESSED) == 0, timeout=30, what="the in-process worker")
    assert scratch.scalar("SELECT count(*) FROM core_outboxevent") == 10
    assert scratch.scalar("SELECT count(*) FROM core_eventtrace") == 10
    assert scratch.scalar("SELECT sum(orders_count) FROM customers_customer") == 5

    assert lavka.terminate(server, timeout=10) == 0
