"""Reactions to order and customer events: keep the customer's metrics and the order facts of the shop
KPIs current (the customers an event touched).

Bulk imports emit no events (docs/events.md); their customers' metrics are brought up to date by the
nightly full refresh or `lavka analytics refresh`, their orders' facts by `facts.sync` (which this
receiver and every KPI read call first).
"""

from __future__ import annotations

from typing import Any

from lavka.analytics import facts, metrics
from lavka.core.events import receiver
from lavka.core.models import OutboxEvent
from lavka.customers.choices import TRACKED_FIELDS
from lavka.orders.events import moves_order_figures
from lavka.orders.models import Order

ORDER_EVENTS = (
    "orders.created",
    "orders.updated",
    "orders.status_changed",
    "orders.payment_added",
    "orders.merged",
)


def _customer_id(value: Any) -> int | None:
    """A customer reference as history records it ({"id": 7}) or a bare id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def customers_of(event: OutboxEvent) -> list[int]:
    """The customers whose figures the event may have changed."""
    payload = event.payload
    found = [_customer_id(payload.get("customer_id"))]
    if event.type == "orders.updated":
        # The order moved to another customer: the old one lost it.
        old, _new = (payload.get("changes") or {}).get("customer") or (None, None)
        found.append(_customer_id(old))
    elif event.type == "orders.merged":
        # The other order was cancelled; it may have belonged to someone else.
        merged = payload.get("merged_order_id")
        if merged:
            found.append(Order.objects.filter(pk=merged).values_list("customer_id", flat=True).first())
    elif event.type == "customers.merged":
        found += [_customer_id(pk) for pk in payload.get("merged_ids") or []]
    return list(dict.fromkeys(pk for pk in found if pk))


# A new customer gets a row of zeros at once, so that every customer can be filtered on its metrics.
CUSTOMER_EVENTS = ("customers.created", "customers.merged")


# An update of passive fields only (a comment, a contact detail, a payment…) moves no figure.
@receiver(*ORDER_EVENTS, *CUSTOMER_EVENTS, name="analytics.refresh_metrics", applies=moves_order_figures)
def refresh_metrics(event: OutboxEvent) -> None:
    for customer_id in customers_of(event):
        metrics.refresh_customer(customer_id)


# Events that may change an order's facts (a payment does not).
FACT_EVENTS = (
    "orders.created",
    "orders.updated",
    "orders.status_changed",
    "orders.merged",
    "customers.merged",
    "customers.updated",
)


def _moves_facts(event: OutboxEvent) -> bool:
    if event.type == "customers.updated":  # only the acquisition source is a fact of the customer's
        return TRACKED_FIELDS["source"] in (event.payload.get("fields") or [])
    return moves_order_figures(event)


@receiver(*FACT_EVENTS, name="analytics.order_facts", applies=_moves_facts)
def refresh_order_facts(event: OutboxEvent) -> None:
    """Recompute the facts of the orders of the customers the event touched (the acquisition source is
    the customer's own, so a change of it counts too)."""
    facts.sync()
    facts.refresh_customers(customers_of(event))
