from __future__ import annotations

import datetime
from typing import Any

from django.db import models
from django.db.models import Q

from lavka.core.permissions import Role, is_admin


class TaskQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> TaskQuerySet:
        """Tasks `user` may see and edit (others are a 404).

        admin: all. supervisor: the tasks of their sites and of the teams they lead. manager: the tasks
        they perform or created, and the tasks on the orders and customers they are responsible for.
        operator: the tasks they perform or created.
        """
        if not user or not user.is_authenticated or not user.is_active:
            return self.none()
        if is_admin(user):
            return self.all()
        own = Q(performer=user.pk) | Q(creator=user.pk)
        if user.role == Role.SUPERVISOR:
            return self.filter(own | Q(site__in=user.site_ids) | Q(performer__team__supervisor=user.pk))
        if user.role == Role.MANAGER:
            return self.filter(own | Q(order__manager=user.pk) | Q(customer__manager=user.pk))
        if user.role == Role.OPERATOR:
            return self.filter(own)
        return self.none()

    def open(self) -> TaskQuerySet:
        return self.filter(complete=False)

    def overdue(self, now: datetime.datetime) -> TaskQuerySet:
        return self.filter(complete=False, due_at__lt=now)

    # The periodic jobs' work lists; each matches one partial index of the model.

    def reminders_due(self, now: datetime.datetime) -> TaskQuerySet:
        return self.filter(
            complete=False, reminded_at__isnull=True, remind_at__isnull=False, remind_at__lte=now
        )

    def overdue_unmarked(self, now: datetime.datetime) -> TaskQuerySet:
        return self.filter(complete=False, overdue_at__isnull=True, due_at__isnull=False, due_at__lt=now)

    def escalation_due(self, now: datetime.datetime, after: datetime.timedelta) -> TaskQuerySet:
        return self.filter(
            complete=False, escalated_at__isnull=True, due_at__isnull=False, due_at__lte=now - after
        )
