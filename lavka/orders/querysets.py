from typing import Any

from django.db import models

from lavka.core.permissions import scope_q
from lavka.orders.choices import Group


class OrderQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> "OrderQuerySet":
        return self.filter(scope_q(user, creator_field="created_by"))

    def open(self) -> "OrderQuerySet":
        return self.exclude(status__group__code__in=Group.CLOSED)

    def counted(self) -> "OrderQuerySet":
        """Orders that count towards a customer's figures (not cancelled)."""
        return self.exclude(status__group__code=Group.CANCEL)

    def unassigned(self) -> "OrderQuerySet":
        return self.filter(manager__isnull=True)

    def for_list(self) -> "OrderQuerySet":
        return self.select_related("site", "status", "status__group", "manager", "order_method", "customer")
