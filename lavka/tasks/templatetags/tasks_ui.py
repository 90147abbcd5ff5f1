"""The tasks link with its count of unread notices in the top navigation (`{% tasks_nav %}`), and the
tasks panel of the order and customer cards (`{% tasks_panel order=order %}`)."""

from __future__ import annotations

from typing import Any

from django import template

from lavka.tasks.models import Notification
from lavka.tasks.panels import panel_context

register = template.Library()


@register.inclusion_tag("tasks/_nav.html", takes_context=True)
def tasks_nav(context: Any) -> dict[str, Any]:
    """One query: the user's unread reminders, overdue and escalation notices."""
    user = context.get("user")
    unread = 0
    if user is not None and user.is_authenticated:
        unread = Notification.objects.filter(user=user, read_at__isnull=True).count()
    return {"unread": unread, "active": context.get("nav") == "tasks"}


@register.inclusion_tag("tasks/_panel.html", takes_context=True)
def tasks_panel(context: Any, order: Any = None, customer: Any = None) -> dict[str, Any]:
    request = context["request"]
    out = panel_context(request.user, order=order, customer=customer)
    return {**out, "request": request, "csrf_token": context.get("csrf_token")}
