"""A missed inbound call makes one "call back" task for the right manager, however often its event
comes."""

import datetime

from lavka.core import dispatcher
from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent, ReceiverDelivery
from lavka.customers.actions import CustomerData, create_customer
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.tasks.models import Task
from lavka.tasks.receivers import callback_for_missed_call
from lavka.telephony.actions import CallData, CallEvent, record_call_event, upload_calls

SYSTEM = Actor.system("tests")
PHONE = "+79160001122"
WEEKDAYS = {day: ["09:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def missed_call(shop, phone=PHONE, managers=()):
    record_call_event(
        CallEvent(type="in", phone=phone, site=shop.site, managers=list(managers)), actor=SYSTEM
    )
    return record_call_event(
        CallEvent(type="hangup", phone=phone, site=shop.site, hangup_status="no answer"), actor=SYSTEM
    )


def customer_of(shop, manager=None):
    return create_customer(
        shop.site,
        CustomerData(first_name="Анна", phones=[PHONE], manager=manager, manager_set=manager is not None),
        actor=SYSTEM,
    )


def test_one_callback_task_for_the_customers_manager_even_if_delivered_twice(shop):
    customer = customer_of(shop, manager=shop.bob)
    call = missed_call(shop, managers=[shop.alice])
    dispatcher.drain()
    task = Task.objects.get()
    assert task.performer == shop.bob and task.customer == customer and task.call == call
    assert task.source_key == f"call:{call.pk}:callback" and task.phone == PHONE
    assert task.site == shop.site and task.creator is None
    # Bob has no working hours set: every minute counts.
    assert task.due_at == call.ended_at + datetime.timedelta(minutes=15)
    assert task.remind_at == call.ended_at
    assert "+7 916 000-11-22" in task.text

    # The same event again (a redelivery after a lost lease), and a duplicate event for the same call.
    event = OutboxEvent.objects.get(type="telephony.call_missed")
    ReceiverDelivery.objects.filter(event=event).delete()
    OutboxEvent.objects.filter(pk=event.pk).update(processed_at=None, lease_until=None)
    OutboxEvent.objects.create(type=event.type, payload=event.payload, actor=event.actor)
    dispatcher.drain()
    callback_for_missed_call(event)
    assert Task.objects.count() == 1
    assert OutboxEvent.objects.filter(type="tasks.created").count() == 1


def test_the_orders_manager_then_the_manager_the_call_rang_for(shop):
    customer = customer_of(shop)
    order = create_order(
        shop.site,
        OrderData(
            customer=customer, items=[ItemData(offer_id=shop.tea.pk)], manager=shop.bob, manager_set=True
        ),
        actor=SYSTEM,
    )
    missed_call(shop, managers=[shop.alice])
    dispatcher.drain()
    task = Task.objects.get()
    assert task.performer == shop.bob and task.order == order

    other = "+79160009988"
    missed_call(shop, phone=other, managers=[shop.alice])
    dispatcher.drain()
    assert Task.objects.get(phone=other).performer == shop.alice


def test_nobody_responsible_falls_to_the_sites_supervisor(shop):
    missed_call(shop)
    dispatcher.drain()
    assert Task.objects.get().performer == shop.supervisor


def test_due_in_fifteen_working_minutes_of_the_performer(shop):
    shop.alice.working_hours = WEEKDAYS
    shop.alice.save()
    customer_of(shop, manager=shop.alice)
    # From the call log: a call missed on Friday 2030-01-11 at 17:55 Moscow time.
    started = datetime.datetime(2030, 1, 11, 14, 54, tzinfo=datetime.UTC)
    upload_calls(
        [
            CallData(
                direction="in",
                phone=PHONE,
                started_at=started,
                site=shop.site,
                result="no answer",
                waiting=60,
            )
        ],
        actor=SYSTEM,
    )
    dispatcher.drain()
    task = Task.objects.get()
    # 5 minutes on Friday, 10 on Monday morning.
    assert task.due_at == datetime.datetime(2030, 1, 14, 6, 10, tzinfo=datetime.UTC)
    assert task.remind_at == datetime.datetime(2030, 1, 11, 14, 55, tzinfo=datetime.UTC)


def test_an_answered_call_makes_no_task(shop):
    customer_of(shop, manager=shop.alice)
    record_call_event(CallEvent(type="in", phone=PHONE, site=shop.site), actor=SYSTEM)
    record_call_event(
        CallEvent(type="hangup", phone=PHONE, site=shop.site, hangup_status="answered"), actor=SYSTEM
    )
    dispatcher.drain()
    assert not Task.objects.exists()
    assert not OutboxEvent.objects.exclude(last_error="").exists()
