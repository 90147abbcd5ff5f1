from typing import Any

from django.apps import apps
from django.db import models
from django.db.models import Q

from lavka.core.permissions import Role, scope_q


class CustomerQuerySet(models.QuerySet):
    def active(self) -> "CustomerQuerySet":
        return self.filter(merged_into__isnull=True)

    def visible_to(self, user: Any) -> "CustomerQuerySet":
        q = scope_q(user, creator_field="created_by")
        if getattr(user, "role", None) == Role.MANAGER:
            # A manager working an order may open its customer's card.
            Order = apps.get_model("orders", "Order")
            q |= Q(pk__in=Order.objects.filter(manager=user.pk).values("customer_id"))
        return self.filter(q)
