"""What a rule can wait for: domain events (docs/events.md) and time-based triggers, each with the
subject its condition and actions work on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Trigger:
    code: str
    subject: str  # "order", "customer", "task"
    label: Any
    params: tuple[str, ...] = ()  # a timer's settings: "status", "minutes", "days"

    @property
    def is_timer(self) -> bool:
        return self.code.startswith("timer.")


TRIGGERS = {
    t.code: t
    for t in (
        Trigger("orders.created", "order", _("Order created")),
        Trigger("orders.updated", "order", _("Order changed")),
        Trigger("orders.status_changed", "order", _("Order status changed")),
        Trigger("orders.manager_changed", "order", _("Order manager changed")),
        Trigger("orders.payment_added", "order", _("Payment added to an order")),
        Trigger("orders.fully_paid", "order", _("Order paid in full")),
        Trigger("customers.created", "customer", _("Customer created")),
        Trigger("customers.updated", "customer", _("Customer changed")),
        Trigger("tasks.created", "task", _("Task created")),
        Trigger("tasks.completed", "task", _("Task completed")),
        Trigger("tasks.overdue", "task", _("Task overdue")),
        Trigger(
            "timer.order_in_status",
            "order",
            _("Order has been in a status for a while"),
            ("status", "minutes"),
        ),
        Trigger("timer.task_due_soon", "task", _("Task due soon"), ("minutes",)),
        Trigger("timer.customer_inactive", "customer", _("Customer has not ordered for a while"), ("days",)),
    )
}
