"""The only writers of tasks and their notifications (DESIGN.md §6): each action writes the change, its
history and its event in one transaction.

A task is open, done or cancelled; `complete` (the API's flag) is true for the last two. The periodic
jobs call `send_reminder`, `mark_overdue` and `escalate`: each claims its task with a conditional update
of its mark (`reminded_at`, `overdue_at`, `escalated_at`), so that two workers, or a worker restarted
half-way, raise each notice once.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from lavka.accounts.models import User
from lavka.core import events, history, jobs
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import Site
from lavka.core.permissions import Role
from lavka.core.phones import InvalidPhone, format_phone, normalize_phone
from lavka.core.validation import clean_text
from lavka.tasks import conf
from lavka.tasks.events import (
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
    TaskEscalated,
    TaskOverdue,
    TaskReminded,
    TaskReopened,
    TaskUpdated,
)
from lavka.tasks.models import Notification, Task
from lavka.tasks.working_time import due_in_working_minutes, zone_named

__all__ = [
    "TaskData",
    "cancel_task",
    "complete_task",
    "create_callback_task",
    "create_task",
    "due_in_working_minutes",
    "escalate",
    "mark_all_read",
    "mark_overdue",
    "mark_read",
    "reassign_task",
    "reopen_task",
    "send_reminder",
    "update_task",
]

log = logging.getLogger(__name__)

ENTITY = "task"
SYSTEM = Actor.system("tasks")
EMAIL_JOB = "lavka.tasks.jobs.email_notification"
MAX_KEY = 200
# Task attribute → history field name (the retailCRM task field where there is one).
TRACKED_FIELDS = {
    "text": "text",
    "commentary": "commentary",
    "due_at": "datetime",
    "remind_at": "remind_at",
    "performer_id": "performer",
    "customer_id": "customer",
    "order_id": "order",
    "call_id": "call",
    "phone": "phone",
    "complete": "complete",
    "status": "status",
    "completion_comment": "completion_comment",
}
# Fields an open/close changes; they are told by their own event, not by `tasks.updated`.
STATE_FIELDS = {"complete", "status", "completion_comment"}


@dataclass
class TaskData:
    """What a form, the API or a rule may set on a task; None means "leave as it is".

    `due_at`, `remind_at`, `customer`, `order` and `call` may also be cleared, so they carry a `*_set`
    flag. `complete=True` completes the task, `False` reopens it.
    """

    text: str | None = None
    commentary: str | None = None
    due_at: datetime.datetime | None = None
    due_at_set: bool = False
    remind_at: datetime.datetime | None = None
    remind_at_set: bool = False
    performer: Any = None  # an accounts.User
    customer: Any = None  # a customers.Customer
    customer_set: bool = False
    order: Any = None  # an orders.Order
    order_set: bool = False
    call: Any = None  # a telephony.Call
    call_set: bool = False
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
    if task.call is not None and task.call.site_id is not None:
        return task.call.site
    return default


def _apply(task: Task, data: TaskData, site: Site | None) -> None:
    if data.text is not None:
        task.text = clean_text(data.text, "text", 255)
    if data.commentary is not None:
        task.commentary = clean_text(data.commentary, "commentary", 5000)
    if data.due_at_set:
        task.due_at = data.due_at
    if data.remind_at_set:
        task.remind_at = data.remind_at
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
    if data.call_set:
        task.call = data.call
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


def _clean_key(key: str) -> str:
    key = str(key).strip()
    if not key or len(key) > MAX_KEY or "\x00" in key:
        raise ValueError(f"a task key is 1 to {MAX_KEY} characters")
    return key


@transaction.atomic
def create_task(data: TaskData, *, actor: Actor, site: Site | None = None, key: str | None = None) -> Task:
    """A new task; `site` is used when the task is about neither an order nor a customer.

    With `key` (e.g. "rule-run:12:step:2", "call:7:callback") the call is idempotent: the task already
    made with that key is returned unchanged, also when two callers race (the key is unique in the
    database; the loser's insert fails inside a savepoint and it reads the winner's task).
    """
    if key is not None:
        key = _clean_key(key)
        # Only a shortcut for the repeated call; the unique constraint below is what decides.
        existing = Task.objects.filter(source_key=key).first()
        if existing is not None:
            return existing
    task = Task(creator=actor.user, created_at=timezone.now(), source_key=key)
    _check_performer(data.performer)
    _apply(task, data, site)
    if data.complete:
        _close(task, Task.Status.DONE, "", task.created_at)
    if key is None:
        task.save(force_insert=True)
    else:
        try:
            with transaction.atomic():
                task.save(force_insert=True)
        except IntegrityError:
            existing = Task.objects.filter(source_key=key).first()
            if existing is None:
                raise
            return existing
    site_code = _site_code(task)
    changes = [Change(ENTITY, task.pk, "id", None, task.pk, created=True, context={"site": site_code})]
    changes += [
        Change(ENTITY, task.pk, name, None, value, created=True)
        for name, value in history.snapshot(task, TRACKED_FIELDS).items()
        if value not in (None, "", False)
    ]
    history.write(changes, actor)
    events.emit(
        TaskCreated(
            task.pk,
            site_code,
            task.performer_id,
            task.customer_id,
            task.order_id,
            _iso(task.due_at),
            task.call_id,
        ),
        actor=actor,
    )
    if task.complete:
        events.emit(_completed(task), actor=actor)
    return task


def _locked(task: Task) -> Task:
    return (
        Task.objects.select_for_update(of=("self",))
        .select_related("site", "customer", "order", "call")
        .get(pk=task.pk)
    )


def _close(task: Task, status: str, comment: str, now: datetime.datetime) -> None:
    task.status, task.complete, task.completed_at = status, True, now
    task.completion_comment = clean_text(comment, "comment", 5000)


def _reopen(task: Task) -> None:
    task.status, task.complete, task.completed_at, task.completion_comment = Task.Status.OPEN, False, None, ""


def _reset_marks(task: Task, due_at: Any, remind_at: Any) -> None:
    """A moved due time may be missed anew, a moved reminder is due anew."""
    if task.due_at != due_at:
        task.overdue_at = task.escalated_at = None
    if task.remind_at != remind_at:
        task.reminded_at = None


@transaction.atomic
def update_task(task: Task, data: TaskData, *, actor: Actor) -> Task:
    """Change a task; `complete=True` completes it (event `tasks.completed`), `False` reopens a done or
    cancelled one (`tasks.reopened`). Other changes are one `tasks.updated`."""
    task = _locked(task)
    before = history.snapshot(task, TRACKED_FIELDS)
    due_at, remind_at, old_status = task.due_at, task.remind_at, task.status
    _apply(task, data, task.site)
    completing = data.complete is True and not task.complete
    reopening = data.complete is False and task.complete
    if completing:
        _close(task, Task.Status.DONE, "", timezone.now())
    elif reopening:
        _reopen(task)
    _reset_marks(task, due_at, remind_at)
    task.save()
    changes = history.diff(ENTITY, task.pk, before, history.snapshot(task, TRACKED_FIELDS))
    history.write(changes, actor)
    updated = sorted({c.field for c in changes} - (STATE_FIELDS if completing or reopening else set()))
    if updated:
        events.emit(TaskUpdated(task.pk, _site_code(task), task.performer_id, updated), actor=actor)
    if completing:
        events.emit(_completed(task), actor=actor)
        _read_all(task)
    if reopening:
        events.emit(TaskReopened(task.pk, _site_code(task), task.performer_id, old_status), actor=actor)
    return task


def _finish(task: Task, status: str, comment: str, actor: Actor) -> Task:
    task = _locked(task)
    if task.status == status:
        return task  # done twice is done once
    if task.status != Task.Status.OPEN:
        raise ValidationError({"status": _("The task is closed; reopen it first.")})
    before = history.snapshot(task, TRACKED_FIELDS)
    _close(task, status, comment, timezone.now())
    task.save()
    history.write(history.diff(ENTITY, task.pk, before, history.snapshot(task, TRACKED_FIELDS)), actor)
    if status == Task.Status.DONE:
        events.emit(_completed(task), actor=actor)
    else:
        events.emit(
            TaskCancelled(task.pk, _site_code(task), task.performer_id, task.customer_id, task.order_id),
            actor=actor,
        )
    _read_all(task)
    return task


@transaction.atomic
def complete_task(task: Task, *, actor: Actor, comment: str = "") -> Task:
    """Mark an open task done, with what came of it (nothing happens if it already is done)."""
    return _finish(task, Task.Status.DONE, comment, actor)


@transaction.atomic
def cancel_task(task: Task, *, actor: Actor, comment: str = "") -> Task:
    """Drop an open task, saying why (nothing happens if it already is cancelled)."""
    return _finish(task, Task.Status.CANCELLED, comment, actor)


@transaction.atomic
def reopen_task(task: Task, *, actor: Actor) -> Task:
    """Open a done or cancelled task again (nothing happens if it is open)."""
    task = _locked(task)
    if task.is_open:
        return task
    old_status = task.status
    before = history.snapshot(task, TRACKED_FIELDS)
    _reopen(task)
    task.save()
    history.write(history.diff(ENTITY, task.pk, before, history.snapshot(task, TRACKED_FIELDS)), actor)
    events.emit(TaskReopened(task.pk, _site_code(task), task.performer_id, old_status), actor=actor)
    return task


def reassign_task(task: Task, performer: Any, *, actor: Actor) -> Task:
    """Give the task to someone else (`tasks.updated` with the field `performer`)."""
    return update_task(task, TaskData(performer=performer), actor=actor)


def _site_code(task: Task) -> str | None:
    return task.site.code if task.site else None


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.astimezone(datetime.UTC).isoformat() if moment else None


def _completed(task: Task) -> TaskCompleted:
    late = bool(task.due_at and task.completed_at and task.completed_at > task.due_at)
    return TaskCompleted(task.pk, _site_code(task), task.performer_id, task.customer_id, task.order_id, late)


# --- notifications ---------------------------------------------------------------------------------


def _notify(user: Any, task: Task, kind: str, now: datetime.datetime) -> Notification:
    return Notification.objects.create(user=user, task=task, kind=kind, created_at=now)


def _read_all(task: Task) -> None:
    """Notices about a closed task need no more attention."""
    Notification.objects.filter(task=task, read_at__isnull=True).update(read_at=timezone.now())


@transaction.atomic
def mark_read(notification: Notification, *, user: Any) -> bool:
    """Dismiss one of `user`'s notices; False if it is not theirs or already read."""
    return bool(
        Notification.objects.filter(pk=notification.pk, user=user, read_at__isnull=True).update(
            read_at=timezone.now()
        )
    )


