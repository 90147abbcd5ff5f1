"""Webhook delivery against a real HTTP receiver on loopback: at least once, signed, one delivery id per
(subscription, event), back-off, give-up, auto-disable and resume, replay, and claims that outlive a dead
sender."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from lavka.core import dispatcher, events
from lavka.core.models import OutboxEvent, ReceiverDelivery
from lavka.core.tests.processes import free_port
from lavka.customers.events import CustomerCreated, CustomerUpdated
from lavka.integrations.webhooks import actions, sender
from lavka.integrations.webhooks.models import WebhookAttempt, WebhookDelivery
from lavka.integrations.webhooks.tests.conftest import SYSTEM, emit, pump, subscribe
from lavka.integrations.webhooks.tests.receiver import Receiver
from lavka.orders.events import OrderCreated, OrderStatusChanged

Status = WebhookDelivery.Status


@dataclass(frozen=True)
class Ping(events.DomainEvent):
    type = "tests.ping"
    n: int


def some_events(count: int) -> list[OutboxEvent]:
    made: list[events.DomainEvent] = []
    for n in range(count):
        made.append(CustomerCreated(customer_id=100 + n, site="shop"))
        made.append(
            OrderCreated(order_id=n + 1, site="shop", customer_id=100 + n, status="new", manager_id=None)
        )
    made.append(
        OrderStatusChanged(
            order_id=1,
            site="shop",
            customer_id=100,
            old_status="new",
            new_status="complete",
            new_group="complete",
        )
    )
    made.append(Ping(1))  # not in the webhook catalogue
    return emit(*made)


def all_delivered() -> bool:
    rows = WebhookDelivery.objects
    return rows.exists() and not rows.exclude(status=Status.SUCCEEDED).exists()


def test_receiver_down_then_up_every_event_arrives_signed_with_one_id_per_delivery(db) -> None:
    port = free_port()  # nothing listens here yet: connections are refused
    everything = subscribe(f"http://127.0.0.1:{port}/all")
    orders_only = subscribe(
        f"http://127.0.0.1:{port}/orders?token=a%20b",
        all_events=False,
        event_types=["orders.created", "orders.status_changed"],
    )
    outbox = some_events(6)
    wanted = {
        everything.pk: {e.pk for e in outbox if e.type != "tests.ping"},
        orders_only.pk: {e.pk for e in outbox if e.type in ("orders.created", "orders.status_changed")},
    }

    dispatcher.drain("w1")
    pump(lambda: not WebhookDelivery.objects.filter(attempts__lt=3).exists())
    assert {(d.subscription_id, d.event_id) for d in WebhookDelivery.objects.all()} == {
        (sub, event) for sub, event_ids in wanted.items() for event in event_ids
    }
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {Status.FAILED}
    refused = WebhookAttempt.objects.first()
    assert refused.response_code is None and "ConnectionRefusedError" in refused.error

    # Up, but failing for a while: the first 25 requests get 500.
    receiver = Receiver(port, answer=lambda request, n: 500 if n < 25 else 200).start()
    try:
        pump(all_delivered)
    finally:
        receiver.stop()

    deliveries = {str(d.delivery_id): d for d in WebhookDelivery.objects.select_related("subscription")}
    delivered_ids = {r.delivery_id for r in receiver.answered(200)}
    assert delivered_ids == set(deliveries)
    assert len(receiver.answered(200)) == len(deliveries)  # nothing arrived twice once it had succeeded
    assert len(receiver.answered(500)) == 25
    ids_per_delivery: dict[tuple[int, int], set[str]] = defaultdict(set)
    for request in receiver.requests:
        delivery = deliveries[request.delivery_id]
        event = OutboxEvent.objects.get(pk=delivery.event_id)
        document = request.document
        # Every request is signed with its subscription's secret and describes its event.
        assert request.signed_with(delivery.subscription.secret)
        assert not request.signed_with(
            orders_only.secret if delivery.subscription == everything else everything.secret
        )
        assert document["id"] == request.delivery_id
        assert document["event"] == request.headers["x-lavka-event"] == event.type
        assert document["payload"] == event.payload
        assert datetime.fromisoformat(document["occurredAt"]) == event.created_at.replace(
            microsecond=(event.created_at.microsecond // 1000 * 1000)
        )
        assert request.path == ("/all" if delivery.subscription == everything else "/orders?token=a%20b")
        ids_per_delivery[(delivery.subscription_id, event.pk)].add(request.delivery_id)
    # Retries repeat the same delivery id, and different deliveries never share one.
    assert all(len(ids) == 1 for ids in ids_per_delivery.values())
    for delivery in deliveries.values():
        assert delivery.attempts == delivery.log.count() >= 4
        assert delivery.last_response_code == 200 and delivery.next_attempt_at is None
        assert delivery.delivered_at is not None and delivery.last_error == ""
    everything.refresh_from_db()
    assert everything.failure_run == 0 and everything.disabled_at is None


def test_each_event_gets_one_delivery_per_subscription_even_if_the_receiver_runs_again(db, receiver) -> None:
    subscription = subscribe(receiver.url())
    [event] = emit(CustomerUpdated(customer_id=5, site="shop", fields=["phones"]))

    dispatcher.drain("w1")
    # The dispatcher would not run the receiver twice; calling the action again adds nothing either.
    [delivery] = WebhookDelivery.objects.filter(event=event)
    assert actions.create_deliveries(event) == [delivery.pk]
    assert ReceiverDelivery.objects.filter(event=event, receiver="webhooks.fanout").count() == 1
    assert WebhookDelivery.objects.filter(event=event).count() == 1
    # And the database refuses a second row for the pair outright.
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.create(
            subscription=subscription, event=event, event_type=event.type, occurred_at=event.created_at
        )
    pump(all_delivered)
    assert len(receiver.requests) == 1


def test_only_subscriptions_that_want_the_event_get_it(db, receiver) -> None:
    everything = subscribe(receiver.url("/all"))
    customers = subscribe(receiver.url("/customers"), all_events=False, event_types=["customers.created"])
    switched_off = subscribe(receiver.url("/off"))
    actions.disable_subscription(switched_off, actor=SYSTEM)
    outbox = some_events(1)

    dispatcher.drain("w1")
    got = defaultdict(set)
    for subscription_id, event_type in WebhookDelivery.objects.values_list("subscription", "event_type"):
        got[subscription_id].add(event_type)
    assert got == {
        everything.pk: {"customers.created", "orders.created", "orders.status_changed"},
        customers.pk: {"customers.created"},
    }
    assert len(outbox) == 4  # the ping made no delivery at all


def test_failed_attempts_back_off_exponentially_with_jitter(db, settings, receiver) -> None:
    settings.LAVKA_WEBHOOK_BACKOFF_BASE_SECONDS = 10
    settings.LAVKA_WEBHOOK_BACKOFF_CAP_SECONDS = 3600
    for failures, low, high in [
        (1, 5, 10),
        (2, 10, 20),
        (4, 40, 80),
        (9, 1280, 2560),
        (10, 1800, 3600),
        (500, 1800, 3600),
    ]:
        waits = {actions.backoff(failures).total_seconds() for _ in range(50)}
        assert all(low <= wait <= high for wait in waits), (failures, waits)
        assert len(waits) > 40  # jittered, not one fixed value

    receiver.answer = lambda request, n: 503
    subscribe(receiver.url())
    emit(CustomerCreated(customer_id=1, site="shop"))
    before = timezone.now()
    pump(rounds=1)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.FAILED and delivery.last_response_code == 503
    assert before + timedelta(seconds=5) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=10)
    pump(rounds=3)
    assert len(receiver.requests) == 1  # not due yet


def test_redirects_and_timeouts_are_failures(db, settings, receiver) -> None:
    settings.LAVKA_WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.answer = lambda request, n: 302 if n == 0 else 200
    subscribe(receiver.url())
    emit(CustomerCreated(customer_id=1, site="shop"), CustomerCreated(customer_id=2, site="shop"))
    dispatcher.drain("w1")
    sender.send_due(limit=1)
    first = WebhookAttempt.objects.get()
    assert first.response_code == 302 and not first.succeeded
    assert first.response_excerpt == "answer 302 <b>"
    assert first.delivery.last_error == "HTTP 302"

    receiver.delay = 1
    sender.send_due(limit=1)
    slow = WebhookAttempt.objects.exclude(pk=first.pk).get()
    assert slow.response_code is None and slow.error == "timed out"
    assert 250 <= slow.duration_ms < 1000
    receiver.delay = 0
    pump(all_delivered)


def test_a_delivery_is_given_up_after_the_maximum_attempts_and_replay_revives_it(
    db, settings, receiver
) -> None:
    settings.LAVKA_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.answer = lambda request, n: 500 if n < 3 else 200
    subscription = subscribe(receiver.url())
    emit(CustomerCreated(customer_id=1, site="shop"))

    pump(lambda: WebhookDelivery.objects.filter(next_attempt_at__isnull=True).exists())
    pump(rounds=5)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, len(receiver.requests)) == (Status.FAILED, 3, 3)

    actions.replay_delivery(delivery, actor=SYSTEM)
    pump(all_delivered)
    delivery.refresh_from_db()
    assert delivery.attempts == 4 and delivery.status == Status.SUCCEEDED
    assert [r.delivery_id for r in receiver.requests] == [str(delivery.delivery_id)] * 4
    assert list(delivery.log.order_by("id").values_list("replay", flat=True)) == [False, False, False, True]
    subscription.refresh_from_db()
    assert subscription.failure_run == 0


def test_auto_disable_after_the_configured_failures_then_enable_resumes(db, receiver) -> None:
    receiver.answer = lambda request, n: 500
    subscription = subscribe(receiver.url(), max_consecutive_failures=3)
    emit(CustomerCreated(customer_id=1, site="shop"), CustomerCreated(customer_id=2, site="shop"))

    pump(lambda: WebhookDelivery.objects.filter(subscription__disabled_at__isnull=False).exists())
    subscription.refresh_from_db()
    assert subscription.disabled_reason == "disabled after 3 consecutive failures: last HTTP 500"
    assert subscription.failure_run == 3 and subscription.is_active and not subscription.sending
    assert len(receiver.requests) == 3

    # Nothing more is sent, but new events are still recorded for later.
    emit(OrderCreated(order_id=9, site="shop", customer_id=1, status="new", manager_id=None))
    time.sleep(0.1)
    pump(rounds=5)
    assert len(receiver.requests) == 3
    assert WebhookDelivery.objects.count() == 3
    assert WebhookDelivery.objects.filter(next_attempt_at__isnull=False).count() == 3

    receiver.answer = lambda request, n: 200
    assert actions.enable_subscription(subscription, actor=SYSTEM) == 3
    subscription.refresh_from_db()
    assert (subscription.failure_run, subscription.disabled_at, subscription.disabled_reason) == (0, None, "")
    pump(all_delivered)
    assert len(receiver.answered(200)) == 3


def test_auto_disable_names_the_last_error_when_there_was_no_response(db) -> None:
    subscription = subscribe(f"http://127.0.0.1:{free_port()}/", max_consecutive_failures=2)
    emit(CustomerCreated(customer_id=1, site="shop"))
    pump(lambda: WebhookDelivery.objects.filter(subscription__disabled_at__isnull=False).exists())
    subscription.refresh_from_db()
    assert subscription.disabled_reason.startswith(
        "disabled after 2 consecutive failures: last ConnectionRefused"
    )


def test_replay_sends_again_with_the_same_id_even_when_switched_off(db, receiver) -> None:
    subscription = subscribe(receiver.url())
    emit(CustomerCreated(customer_id=1, site="shop"))
    pump(all_delivered)
    delivery = WebhookDelivery.objects.get()
    actions.disable_subscription(subscription, actor=SYSTEM)

    actions.replay_delivery(delivery, actor=SYSTEM)
    pump(lambda: len(receiver.answered(200)) == 2)
    first, second = receiver.requests
    assert first.delivery_id == second.delivery_id == str(delivery.delivery_id)
    assert first.document == second.document
    assert second.signed_with(subscription.secret)
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.status == Status.SUCCEEDED and not delivery.replay_requested


def test_a_dead_senders_claim_comes_back_after_its_lease(db, receiver) -> None:
    subscribe(receiver.url())
    emit(CustomerCreated(customer_id=1, site="shop"))
    dispatcher.drain("w1")

    dead = sender.claim("dead-worker")  # it claims, then dies before sending
    assert dead is not None
    assert sender.send_due() == 0  # the lease keeps others off
    WebhookDelivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert sender.send_due() == 1
    assert len(receiver.answered(200)) == 1

    # The dead worker's late report of a failure does not reopen the delivered delivery.
    actions.record_attempt(dead.pk, actions.AttemptResult(timezone.now(), 500, 10), worker="dead-worker")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.SUCCEEDED and delivery.next_attempt_at is None
    assert delivery.attempts == 2


def test_rotating_the_secret_signs_the_next_attempts_with_the_new_one(db, receiver) -> None:
    subscription = subscribe(receiver.url())
    old = subscription.secret
    assert old.startswith("whsec_") and len(old) > 40
    new = actions.rotate_secret(subscription, actor=SYSTEM).secret
    assert new != old
    emit(CustomerCreated(customer_id=1, site="shop"))
    pump(all_delivered)
    [request] = receiver.requests
    assert request.signed_with(new) and not request.signed_with(old)


def test_real_actions_reach_the_receiver(shop, receiver) -> None:
    from lavka.customers.actions import CustomerData, create_customer

    subscribe(receiver.url())
    customer = create_customer(shop.site, CustomerData(first_name="Ivan"), actor=shop.actor(shop.alice))
    pump(all_delivered)
    [request] = receiver.requests
    assert request.document["event"] == "customers.created"
    assert request.document["payload"] == {"customer_id": customer.pk, "site": "shop"}


def test_a_subscription_deleted_while_its_request_is_out_does_not_break_the_sender(db, receiver, monkeypatch):
    subscription = subscribe(receiver.url())
    emit(CustomerCreated(customer_id=1, site="shop"), CustomerCreated(customer_id=2, site="shop"))
    dispatcher.drain("w1")
    real_attempt = sender.attempt

    def attempt_then_delete(delivery: WebhookDelivery) -> actions.AttemptResult:
        result = real_attempt(delivery)
        actions.delete_subscription(subscription, actor=SYSTEM)
        return result

    monkeypatch.setattr(sender, "attempt", attempt_then_delete)
    assert sender.send_due() == 1
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()
