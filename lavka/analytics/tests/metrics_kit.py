"""Small shops for the customer-metrics tests: customers and orders loaded through the bulk import
(which may set an old order's date, status and complaint), dated relative to now."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

from django.utils import timezone

from lavka.catalog.models import Offer
from lavka.core.actor import Actor
from lavka.customers.models import Customer
from lavka.orders.actions import ItemData
from lavka.orders.bulk import CustomerRow, OrderRow, import_customers, import_orders

IMPORTER = Actor.importer("tests")
_phones = itertools.count(1000)


def days_ago(days: float, now: datetime.datetime | None = None) -> datetime.datetime:
    return (now or timezone.now()) - datetime.timedelta(days=days)


def customers(site, count: int, prefix: str = "Buyer") -> list[Customer]:
    rows = [
        CustomerRow(first_name=f"{prefix} {n}", phones=[f"+7916{next(_phones):07d}"]) for n in range(count)
    ]
    result = import_customers(site, rows, actor=IMPORTER)
    assert not result.errors, result.errors
    found = Customer.objects.in_bulk(result.ids)
    return [found[pk] for pk in result.ids]


def customer(site, name: str = "Buyer") -> Customer:
    return customers(site, 1, name)[0]


def row(
    shop,
    who: Customer,
    when: datetime.datetime,
    lines: list[tuple[Offer, str]] | None = None,
    status: str = "complete",
    complaint: str = "",
) -> OrderRow:
    lines = lines or [(shop.tea, "450.00")]
    return OrderRow(
        customer_id=who.pk,
        created_at=when,
        status=status,
        status_updated_at=when,
        manager=shop.alice,
        manager_set=True,
        items=[ItemData(offer_id=offer.pk, initial_price=Decimal(amount)) for offer, amount in lines],
        complaint_reason=complaint,
    )


def load(site, rows: list[OrderRow]) -> list[int]:
    result = import_orders(site, rows, actor=IMPORTER)
    assert not result.errors, result.errors
    return result.ids


def order(shop, who: Customer, when: datetime.datetime, *args, **kwargs) -> int:
    return load(who.site, [row(shop, who, when, *args, **kwargs)])[0]