@transaction.atomic
def mark_all_read(user: Any) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


# --- the periodic jobs' actions ----------------------------------------------------------------------


def _claim(task_id: int, mark: str, due: dict[str, Any], now: datetime.datetime) -> Task | None:
    """Set `mark` on the task if it is still open, unmarked and `due`; the task, or None if another
    worker (or an earlier run) has it, or it is no longer due."""
    claimed = Task.objects.filter(pk=task_id, complete=False, **{f"{mark}__isnull": True}, **due).update(
        **{mark: now}
    )
    if not claimed:
        return None
    return Task.objects.select_related("site", "performer__team__supervisor").get(pk=task_id)


@transaction.atomic
def send_reminder(task_id: int, *, now: datetime.datetime | None = None) -> bool:
    """The reminder of a task whose `remind_at` has come: a notice for its performer (and an e-mail,
    sent by a job, when LAVKA_TASK_REMINDER_EMAIL is on and they have an address)."""
    now = now or timezone.now()
    task = _claim(task_id, "reminded_at", {"remind_at__lte": now}, now)
    if task is None:
        return False
    note = _notify(task.performer, task, Notification.Kind.REMINDER, now)
    events.emit(
        TaskReminded(task.pk, _site_code(task), task.performer_id, _iso(task.remind_at) or ""), actor=SYSTEM
    )
    if conf.reminder_email() and task.performer.email and task.performer.is_active:
        jobs.enqueue(EMAIL_JOB, note.pk, key=f"tasks:notification-email:{note.pk}")
    return True


