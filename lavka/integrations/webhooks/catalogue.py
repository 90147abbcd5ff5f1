"""The event types a webhook can subscribe to: the order and customer events of docs/events.md."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

EVENT_TYPES = {
    "orders.created": _("Order created"),
    "orders.updated": _("Order changed"),
    "orders.status_changed": _("Order status changed"),
    "orders.manager_changed": _("Order manager changed"),
    "orders.payment_added": _("Payment added to an order"),
    "orders.fully_paid": _("Order paid in full"),
    "orders.merged": _("Orders merged"),
    "customers.created": _("Customer created"),
    "customers.updated": _("Customer changed"),
    "customers.manager_changed": _("Customer manager changed"),
    "customers.merged": _("Customers merged"),
}
