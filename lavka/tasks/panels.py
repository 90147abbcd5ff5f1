"""The tasks panel of the order and customer cards: built here for the card (a template tag) and for
its htmx refresh (a view), so both show the same thing."""

from __future__ import annotations

from typing import Any

from django.db.models import F
from django.utils import timezone

from lavka.tasks.forms import CloseForm
from lavka.tasks.models import Task

OPEN_LIMIT = 20
CLOSED_LIMIT = 5


def panel_context(user: Any, *, order: Any = None, customer: Any = None) -> dict[str, Any]:
    """The tasks of one order or customer that `user` may see: open ones by due time, the last closed."""
    tasks = Task.objects.visible_to(user).select_related("performer")
    if order is not None:
        tasks, subject = tasks.filter(order=order), f"order:{order.pk}"
    else:
        tasks, subject = tasks.filter(customer=customer), f"customer:{customer.pk}"
    open_tasks = list(
        tasks.filter(complete=False).order_by(F("due_at").asc(nulls_last=True), "id")[:OPEN_LIMIT]
    )
    closed = list(tasks.filter(complete=True).order_by("-completed_at", "-id")[:CLOSED_LIMIT])
    return {
        "panel_subject": subject,
        "panel_order": order,
        "panel_customer": customer,
        "open_tasks": open_tasks,
        "closed_tasks": closed,
        "now": timezone.now(),
        "close_form": CloseForm(),
        "open_limit": OPEN_LIMIT,
    }
