"""The default rules do what their names say, on the default reference books."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from lavka.automation import conditions, jobs
from lavka.automation.defaults import install_default_rules
from lavka.automation.models import RuleRun
from lavka.core import dispatcher
from lavka.core.actor import Actor
from lavka.customers.actions import CustomerData
from lavka.orders.actions import (
    ItemData,
    OrderData,
    PaymentData,
    add_payment,
    change_status,
    create_order,
    record_delivery_tracking,
)
from lavka.orders.models import Order
from lavka.tasks.models import Task

SYSTEM = Actor.system("tests")


@pytest.fixture
def defaults(shop):
    conditions.forget()
    # Nobody's working hours are set, so everyone counts as at work; Alice and Bob take turns.
    return install_default_rules(actor=SYSTEM, enable=True)


def new_order(shop, *, quantity: int = 1, manager=None) -> Order:
    data = OrderData(
        new_customer=CustomerData(first_name="Ivan"),
        items=[ItemData(offer_id=shop.tea.pk, quantity=quantity)],
        manager=manager,
        manager_set=manager is not None,
    )
    return create_order(shop.site, data, actor=Actor.system("shop plugin"))


def test_a_new_order_gets_a_manager_and_a_call_task(shop, defaults) -> None:
    made = new_order(shop)
    dispatcher.drain()

    made.refresh_from_db()
    assert made.manager in (shop.alice, shop.bob)
    task = Task.objects.get(order=made)
    assert task.performer == made.manager
    assert task.text.endswith(made.number)
    assert task.due_at is not None


def test_paid_in_full_moves_the_order_on(shop, defaults) -> None:
    made = new_order(shop, quantity=2, manager=shop.alice)
    add_payment(made, PaymentData(type="cash", status="paid", amount=Decimal("900.00")), actor=SYSTEM)
    dispatcher.drain()

    made.refresh_from_db()
    assert made.status.code == "prepayed"


def test_delivered_completes_the_order(shop, defaults) -> None:
    made = new_order(shop, manager=shop.alice)
    change_status(made, "send-to-assembling", actor=shop.actor(shop.alice))
    change_status(made, "send-to-delivery", actor=shop.actor(shop.alice))
    record_delivery_tracking(made, status="delivered", actor=Actor.system("carrier"))
    dispatcher.drain()

    made.refresh_from_db()
    assert made.status.code == "complete"


def test_an_order_left_in_new_goes_to_the_supervisor(shop, defaults) -> None:
    made = new_order(shop)
    dispatcher.drain()
    Order.objects.filter(pk=made.pk).update(status_updated_at=timezone.now() - datetime.timedelta(minutes=31))

    assert jobs.fire_timers() == 1
    dispatcher.drain()

    assert Task.objects.filter(order=made, performer=shop.supervisor).count() == 1
    assert RuleRun.objects.filter(event_type="automation.timer", outcome=RuleRun.Outcome.DONE).count() == 1
