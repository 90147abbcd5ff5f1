"""Background entry points of tasks: the periodic sweeps for reminders, overdue tasks and escalations,
and the e-mail copy of a reminder. They find ids and call actions; all state is in the database, so a
restarted worker picks up exactly where the last one stopped, and two workers never notify twice."""

from __future__ import annotations

from django.utils import timezone

from lavka.core.jobs import periodic
from lavka.tasks import actions, conf, mail
from lavka.tasks.models import Task

BATCH = 200


@periodic(conf.tick_seconds())
def send_reminders() -> int:
    """Open tasks whose reminder time has come."""
    due = Task.objects.reminders_due(timezone.now()).order_by("remind_at", "id")
    return sum(actions.send_reminder(pk) for pk in list(due.values_list("pk", flat=True)[:BATCH]))


@periodic(conf.tick_seconds())
def mark_overdue() -> int:
    """Open tasks past their due time that have not been reported overdue."""
    due = Task.objects.overdue_unmarked(timezone.now()).order_by("due_at", "id")
    return sum(actions.mark_overdue(pk) for pk in list(due.values_list("pk", flat=True)[:BATCH]))


@periodic(conf.tick_seconds())
def escalate_overdue() -> int:
    """Open tasks overdue for longer than LAVKA_TASK_ESCALATION_MINUTES, not yet escalated."""
    due = Task.objects.escalation_due(timezone.now(), conf.escalation_delay()).order_by("due_at", "id")
    return sum(actions.escalate(pk) for pk in list(due.values_list("pk", flat=True)[:BATCH]))


def email_notification(notification_id: int) -> bool:
    """Queued by a reminder: its e-mail copy to the performer."""
    return mail.send_notification_email(notification_id)
