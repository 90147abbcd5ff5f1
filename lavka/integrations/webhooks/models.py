"""Outgoing webhooks: subscriptions, one delivery per (subscription, event), and the log of its attempts.

A delivery is its own queue row: `next_attempt_at` set means "send when due"; a sender claims it with a
lease, the way the dispatcher claims outbox rows, so a killed worker's delivery comes back when the lease
expires (DESIGN.md §7, §9).
"""

from __future__ import annotations

import secrets
import uuid

from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.integrations.webhooks import conf
from lavka.integrations.webhooks.catalogue import EVENT_TYPES

http_url = URLValidator(schemes=["http", "https"], message=_("Enter an http:// or https:// address."))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def default_max_failures() -> int:
    return conf.max_failures()


class WebhookSubscription(models.Model):
    """Where to POST which events. `is_active` is the admin's switch; `disabled_at` is set when a run of
    failures stops the sending (deliveries are still recorded and go out once it is enabled again)."""

    name = models.CharField(_("name"), max_length=255)
    url = models.URLField(_("URL"), max_length=2000, validators=[http_url])
    secret = models.CharField(_("secret"), max_length=128, default=new_secret)
    all_events = models.BooleanField(_("all events"), default=False)
    event_types = models.JSONField(_("events"), default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    failure_run = models.PositiveIntegerField(_("consecutive failures"), default=0)
    max_consecutive_failures = models.PositiveIntegerField(
        _("disable after this many consecutive failures"),
        default=default_max_failures,
        validators=[MinValueValidator(1), MaxValueValidator(100000)],
    )
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("webhook")

    def __str__(self) -> str:
        return self.name

    def wants(self, event_type: str) -> bool:
        return event_type in EVENT_TYPES and (self.all_events or event_type in self.event_types)

    @property
    def sending(self) -> bool:
        return self.is_active and self.disabled_at is None


class WebhookDelivery(models.Model):
    """One event for one subscription. `delivery_id` goes to the receiver, the same on every attempt."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    # The copies below make the delivery independent of the outbox row, which may be pruned one day.
    event = models.ForeignKey("core.OutboxEvent", null=True, on_delete=models.SET_NULL, related_name="+")
    event_type = models.CharField(_("event"), max_length=100)
    payload = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(_("occurred at"))
    delivery_id = models.UUIDField(_("delivery id"), default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # Failures since the delivery was last queued (a replay starts a new run); counts towards giving up.
    failed_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    replay_requested = models.BooleanField(default=False)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(_("response"), null=True, blank=True)
    last_error = models.TextField(_("error"), blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], name="webhook_delivery_once"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due_idx",
                condition=models.Q(next_attempt_at__isnull=False),
            ),
            models.Index(fields=["subscription", "-id"], name="webhook_delivery_log_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription_id} ({self.delivery_id})"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery and what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(_("at"))
    response_code = models.PositiveSmallIntegerField(_("response"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration, ms"), default=0)
    error = models.TextField(_("error"), blank=True)
    response_excerpt = models.TextField(_("response body"), blank=True)
    replay = models.BooleanField(_("replay"), default=False)
    worker = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    @property
    def succeeded(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300