@transaction.atomic
def mark_overdue(task_id: int, *, now: datetime.datetime | None = None) -> bool:
    """An open task past its due time: `tasks.overdue` and a notice for its performer, once per due time."""
    now = now or timezone.now()
    task = _claim(task_id, "overdue_at", {"due_at__lt": now}, now)
    if task is None:
        return False
    _notify(task.performer, task, Notification.Kind.OVERDUE, now)
    events.emit(
        TaskOverdue(
            task.pk,
            _site_code(task),
            task.performer_id,
            task.customer_id,
            task.order_id,
            _iso(task.due_at) or "",
        ),
        actor=SYSTEM,
    )
    return True


def supervisor_of(task: Task) -> User | None:
    """Who hears of the performer's overdue tasks: their team's supervisor, else the first supervisor of
    the task's site; never the performer themselves."""
    performer = task.performer
    team = performer.team if performer.team_id else None
    if team is not None and team.supervisor is not None:
        supervisor = team.supervisor
        if supervisor.is_active and supervisor.pk != performer.pk:
            return supervisor
    if task.site_id is None:
        return None
    return (
        User.objects.filter(role=Role.SUPERVISOR, is_active=True, sites=task.site_id)
        .exclude(pk=performer.pk)
        .order_by("id")
        .first()
    )


