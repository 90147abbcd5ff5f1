"""The only writers of webhook subscriptions and deliveries (the settings pages, the fan-out receiver and
the sender call these). Actions never make the HTTP request themselves: they queue it for the worker."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from lavka.core import jobs
from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent
from lavka.integrations.webhooks import conf
from lavka.integrations.webhooks.catalogue import EVENT_TYPES
from lavka.integrations.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    new_secret,
)

# Job paths as strings: the jobs module imports this one.
SEND_DELIVERIES = "lavka.integrations.webhooks.jobs.send_deliveries"
SEND_SUBSCRIPTION = "lavka.integrations.webhooks.jobs.send_subscription"
EDITABLE = ("name", "url", "all_events", "event_types", "max_consecutive_failures")


def _locked(subscription: WebhookSubscription | int) -> WebhookSubscription:
    """The row, locked. Locks go subscription first, then its deliveries, everywhere (no deadlocks); NO KEY
    UPDATE lets the fan-out keep inserting deliveries that reference it meanwhile."""
    pk = subscription if isinstance(subscription, int) else subscription.pk
    return WebhookSubscription.objects.select_for_update(no_key=True).get(pk=pk)


def _apply(subscription: WebhookSubscription, values: dict[str, Any]) -> WebhookSubscription:
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    for name, value in values.items():
        setattr(subscription, name, value)
    subscription.name = (subscription.name or "").strip()
    types = subscription.event_types
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise ValidationError({"event_types": _("Choose events from the list.")})
    strange = [t for t in types if t not in EVENT_TYPES]
    if strange:
        raise ValidationError({"event_types": _("Unknown event: %(types)s") % {"types": ", ".join(strange)}})
    # Kept in the catalogue's order, without repeats.
    subscription.event_types = [t for t in EVENT_TYPES if t in types]
    if not subscription.all_events and not subscription.event_types:
        raise ValidationError({"event_types": _("Choose at least one event, or all events.")})
    subscription.full_clean(exclude=["secret"])
    subscription.save()
    return subscription


@transaction.atomic
def create_subscription(values: dict[str, Any], *, actor: Actor) -> WebhookSubscription:
    """A new, active subscription with a fresh secret; errors are ValidationError keyed by field."""
    return _apply(WebhookSubscription(), values)


@transaction.atomic
def update_subscription(
    subscription: WebhookSubscription, values: dict[str, Any], *, actor: Actor
) -> WebhookSubscription:
    return _apply(_locked(subscription), values)


@transaction.atomic
def rotate_secret(subscription: WebhookSubscription, *, actor: Actor) -> WebhookSubscription:
    """A new secret; every request from now on, retries included, is signed with it."""
    subscription = _locked(subscription)
    subscription.secret = new_secret()
    subscription.save(update_fields=["secret", "updated_at"])
    return subscription


@transaction.atomic
def enable_subscription(subscription: WebhookSubscription, *, actor: Actor) -> int:
    """Switch on (also after an automatic disable): the failure run starts from zero and the deliveries
    waiting for a retry go out now. Returns how many were resumed."""
    subscription = _locked(subscription)
    subscription.is_active = True
    subscription.disabled_at = None
    subscription.disabled_reason = ""
    subscription.failure_run = 0
    subscription.save()
    waiting = subscription.deliveries.filter(next_attempt_at__isnull=False)
    resumed = waiting.update(next_attempt_at=timezone.now())
    if resumed:
        jobs.enqueue(SEND_SUBSCRIPTION, subscription.pk)
    return resumed


@transaction.atomic
def disable_subscription(subscription: WebhookSubscription, *, actor: Actor) -> WebhookSubscription:
    """Switch off: nothing is sent and no new deliveries are recorded until it is enabled again."""
    subscription = _locked(subscription)
    subscription.is_active = False
    subscription.save(update_fields=["is_active", "updated_at"])
    return subscription


@transaction.atomic
def delete_subscription(subscription: WebhookSubscription, *, actor: Actor) -> None:
    _locked(subscription).delete()


@transaction.atomic
def replay_delivery(delivery: WebhookDelivery, *, actor: Actor) -> WebhookDelivery:
    """Send a delivery again, with the same delivery id, whatever its state and the subscription's."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = timezone.now()
    delivery.failed_attempts = 0
    delivery.replay_requested = True
    delivery.save(update_fields=["status", "next_attempt_at", "failed_attempts", "replay_requested"])
    jobs.enqueue(SEND_DELIVERIES, delivery.pk)
    return delivery


