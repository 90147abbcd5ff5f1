"""The only writers of tasks (DESIGN.md §6): each action writes the change, its history and its event
in one transaction."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import Site
from lavka.core.phones import InvalidPhone, normalize_phone
from lavka.core.validation import clean_text
from lavka.tasks.events import TaskCompleted, TaskCreated, TaskUpdated
from lavka.tasks.models import Task

ENTITY = "task"
# Task attribute → history field name (the retailCRM task field where there is one).
TRACKED_FIELDS = {
    "text": "text",
    "commentary": "commentary",
    "due_at": "datetime",
    "performer_id": "performer",
    "customer_id": "customer",
    "order_id": "order",
    "phone": "phone",
    "complete": "complete",
}


@dataclass
class TaskData:
    """What a form, the API or a rule may set on a task; None means "leave as it is".

    `due_at`, `customer` and `order` may also be cleared, so they carry a `*_set` flag.
    """

    text: str | None = None
    commentary: str | None = None
    due_at: datetime.datetime | None = None
    due_at_set: bool = False
    performer: Any = None  # an accounts.User
    customer: Any = None  # a customers.Customer
    customer_set: bool = False
    order: Any = None  # an orders.Order
    order_set: bool = False
    phone: str | None = None
    complete: bool | None = None


def _check_performer(performer: Any) -> None:
    if performer is None:
        raise ValidationError({"performer": _("This field is required.")})
    if not performer.is_active:
        raise ValidationError({"performer": _("This user is not active.")})


def _linked_site(task: Task, default: Site | None) -> Site | None:
    """A task about an order or a customer belongs to their site; the two must agree."""
    if task.order is not None and task.customer is not None and task.order.site_id != task.customer.site_id:
        raise ValidationError({"order": _("The order and the customer belong to different sites.")})
    if task.order is not None:
        return task.order.site
    if task.customer is not None:
        return task.customer.site
    return default


def _apply(task: Task, data: TaskData, site: Site | None) -> None:
    if data.text is not None:
        task.text = clean_text(data.text, "text", 255)
    if data.commentary is not None:
        task.commentary = clean_text(data.commentary, "commentary", 5000)
    if data.due_at_set:
        task.due_at = data.due_at
    if data.performer is not None:
        _check_performer(data.performer)
        task.performer = data.performer
    if data.customer_set:
        if data.customer is not None and data.customer.merged_into_id:
            raise ValidationError({"customer": _("Unknown customer.")})
        task.customer = data.customer
    if data.order_set:
        task.order = data.order
        if data.order is not None and not data.customer_set and task.customer is None:
            task.customer = data.order.customer
    task.site = _linked_site(task, site)
    if data.phone is not None:
        task.phone = _clean_phone(data.phone, task.site)
    if not task.text:
        raise ValidationError({"text": _("This field is required.")})


def _clean_phone(raw: str, site: Site | None) -> str:
    if not str(raw).strip():
        return ""
    try:
        return normalize_phone(str(raw), site.country if site else "RU")
    except InvalidPhone as exc:
        raise ValidationError({"phone": _("Enter a valid phone number.")}) from exc


@transaction.atomic
def create_task(data: TaskData, *, actor: Actor, site: Site | None = None) -> Task:
    """A new task; `site` is used when the task is about neither an order nor a customer."""
    task = Task(creator=actor.user, created_at=timezone.now())
    _check_performer(data.performer)
    _apply(task, data, site)
    if data.complete:
        task.complete, task.completed_at = True, task.created_at
    task.save()
    changes = [
        Change(
            ENTITY,
            task.pk,
            "id",
            None,
            task.pk,
            created=True,
            context={"site": task.site.code if task.site else None},
        )
    ]
    changes += [
        Change(ENTITY, task.pk, name, None, value, created=True)
        for name, value in history.snapshot(task, TRACKED_FIELDS).items()
        if value not in (None, "", False)
    ]
    history.write(changes, actor)
    events.emit(
        TaskCreated(
            task.pk,
            _site_code(task),
            task.performer_id,
            task.customer_id,
            task.order_id,
            task.due_at.isoformat() if task.due_at else None,
        ),
        actor=actor,
    )
    if task.complete:
        events.emit(_completed(task), actor=actor)
    return task


@transaction.atomic
def update_task(task: Task, data: TaskData, *, actor: Actor) -> Task:
    """Change a task; `complete=True` completes it (event `tasks.completed`), `False` reopens it."""
    task = (
        Task.objects.select_for_update(of=("self",))
        .select_related("site", "customer", "order")
        .get(pk=task.pk)
    )
    before = history.snapshot(task, TRACKED_FIELDS)
    _apply(task, data, task.site)
    completing = data.complete is True and not task.complete
    if data.complete is not None and data.complete != task.complete:
        task.complete = data.complete
        task.completed_at = timezone.now() if data.complete else None
    task.save()
    changes = history.diff(ENTITY, task.pk, before, history.snapshot(task, TRACKED_FIELDS))
    history.write(changes, actor)
    # Completion has its own event; everything else changed (a reopening included) is an update.
    updated = sorted({c.field for c in changes} - ({"complete"} if completing else set()))
    if updated:
        events.emit(TaskUpdated(task.pk, _site_code(task), task.performer_id, updated), actor=actor)
    if completing:
        events.emit(_completed(task), actor=actor)
    return task


def complete_task(task: Task, *, actor: Actor) -> Task:
    """Mark a task done (nothing happens if it already is)."""
    return update_task(task, TaskData(complete=True), actor=actor)


def _site_code(task: Task) -> str | None:
    return task.site.code if task.site else None


def _completed(task: Task) -> TaskCompleted:
    return TaskCompleted(task.pk, _site_code(task), task.performer_id, task.customer_id, task.order_id)
