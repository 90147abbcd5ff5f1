"""The outbox and its dispatcher in one process (DESIGN.md §6): an event commits or rolls back with its
action, claims are exclusive and leased, and every receiver handles every event once."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from lavka.core import dispatcher, events
from lavka.core.actor import Actor
from lavka.core.models import EventTrace, OutboxEvent, ReceiverDelivery
from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Customer
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.orders.models import Order

SYSTEM = Actor.system("tests")


@dataclass(frozen=True)
class Ping(events.DomainEvent):
    type = "tests.ping"
    n: int


class Receivers:
    """Two receivers of Ping. `tests.flaky` writes a row and then raises `error`, if one is set."""

    names = ("tests.ok", "tests.flaky")

    def __init__(self) -> None:
        self.calls: dict[str, list[int]] = defaultdict(list)
        self.error: Exception | None = None

    def ok(self, event: OutboxEvent) -> None:
        self.calls["tests.ok"].append(event.pk)

    def flaky(self, event: OutboxEvent) -> None:
        self.calls["tests.flaky"].append(event.pk)
        EventTrace.objects.create(event_id=event.pk, type=event.type, worker=dispatcher.current_worker())
        if self.error:
            raise self.error


@pytest.fixture
def receivers():
    registered = Receivers()
    events.receiver(Ping.type, name="tests.ok")(registered.ok)
    events.receiver(Ping.type, name="tests.flaky")(registered.flaky)
    yield registered
    for name in Receivers.names:
        events.unregister(name)


def ping(count: int) -> list[int]:
    with transaction.atomic():
        return [events.emit(Ping(n), actor=SYSTEM).pk for n in range(count)]


def delivered(event_id: int) -> dict[str, str]:
    """receiver → the worker that handled it"""
    return dict(ReceiverDelivery.objects.filter(event_id=event_id).values_list("receiver", "worker"))


def expire_leases() -> None:
    """What the clock does to a dead worker's lease, or to a failed event's back-off."""
    OutboxEvent.objects.update(lease_until=timezone.now() - timedelta(seconds=1))


def new_order(shop, **fields) -> Order:
    data = OrderData(new_customer=CustomerData(first_name="Ivan"), items=[ItemData(offer_id=shop.tea.pk)],
                     **fields)
    return create_order(shop.site, data, actor=shop.actor(shop.alice))


def test_an_action_writes_its_event_with_the_change(shop) -> None:
    customer = create_customer(shop.site, CustomerData(first_name="Ivan"), actor=shop.actor(shop.alice))

    event = OutboxEvent.objects.get()
    assert event.type == "customers.created"
    assert event.payload == {"customer_id": customer.pk, "site": "shop"}
    assert event.actor["name"] == "alice"
    assert event.processed_at is None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_action_leaves_no_outbox_row(shop) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        create_customer(shop.site, CustomerData(first_name="Ivan"), actor=shop.actor(shop.alice))
        assert OutboxEvent.objects.count() == 1
        raise RuntimeError("the caller fails after the action")
    assert not OutboxEvent.objects.exists()
    assert not Customer.objects.exists()

    # An action that fails late: the new customer and its event were written before the order number clashed.
    first = new_order(shop)
    before = set(OutboxEvent.objects.values_list("id", flat=True))
    with pytest.raises(ValidationError) as refused:
        new_order(shop, number=first.number)
    assert "number" in refused.value.message_dict
    assert set(OutboxEvent.objects.values_list("id", flat=True)) == before
    assert Customer.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_emit_outside_a_transaction_raises() -> None:
    with pytest.raises(RuntimeError, match="inside the action's transaction"):
        events.emit(Ping(1), actor=SYSTEM)
    assert not OutboxEvent.objects.exists()


def test_a_commit_nudges_the_worker(db, django_capture_on_commit_callbacks) -> None:
    events.nudge.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ping(1)
        assert not events.nudge.is_set()
    assert events.nudge.is_set()
    events.nudge.clear()


def test_claims_are_exclusive(db) -> None:
    ids = ping(10)

    first = dispatcher.claim("w1", limit=4)
    second = dispatcher.claim("w2", limit=4)
    third = dispatcher.claim("w3", limit=4)

    assert [len(first), len(second), len(third)] == [4, 4, 2]
    batches = [{e.pk for e in batch} for batch in (first, second, third)]
    assert set.union(*batches) == set(ids)
    assert sum(map(len, batches)) == len(ids)
    assert dispatcher.claim("w4") == []
    for worker, batch in zip(("w1", "w2", "w3"), batches, strict=True):
        assert set(OutboxEvent.objects.filter(claimed_by=worker).values_list("id", flat=True)) == batch


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_get_disjoint_batches() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED path; on SQLite real processes prove it (test_e2e_durability)")
    ids = ping(200)
    claimed: dict[str, list[int]] = defaultdict(list)

    def claimer(worker: str) -> None:
        try:
            while batch := dispatcher.claim(worker, limit=7):
                claimed[worker] += [event.pk for event in batch]
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [pk for batch in claimed.values() for pk in batch]
    assert sorted(everything) == ids


def test_an_expired_lease_is_reclaimed_and_nothing_runs_twice(db, receivers) -> None:
    ids = ping(3)
    stale = dispatcher.claim("w1", lease_seconds=60)
    assert len(stale) == 3
    assert dispatcher.claim("w2") == []  # the lease holds

    expire_leases()  # w1 has died, or hangs
    reclaimed = dispatcher.claim("w2")
    assert [e.pk for e in reclaimed] == ids
    assert all(dispatcher.process(event, "w2") for event in reclaimed)
    # w1 was only slow and now goes on with its copy of the batch: every receiver has run already.
    assert all(dispatcher.process(event, "w1") for event in stale)

    assert receivers.calls == {"tests.ok": ids, "tests.flaky": ids}
    assert all(delivered(pk) == {"tests.ok": "w2", "tests.flaky": "w2"} for pk in ids)
    assert OutboxEvent.objects.filter(processed_at__isnull=True).count() == 0


@pytest.mark.parametrize("error", [RuntimeError("provider down"), IntegrityError("duplicate key")])
def test_a_failing_receiver_is_retried_later_without_rerunning_the_others(db, receivers, error) -> None:
    receivers.error = error
    [event_id] = ping(1)
    [event] = dispatcher.claim("w1")

    assert dispatcher.process(event, "w1") is False
    event.refresh_from_db()
    assert event.processed_at is None
    assert event.attempts == 1
    assert event.last_error.startswith("tests.flaky: ")
    assert timezone.now() < event.lease_until <= timezone.now() + timedelta(seconds=1)  # back-off: 1 s
    assert delivered(event_id) == {"tests.ok": "w1"}
    assert not EventTrace.objects.exists()  # the failed receiver's own writes rolled back
    assert dispatcher.claim("w2") == []  # backing off

    expire_leases()
    receivers.error = None
    [again] = dispatcher.claim("w2")
    ok_runs = len(receivers.calls["tests.ok"])  # in memory, the rolled-back first try counts too
    assert dispatcher.process(again, "w2") is True

    assert len(receivers.calls["tests.ok"]) == ok_runs  # the retry did not run it again
    assert delivered(event_id) == {"tests.ok": "w1", "tests.flaky": "w2"}
    assert EventTrace.objects.get().worker == "w2"
    again.refresh_from_db()
    assert again.processed_at is not None
    assert again.lease_until is None


def test_the_back_off_doubles_with_each_attempt(db, receivers) -> None:
    receivers.error = RuntimeError("provider down")
    ping(1)
    for attempt, seconds in enumerate([1, 2, 4, 8], start=1):
        back_off = timedelta(seconds=seconds)
        expire_leases()
        [event] = dispatcher.claim("w1")
        before = timezone.now()
        dispatcher.process(event, "w1")
        after = timezone.now()
        event.refresh_from_db()
        assert event.attempts == attempt
        assert before + back_off <= event.lease_until <= after + back_off
        if attempt == 1:
            ok_runs = len(receivers.calls["tests.ok"])
    assert len(receivers.calls["tests.ok"]) == ok_runs  # once committed, never run again
    assert delivered(event.pk) == {"tests.ok": "w1"}


def test_drain_processes_everything_once(db, receivers, settings) -> None:
    settings.LAVKA_OUTBOX_BATCH = 10
    ids = ping(25)

    assert dispatcher.drain("w1") == 25
    assert dispatcher.drain("w1") == 0

    assert receivers.calls == {"tests.ok": ids, "tests.flaky": ids}
    assert ReceiverDelivery.objects.count() == 50
    assert not OutboxEvent.objects.filter(processed_at__isnull=True).exists()


def test_order_events_refresh_the_customers_figures(shop) -> None:
    order = new_order(shop)
    customer = order.customer
    assert customer.orders_count == 0

    dispatcher.drain()

    customer.refresh_from_db()
    assert customer.orders_count == 1
    assert customer.total_summ == order.total_summ
    created = OutboxEvent.objects.get(type="orders.created")
    assert "customers.refresh_stats" in delivered(created.pk)


def test_a_batch_with_a_failing_event_commits_the_others(db, receivers) -> None:
    """One transaction per batch, one savepoint per receiver: a failure undoes only that receiver's work."""
    ids = ping(3)
    failing = ids[1]
    original = receivers.flaky

    def flaky_on_one(event: OutboxEvent) -> None:
        receivers.error = RuntimeError("bad row") if event.pk == failing else None
        original(event)

    events.receiver(Ping.type, name="tests.flaky")(flaky_on_one)
    batch = dispatcher.claim("w1")

    assert dispatcher.process_batch(batch, "w1") == [True, False, True]
    assert set(EventTrace.objects.values_list("event_id", flat=True)) == {ids[0], ids[2]}
    assert delivered(failing) == {"tests.ok": "w1"}
    assert set(OutboxEvent.objects.filter(processed_at__isnull=False).values_list("id", flat=True)) == {
        ids[0],
        ids[2],
    }


def test_a_receiver_with_nothing_wanted_is_skipped_without_a_delivery_row(db, receivers) -> None:
    wanted: set[str] = set()
    calls: list[int] = []
    picky = events.receiver(Ping.type, name="tests.picky", wanted=lambda: wanted)
    picky(lambda event: calls.append(event.pk))
    try:
        [first] = ping(1)
        assert dispatcher.drain("w1") == 1
        assert calls == []
        assert delivered(first) == {"tests.ok": "w1", "tests.flaky": "w1"}

        wanted.add(Ping.type)
        [second] = ping(1)
        assert dispatcher.drain("w1") == 1
        assert calls == [second]
        assert delivered(second) == {"tests.ok": "w1", "tests.flaky": "w1", "tests.picky": "w1"}
    finally:
        events.unregister("tests.picky")
