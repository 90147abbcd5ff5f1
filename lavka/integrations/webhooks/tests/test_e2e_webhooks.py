"""Real `lavka worker` processes deliver webhooks to a real receiver on loopback (DESIGN.md §7, §9): the
receiver is down, then answers 500 for a while, a worker is killed with SIGKILL in the middle of a request,
and still every event arrives, signed, with duplicates only as the same delivery id."""

from __future__ import annotations

import os
import signal
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from lavka.core.tests.processes import Database, Lavka, free_port, scratch_database, wait_until
from lavka.integrations.webhooks.tests.receiver import Receiver

pytestmark = pytest.mark.slow

EVENTS = 30  # customer events, plus as many order events
SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "lavka.integrations.webhooks.tests.e2e_settings",
    "LAVKA_OUTBOX_LEASE_SECONDS": "3",
    "LAVKA_WORKER_POLL_SECONDS": "0.1",
    "LAVKA_WEBHOOK_POLL_SECONDS": "0.1",
    "LAVKA_WEBHOOK_BACKOFF_BASE_SECONDS": "0.05",
    "LAVKA_WEBHOOK_BACKOFF_CAP_SECONDS": "0.4",
    "LAVKA_WEBHOOK_TIMEOUT_SECONDS": "2",
    "LAVKA_WEBHOOK_LEASE_SECONDS": "3",
}
SETUP = """
import os, sys, django
django.setup()
from django.db import transaction
from lavka.core import events
from lavka.core.actor import Actor
from lavka.customers.events import CustomerCreated
from lavka.integrations.webhooks.actions import create_subscription
from lavka.orders.events import OrderCreated, OrderStatusChanged

actor = Actor.system("e2e")
values = {"name": "e2e", "url": sys.argv[1], "all_events": True, "max_consecutive_failures": 100000}
print(create_subscription(values, actor=actor).secret)
values = {"name": "statuses", "url": sys.argv[1] + "?only=statuses", "event_types": ["orders.status_changed"]}
create_subscription(values, actor=actor)
for n in range(int(sys.argv[2])):
    with transaction.atomic():  # one transaction per change, as actions do
        events.emit(CustomerCreated(customer_id=n, site="shop"), actor=actor)
        events.emit(OrderCreated(order_id=n, site="shop", customer_id=n, status="new", manager_id=None),
                    actor=actor)
"""


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


def test_kill_9_mid_request_and_a_receiver_down_lose_no_event(lavka: Lavka, scratch: Database) -> None:
    port = free_port()  # the receiver is down: nothing listens on it yet
    url = f"http://127.0.0.1:{port}/hook"
    secret = lavka.run([sys.executable, "-c", SETUP, url, str(EVENTS)]).strip()
    attempts = lambda: scratch.scalar("SELECT count(*) FROM webhooks_webhookattempt")  # noqa: E731

    doomed = lavka.start("worker", "--name", "doomed")
    wait_until(lambda: attempts() >= EVENTS, timeout=60, what="refused attempts")
    assert scratch.scalar("SELECT count(*) FROM webhooks_webhookattempt WHERE response_code IS NOT NULL") == 0

    # Up: the first request hangs until the worker sending it is killed; the next 10 get a 500.
    receiver = Receiver(port, answer=lambda request, n: 500 if 1 <= n <= 10 else 200)
    receiver.hold_next = True
    receiver.start()
    try:
        assert receiver.holding.wait(30), "the worker never reached the receiver"
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        held = receiver.requests[0].delivery_id
        # SQLite keeps a UUID as 32 hex digits, PostgreSQL as a uuid: this matches either.
        is_held = f"(d.delivery_id = '{held.replace('-', '')}' OR d.delivery_id = '{held}')"
        claimed_by, status = scratch.rows(
            f"SELECT claimed_by, status FROM webhooks_webhookdelivery d WHERE {is_held}"
        )[0]
        assert f":{doomed.pid}:" in claimed_by and status != "succeeded"  # stranded mid-request
        receiver.release()  # its answer goes to a dead socket: Lavka never learns it was delivered

        survivors = [lavka.start("worker", "--name", f"survivor-{n}") for n in (1, 2)]
        pending = "SELECT count(*) FROM webhooks_webhookdelivery WHERE status != 'succeeded'"
        wait_until(
            lambda: (
                scratch.scalar("SELECT count(*) FROM core_outboxevent WHERE processed_at IS NULL") == 0
                and scratch.scalar(pending) == 0
            ),
            timeout=90,
            what="every delivery to succeed",
        )
        for survivor in survivors:
            assert lavka.terminate(survivor, timeout=15) == 0
    finally:
        receiver.stop()

    rows = scratch.rows(
        "SELECT d.delivery_id, d.event_id, d.event_type, s.name FROM webhooks_webhookdelivery d "
        "JOIN webhooks_webhooksubscription s ON s.id = d.subscription_id"
    )
    deliveries = {
        str(delivery_id).replace("-", ""): (event_id, name) for delivery_id, event_id, _, name in rows
    }
    events = dict(scratch.rows("SELECT id, type FROM core_outboxevent"))
    assert len(events) == 2 * EVENTS
    # One delivery per event for the all-events subscription; none for the one that wants only statuses.
    assert sorted(event_id for event_id, name in deliveries.values() if name == "e2e") == sorted(events)
    assert [name for _event, name in deliveries.values() if name != "e2e"] == []

    seen: dict[str, list[int]] = defaultdict(list)
    for request in receiver.requests:
        key = request.delivery_id.replace("-", "")
        event_id, _name = deliveries[key]
        assert request.signed_with(secret), request.headers
        assert request.document["id"] == request.delivery_id
        assert request.document["event"] == events[event_id]
        seen[key].append(request.status)
    # Every delivery reached the receiver with a 200; only retries of the same id came twice.
    assert set(deliveries) == {key for key, statuses in seen.items() if 200 in statuses}
    assert seen[held.replace("-", "")][:1] == [200] and seen[held.replace("-", "")].count(200) >= 2
    # The killed worker's request left no attempt row (only its refused ones did); a survivor re-sent it
    # once the lease had expired and recorded the 200.
    logged = scratch.rows(
        "SELECT a.worker, a.response_code FROM webhooks_webhookattempt a "
        f"JOIN webhooks_webhookdelivery d ON d.id = a.delivery_id WHERE {is_held} ORDER BY a.id"
    )
    assert all(code is None for worker, code in logged if f":{doomed.pid}:" in worker)
    assert [code for worker, code in logged if f":{doomed.pid}:" not in worker][-1:] == [200]
