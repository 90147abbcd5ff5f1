from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.core.models import Site


class Task(models.Model):
    """A to-do for one person, with a deadline, optionally about a customer or an order."""

    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks", verbose_name=_("site")
    )
    text = models.CharField(_("task"), max_length=255)
    commentary = models.TextField(_("commentary"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    performer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tasks", verbose_name=_("performer")
    )
    # Null when the task came from the API, a rule or the system.
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tasks",
        verbose_name=_("customer"),
    )
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tasks",
        verbose_name=_("order"),
    )
    phone = models.CharField(_("phone"), max_length=20, blank=True)  # E.164
    complete = models.BooleanField(_("complete"), default=False)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["performer", "complete", "due_at"], name="task_queue_idx"),
            models.Index(fields=["customer", "-created_at"], name="task_customer_idx"),
            models.Index(fields=["order", "-created_at"], name="task_order_idx"),
        ]

    def __str__(self) -> str:
        return self.text
