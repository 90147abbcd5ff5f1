"""Cart actions: one current cart per customer and site, history and events with every change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.models import Customer
from lavka.tracking.actions import CartData, CartLine, clear_cart, set_cart
from lavka.tracking.models import Cart

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


@pytest.fixture
def buyer(shop):
    return Customer.objects.create(site=shop.site, external_id="c-1", created_at=timezone.now())


def events(type_: str) -> list[dict]:
    return list(OutboxEvent.objects.filter(type=type_).order_by("id").values_list("payload", flat=True))


def test_set_twice_keeps_one_cart_and_records_the_diff(shop, buyer):
    first = set_cart(shop.site, buyer, CartData(items=[CartLine(shop.tea, 2)], external_id="x1"), actor=ACTOR)
    second = set_cart(shop.site, buyer, CartData(items=[CartLine(shop.cup, 1, "10.005")]), actor=ACTOR)
    assert first.pk == second.pk and Cart.objects.count() == 1
    second.refresh_from_db()
    assert second.external_id == "x1" and second.currency == shop.site.currency
    assert [(i.offer_id, i.price) for i in second.items.all()] == [(shop.cup.pk, Decimal("10.01"))]

    items = HistoryRecord.objects.filter(entity="cart", entity_id=first.pk, field="items").order_by("id")
    assert [r.created for r in items] == [True, False]
    assert items[1].old_value == [{"offer": shop.tea.pk, "quantity": "2.000", "price": "450.00"}]
    assert items[1].context == {"site": "shop", "customer_id": buyer.pk}
    updated = events("tracking.cart_updated")
    assert len(updated) == 2 and "items" in updated[1]["fields"] and "external_id" not in updated[1]["fields"]


def test_clear_empties_once_and_is_a_no_op_without_a_cart(shop, buyer):
    assert clear_cart(shop.site, buyer, actor=ACTOR) is None
    assert not HistoryRecord.objects.filter(entity="cart").exists() and not events("tracking.cart_cleared")

    cart = set_cart(shop.site, buyer, CartData(items=[CartLine(shop.tea)]), actor=ACTOR)
    clear_cart(shop.site, buyer, actor=ACTOR)
    clear_cart(shop.site, buyer, actor=ACTOR)  # only the date moves: no second event
    cart.refresh_from_db()
    assert cart.cleared_at is not None and not cart.items.exists()
    assert events("tracking.cart_cleared") == [
        {"cart_id": cart.pk, "site": "shop", "customer_id": buyer.pk, "order_id": None}
    ]
    # A new report re-opens the cart.
    set_cart(shop.site, buyer, CartData(items=[CartLine(shop.cup)]), actor=ACTOR)
    cart.refresh_from_db()
    assert cart.cleared_at is None and cart.items.count() == 1


def test_refuses_what_belongs_to_another_site(shop, buyer):
    with pytest.raises(ValidationError) as caught:
        set_cart(shop.site, buyer, CartData(items=[CartLine(shop.foreign_offer)]), actor=ACTOR)
    assert "items[0].offer" in caught.value.message_dict
    with pytest.raises(ValidationError):
        set_cart(shop.other_site, buyer, CartData(), actor=ACTOR)
    with pytest.raises(ValidationError) as caught:
        set_cart(shop.site, buyer, CartData(items=[CartLine(shop.tea, "0")]), actor=ACTOR)
    assert "items[0].quantity" in caught.value.message_dict
    assert not Cart.objects.exists() and not HistoryRecord.objects.filter(entity="cart").exists()


def test_one_cart_per_site_and_customer_in_the_database(shop, buyer):
    Cart.objects.create(site=shop.site, customer=buyer)
    with pytest.raises(IntegrityError), transaction.atomic():
        Cart.objects.create(site=shop.site, customer=buyer)
