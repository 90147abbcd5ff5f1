"""Sends due deliveries from the worker: claim one with a lease, POST it, record the attempt.

Claiming works like the outbox dispatcher's: SKIP LOCKED on PostgreSQL, the IMMEDIATE transaction and a
compare-and-set on the lease on SQLite. A worker killed mid-request leaves a claim whose lease expires,
and the next sender sends the delivery again with the same delivery id (at least once).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import ssl
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from lavka.integrations.webhooks import actions, conf
from lavka.integrations.webhooks.models import WebhookDelivery
from lavka.integrations.webhooks.signing import sign

log = logging.getLogger(__name__)
EXCERPT_BYTES = 1000
USER_AGENT = "Lavka-Webhooks/1"


def body_of(delivery: WebhookDelivery) -> bytes:
    document = {
        "id": str(delivery.delivery_id),
        "event": delivery.event_type,
        "occurredAt": delivery.occurred_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "payload": delivery.payload,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def headers_of(delivery: WebhookDelivery, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Lavka-Event": delivery.event_type,
        "X-Lavka-Delivery": str(delivery.delivery_id),
        "X-Lavka-Timestamp": str(timestamp),
        "X-Lavka-Signature": sign(delivery.subscription.secret, timestamp, body),
    }


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """One POST without redirects or proxies: (status, the start of the response body)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    elif parts.scheme == "http":
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    else:
        raise ValueError(f"unsupported scheme {parts.scheme!r}")
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(EXCERPT_BYTES)
    finally:
        conn.close()


def attempt(delivery: WebhookDelivery) -> actions.AttemptResult:
    """Make the request; every way it can go wrong becomes a failed result, never an exception."""
    body = body_of(delivery)
    started_at = timezone.now()
    started = time.monotonic()
    code, excerpt, error = None, b"", ""
    try:
        headers = headers_of(delivery, body, int(time.time()))
        code, excerpt = post(delivery.subscription.url, body, headers, conf.timeout())
    except TimeoutError:
        error = "timed out"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    return actions.AttemptResult(
        at=started_at,
        response_code=code,
        duration_ms=duration_ms,
        error=error,
        excerpt=excerpt.decode("utf-8", "replace").replace("\x00", ""),
    )


def new_claimer() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _due(now: object) -> Q:
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    sending = Q(subscription__is_active=True, subscription__disabled_at__isnull=True)
    sending |= Q(replay_requested=True)  # a replay goes out whatever the subscription's state
    return Q(next_attempt_at__lte=now) & free & sending


def claim(worker: str, where: Q | None = None) -> WebhookDelivery | None:
    """Reserve the delivery that has been due longest (matching `where`) for `worker`, or None."""
    now = timezone.now()
    due = _due(now) & (where or Q())
    lease = now + timedelta(seconds=conf.lease_seconds())
    # A plain read first: an idle sweep takes no write lock (on SQLite every write transaction does).
    if not WebhookDelivery.objects.filter(due).exists():
        return None
    with transaction.atomic():
        rows = WebhookDelivery.objects.filter(due).order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        pk = rows.values_list("pk", flat=True).first()
        if pk is None:
            return None
        if not WebhookDelivery.objects.filter(due, pk=pk).update(claimed_by=worker, lease_until=lease):
            return None
    return WebhookDelivery.objects.select_related("subscription").filter(pk=pk, claimed_by=worker).first()


def send_due(where: Q | None = None, *, limit: int | None = None, budget_seconds: float = 30) -> int:
    """Send due deliveries one by one until none is left, `limit` were sent or the budget is spent."""
    worker = new_claimer()
    limit = limit or conf.batch()
    deadline = time.monotonic() + budget_seconds
    sent = 0
    while sent < limit and time.monotonic() < deadline:
        delivery = claim(worker, where)
        if delivery is None:
            break
        result = attempt(delivery)
        sent += 1
        try:
            actions.record_attempt(delivery.pk, result, worker=worker)
        except ObjectDoesNotExist:
            continue  # deleted with its subscription while the request was out
        if not result.ok:
            log.info(
                "webhook delivery %s to %s failed: %s",
                delivery.delivery_id,
                delivery.subscription_id,
                result.summary(),
            )
    return sent