def subscribed_types() -> set[str]:
    """The event types some active subscription wants (one query, asked once per dispatcher batch)."""
    wanted: set[str] = set()
    for all_events, event_types in WebhookSubscription.objects.filter(is_active=True).values_list(
        "all_events", "event_types"
    ):
        wanted.update(EVENT_TYPES if all_events else (t for t in event_types or () if t in EVENT_TYPES))
    return wanted


def create_deliveries(event: OutboxEvent) -> list[int]:
    """The deliveries of `event` for every subscription that wants it; runs in the receiver's transaction.

    A subscription disabled after failures still collects deliveries, so that nothing is missing when it
    is enabled again; one switched off by a person does not. Returns the ids to send now.
    """
    if event.type not in EVENT_TYPES:
        return []
    subscriptions = [s for s in WebhookSubscription.objects.filter(is_active=True) if s.wants(event.type)]
    if not subscriptions:
        return []
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                subscription=subscription,
                event=event,
                event_type=event.type,
                payload=event.payload,
                occurred_at=event.created_at,
                next_attempt_at=now,
            )
            for subscription in subscriptions
        ],
        ignore_conflicts=True,  # the unique (subscription, event) pair: a second run adds nothing
    )
    sending = [s.pk for s in subscriptions if s.sending]
    return list(
        WebhookDelivery.objects.filter(event=event, subscription__in=sending, next_attempt_at__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class AttemptResult:
    at: datetime
    response_code: int | None
    duration_ms: int
    error: str = ""
    excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300

    def summary(self) -> str:
        return f"HTTP {self.response_code}" if self.response_code is not None else self.error


def backoff(failures: int) -> timedelta:
    """Exponential in the number of failures, capped, with jitter over the upper half of the interval so
    that the deliveries that failed together do not all come back at the same moment."""
    ceiling = min(conf.backoff_cap(), conf.backoff_base() * 2 ** min(max(failures - 1, 0), 40))
    return timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))


@transaction.atomic
def record_attempt(delivery_pk: int, result: AttemptResult, *, worker: str) -> WebhookDelivery:
    """Log one request and move the delivery and its subscription on: done, a retry later, given up, or
    the subscription disabled after its run of failures."""
    subscription_id = WebhookDelivery.objects.values_list("subscription_id", flat=True).get(pk=delivery_pk)
    subscription = _locked(subscription_id)
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_pk)
    WebhookAttempt.objects.create(
        delivery=delivery,
        at=result.at,
        response_code=result.response_code,
        duration_ms=result.duration_ms,
        error=result.error[:2000],
        response_excerpt=result.excerpt,
        replay=delivery.replay_requested,
        worker=worker[:64],
    )
    # A sender whose lease ran out records what it did, but leaves the newer claim alone.
    if delivery.claimed_by == worker:
        delivery.claimed_by, delivery.lease_until = "", None
    done = delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.next_attempt_at is None
    delivery.attempts += 1
    delivery.last_attempt_at = result.at
    delivery.last_response_code = result.response_code
    delivery.last_error = "" if result.ok else result.summary()[:2000]
    delivery.replay_requested = False
    if result.ok:
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.next_attempt_at = None
        delivery.failed_attempts = 0
        delivery.delivered_at = result.at
        subscription.failure_run = 0
    else:
        subscription.failure_run += 1
        if not done:  # a late failure of a concurrent attempt does not reopen a delivered one
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.failed_attempts += 1
            if delivery.failed_attempts >= conf.max_attempts():
                delivery.next_attempt_at = None  # given up; a replay can still send it
            else:
                delivery.next_attempt_at = timezone.now() + backoff(delivery.failed_attempts)
        if subscription.sending and subscription.failure_run >= subscription.max_consecutive_failures:
            subscription.disabled_at = timezone.now()
            # Stored in the installation's language: the worker has no user to pick one for.
            with translation.override(settings.LANGUAGE_CODE):
                reason = _("disabled after %(n)s consecutive failures: last %(last)s")
                values = {"n": subscription.failure_run, "last": result.summary()}
                subscription.disabled_reason = (reason % values)[:500]
    delivery.save()
    subscription.save(update_fields=["failure_run", "disabled_at", "disabled_reason"])
    return delivery
