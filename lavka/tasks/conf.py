"""The tasks' settings, read with defaults so that none is required (see .env.example)."""

from __future__ import annotations

import datetime

from django.conf import settings


def reminder_email() -> bool:
    """Reminders also go by e-mail to performers who have an address."""
    return bool(getattr(settings, "LAVKA_TASK_REMINDER_EMAIL", False))


def escalation_delay() -> datetime.timedelta:
    """How long a task may be overdue before its performer's supervisor is told."""
    return datetime.timedelta(minutes=max(int(getattr(settings, "LAVKA_TASK_ESCALATION_MINUTES", 60)), 0))


def tick_seconds() -> float:
    """How often the worker looks for due reminders, overdue tasks and escalations."""
    return float(getattr(settings, "LAVKA_TASK_TICK_SECONDS", 30))


# A missed inbound call is owed a call back within this many of the manager's working minutes.
CALLBACK_WORKING_MINUTES = 15
