from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.core.models import Site


class Call(models.Model):
    """One phone call between the shop and a customer, as the telephony reported it."""

    class Direction(models.TextChoices):
        IN = "in", _("incoming")
        OUT = "out", _("outgoing")

    class Result(models.TextChoices):
        # retailCRM's values, spaces included, so the API passes them through unchanged.
        ANSWERED = "answered", _("answered")
        BUSY = "busy", _("busy")
        FAILED = "failed", _("failed")
        NO_ANSWER = "no answer", _("no answer")
        NOT_ALLOWED = "not allowed", _("not allowed")
        UNKNOWN = "unknown", _("unknown")

    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="calls", verbose_name=_("site")
    )
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    phone = models.CharField(_("phone"), max_length=20, db_index=True)  # E.164
    # The telephony's id of the call: a call reported twice is still one row.
    external_id = models.CharField(_("external ID"), max_length=255, null=True, blank=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="calls",
        verbose_name=_("manager"),
    )
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="calls",
        verbose_name=_("customer"),
    )
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="calls",
        verbose_name=_("order"),
    )
    started_at = models.DateTimeField(_("started"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)  # None while the call goes on
    duration = models.PositiveIntegerField(_("talk time, s"), default=0)
    waiting = models.PositiveIntegerField(_("waiting time, s"), default=0)
    result = models.CharField(_("result"), max_length=16, choices=Result.choices, blank=True)
    record_url = models.URLField(_("recording"), max_length=1000, blank=True)
    external_phone = models.CharField(_("shop's line"), max_length=40, blank=True)
    # When the telephony's own record of the call (calls/upload) arrived; a second one is a duplicate.
    uploaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                name="call_external_id_unique",
                condition=models.Q(external_id__isnull=False),
            )
        ]
        indexes = [
            models.Index(fields=["customer", "-started_at"], name="call_customer_idx"),
            models.Index(fields=["manager", "-started_at"], name="call_manager_idx"),
            models.Index(fields=["phone", "-started_at"], name="call_phone_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.phone}"

    @property
    def missed(self) -> bool:
        """An incoming call nobody answered (a callback is owed)."""
        return (
            self.direction == self.Direction.IN
            and self.ended_at is not None
            and self.result != self.Result.ANSWERED
        )
