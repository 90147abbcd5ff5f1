from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lavka.core.models import Site
from lavka.tasks.querysets import TaskQuerySet


class Task(models.Model):
    """A to-do for one person, with a deadline, optionally about a customer, an order or a call.

    `text` is the title and `commentary` the description (the names of the retailCRM API). `complete`
    is the API's "closed" flag and always agrees with `status`: true for done and cancelled tasks
    (a check constraint holds it). `reminded_at`, `overdue_at` and `escalated_at` are the durable marks
    of the periodic jobs: each is set once, in the transaction that raises its notice, and cleared only
    when the time it is about (`remind_at`, `due_at`) is moved.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        DONE = "done", _("done")
        CANCELLED = "cancelled", _("cancelled")

    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks", verbose_name=_("site")
    )
    text = models.CharField(_("task"), max_length=255)
    commentary = models.TextField(_("description"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    remind_at = models.DateTimeField(_("remind at"), null=True, blank=True)
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
    call = models.ForeignKey(
        "telephony.Call",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
        verbose_name=_("call"),
    )
    phone = models.CharField(_("phone"), max_length=20, blank=True)  # E.164
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    complete = models.BooleanField(_("complete"), default=False)
    completed_at = models.DateTimeField(_("closed"), null=True, blank=True)  # done or cancelled
    completion_comment = models.TextField(_("result"), blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    overdue_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Who asked for the task once ("rule-run:12:step:2", "call:7:callback"): a second request with the
    # same key gets the same task. Unique in the database, so two concurrent requests make one task.
    source_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(_("created"), db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["performer", "complete", "due_at"], name="task_queue_idx"),
            models.Index(fields=["customer", "-created_at"], name="task_customer_idx"),
            models.Index(fields=["order", "-created_at"], name="task_order_idx"),
            # The periodic jobs' work lists stay small: only open tasks not yet handled are indexed.
            models.Index(
                fields=["remind_at"],
                name="task_remind_due_idx",
                condition=models.Q(complete=False, reminded_at__isnull=True, remind_at__isnull=False),
            ),
            models.Index(
                fields=["due_at"],
                name="task_overdue_due_idx",
                condition=models.Q(complete=False, overdue_at__isnull=True, due_at__isnull=False),
            ),
            models.Index(
                fields=["due_at"],
                name="task_escalation_due_idx",
                condition=models.Q(complete=False, escalated_at__isnull=True, due_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(complete=False, status="open")
                | models.Q(complete=True, status__in=["done", "cancelled"]),
                name="task_complete_matches_status",
            )
        ]

    def __str__(self) -> str:
        return self.text

    @property
    def title(self) -> str:
        return self.text

    @property
    def description(self) -> str:
        return self.commentary

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def is_overdue(self) -> bool:
        """Open and past its due time (the flag is derived; `overdue_at` only records the notice)."""
        return self.is_open and self.due_at is not None and self.due_at < timezone.now()


class Notification(models.Model):
    """An in-app notice for one user about one task: a reminder, an overdue task, an escalation.

    The unread ones make the count in the top navigation; the e-mail copy of a reminder is sent by a
    job, which records `emailed_at`.
    """

    class Kind(models.TextChoices):
        REMINDER = "reminder", _("reminder")
        OVERDUE = "overdue", _("overdue")
        ESCALATION = "escalation", _("escalation")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="task_notifications"
    )
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["user", "-created_at"],
                name="task_note_unread_idx",
                condition=models.Q(read_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.task_id} → {self.user_id}"