@transaction.atomic
def escalate(task_id: int, *, now: datetime.datetime | None = None) -> bool:
    """A task overdue by LAVKA_TASK_ESCALATION_MINUTES: `tasks.escalated` and a notice for the
    performer's supervisor, once per due time."""
    now = now or timezone.now()
    task = _claim(task_id, "escalated_at", {"due_at__lte": now - conf.escalation_delay()}, now)
    if task is None:
        return False
    supervisor = supervisor_of(task)
    if supervisor is not None:
        _notify(supervisor, task, Notification.Kind.ESCALATION, now)
    events.emit(
        TaskEscalated(
            task.pk,
            _site_code(task),
            task.performer_id,
            supervisor.pk if supervisor else None,
            _iso(task.due_at) or "",
        ),
        actor=SYSTEM,
    )
    return True


# --- missed calls ------------------------------------------------------------------------------------


def _callback_performer(call: Any, customer: Any, order: Any) -> User | None:
    """The customer's manager, else the order's, else the manager the call rang for, else a supervisor
    of the call's site: the first of them who is active."""
    for user in (
        customer.manager if customer else None,
        order.manager if order else None,
        call.manager,
    ):
        if user is not None and user.is_active:
            return user
    if call.site_id is None:
        return None
    return (
        User.objects.filter(role=Role.SUPERVISOR, is_active=True, sites=call.site_id).order_by("id").first()
    )


def create_callback_task(call_id: int, *, actor: Actor = SYSTEM) -> Task | None:
    """A "call back" task for a missed inbound call, due in 15 working minutes of its performer after
    the call ended. Once per call (key "call:<id>:callback"); None if the call was not missed or there is
    nobody to give it to."""
    from lavka.customers.models import Customer
    from lavka.telephony.models import Call

    key = f"call:{call_id}:callback"
    existing = Task.objects.filter(source_key=key).first()
    if existing is not None:
        return existing
    call = (
        Call.objects.select_related("site", "manager", "customer__manager", "order__manager", "order__site")
        .filter(pk=call_id)
        .first()
    )
    if call is None or not call.missed:
        return None
    customer = call.customer
    if customer is not None and customer.merged_into_id:
        customer = Customer.objects.select_related("manager").filter(pk=customer.merged_into_id).first()
    order = call.order
    if order is not None and customer is not None and order.site_id != customer.site_id:
        order = None
    performer = _callback_performer(call, customer, order)
    if performer is None:
        log.warning("missed call %s: nobody to call back", call.pk)
        return None
    zone = zone_named(call.site.time_zone) if call.site else None
    ended = call.ended_at or timezone.now()
    with translation.override(performer.language or None):
        local = timezone.localtime(call.started_at, zone)
        text = _("Call back %(phone)s") % {"phone": format_phone(call.phone)}
        commentary = _("Missed call on %(when)s.") % {
            "when": formats.date_format(local, "SHORT_DATETIME_FORMAT")
        }
    data = TaskData(
        text=text[:255],
        commentary=commentary,
        performer=performer,
        due_at=due_in_working_minutes(performer, conf.CALLBACK_WORKING_MINUTES, ended, tz=zone),
        due_at_set=True,
        # The performer hears of it at once, or when their working day begins.
        remind_at=due_in_working_minutes(performer, 0, ended, tz=zone),
        remind_at_set=True,
        customer=customer,
        customer_set=customer is not None,
        order=order,
        order_set=order is not None,
        call=call,
        call_set=True,
        phone=call.phone,
    )
    return create_task(data, actor=actor, site=call.site, key=key)


@transaction.atomic
def mark_emailed(notification_id: int) -> bool:
    """Record that a notice's e-mail copy went out (so a re-run of its job sends no second one)."""
    return bool(
        Notification.objects.filter(pk=notification_id, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
    )
