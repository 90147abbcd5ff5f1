"""The e-mail copy of a reminder, sent by a job through Django's mail backend (actions never send)."""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from lavka.tasks import actions, conf
from lavka.tasks.models import Notification
from lavka.tasks.working_time import zone_named

log = logging.getLogger(__name__)


def send_notification_email(notification_id: int) -> bool:
    """Send it unless it went already or is no longer wanted; True if sent. A failure raises, and the
    job is retried with back-off. A crash between the send and its record may send it twice."""
    note = (
        Notification.objects.select_related("user", "task__site", "task__order", "task__customer")
        .filter(pk=notification_id)
        .first()
    )
    if note is None or note.emailed_at is not None:
        return False
    user, task = note.user, note.task
    if not (conf.reminder_email() and user.email and user.is_active):
        return False
    zone = zone_named(task.site.time_zone if task.site else None)
    with translation.override(user.language or None), timezone.override(zone):
        # A header may not hold a line break, whatever the title holds.
        subject = " ".join((_("Reminder: %(task)s") % {"task": task.text}).split())[:200]
        body = render_to_string(
            "tasks/email/reminder.txt",
            {
                "task": task,
                "user": user,
                "due": task.due_at,
            },
        )
    send_mail(subject, body, None, [user.email])
    actions.mark_emailed(note.pk)
    log.info("task reminder %s e-mailed", note.pk)
    return True
