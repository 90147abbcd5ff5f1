"""Background entry points of automation: time-based events, waits that are over, webhook calls.

All state is in the database (TimerMark, PostponedStep, Job), so a restarted worker loses nothing and
two workers do nothing twice: a timer's mark and a step's `done_at` commit with what they caused.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from lavka.automation import engine
from lavka.automation.events import TimerFired
from lavka.automation.models import PostponedStep, Rule, RuleRun, TimerMark
from lavka.core import events
from lavka.core.actor import Actor
from lavka.core.jobs import periodic

log = logging.getLogger(__name__)

CALL_WEBHOOK = "lavka.automation.jobs.call_webhook"
BATCH = 500


def _order_in_status(params: dict[str, Any], now: datetime.datetime) -> QuerySet:
    Order = apps.get_model("orders", "Order")
    since = now - datetime.timedelta(minutes=int(params.get("minutes") or 0))
    return Order.objects.filter(status__code=params.get("status"), status_updated_at__lte=since).values_list(
        "id", "status_updated_at"
    )


def _task_due_soon(params: dict[str, Any], now: datetime.datetime) -> QuerySet:
    Task = apps.get_model("tasks", "Task")
    until = now + datetime.timedelta(minutes=int(params.get("minutes") or 0))
    return Task.objects.filter(complete=False, due_at__gt=now, due_at__lte=until).values_list("id", "due_at")


def _customer_inactive(params: dict[str, Any], now: datetime.datetime) -> QuerySet:
    Customer = apps.get_model("customers", "Customer")
    since = now - datetime.timedelta(days=int(params.get("days") or 0))
    return Customer.objects.filter(merged_into__isnull=True, last_order_at__lte=since).values_list(
        "id", "last_order_at"
    )


# trigger → (subject type, the subjects due now as (id, anchor) rows). The anchor is the moment the
# wait started (status entered, due time, last order), so each stay fires once.
TIMERS: dict[str, tuple[str, Callable[[dict[str, Any], datetime.datetime], QuerySet]]] = {
    "timer.order_in_status": ("order", _order_in_status),
    "timer.task_due_soon": ("task", _task_due_soon),
    "timer.customer_inactive": ("customer", _customer_inactive),
}


@periodic(seconds=settings.LAVKA_AUTOMATION_TICK_SECONDS)
def fire_timers() -> int:
    """Raise the time-based events that are due, once per rule, subject and anchor."""
    fired = 0
    now = timezone.now()
    for rule in Rule.objects.filter(is_active=True, trigger__in=TIMERS):
        subject_type, due = TIMERS[rule.trigger]
        marked = TimerMark.objects.filter(rule=rule, subject_id=OuterRef("id"))
        rows = list(due(rule.trigger_params, now).filter(~Exists(marked)).order_by("id")[:BATCH])
        fired += _fire(rule, subject_type, ((pk, anchor.isoformat()) for pk, anchor in rows if anchor))
    return fired


def _fire(rule: Rule, subject_type: str, due: Iterable[tuple[int, str]]) -> int:
    due = list(due)
    if not due:
        return 0
    actor = Actor.system("automation timers")
    try:
        with transaction.atomic():
            TimerMark.objects.bulk_create(
                [TimerMark(rule=rule, subject_id=pk, anchor=anchor) for pk, anchor in due]
            )
            for pk, anchor in due:
                events.emit(TimerFired(rule.pk, rule.trigger, subject_type, pk, anchor), actor=actor)
    except IntegrityError:  # another worker raised these in the meantime
        return 0
    return len(due)


@periodic(seconds=settings.LAVKA_AUTOMATION_TICK_SECONDS)
def resume_waiting() -> int:
    """Go on with the runs whose wait is over, each once."""
    now = timezone.now()
    ids = list(
        PostponedStep.objects.filter(done_at__isnull=True, due_at__lte=now)
        .order_by("due_at")
        .values_list("id", flat=True)[:BATCH]
    )
    resumed = 0
    for pk in ids:
        try:
            with transaction.atomic():
                steps = PostponedStep.objects.filter(pk=pk, done_at__isnull=True)
                if connection.features.has_select_for_update_skip_locked:
                    steps = steps.select_for_update(skip_locked=True)
                step = steps.first()
                if step is None:
                    continue
                engine.resume(step)
                resumed += 1
        except Exception:  # one broken run must not hold up the others; it is tried again next tick
            log.exception("resuming postponed step %s failed", pk)
    return resumed


def call_webhook(run_id: int, key: str) -> None:
    """POST the run's event and subject to the action's URL, signed when it has a secret."""
    from lavka.integrations.webhooks.sender import post
    from lavka.integrations.webhooks.signing import sign

    run = RuleRun.objects.select_related("rule", "event").get(pk=run_id)
    position = int(key.rsplit(":", 1)[1])
    params = run.rule.actions.get(position=position).params
    body = json.dumps(
        {
            "delivery_id": key,
            "rule": {"id": run.rule_id, "name": run.rule.name},
            "event": {"type": run.event_type, "payload": run.event.payload if run.event_id else {}},
            "subject": {"type": run.subject_type, "id": run.subject_id},
        },
        ensure_ascii=False,
    ).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Lavka-Delivery": key,
        "X-Lavka-Timestamp": str(timestamp),
    }
    if params.get("secret"):
        headers["X-Lavka-Signature"] = sign(params["secret"], timestamp, body)
    status, _body = post(params["url"], body, headers, timeout=10)
    if not 200 <= status < 300:
        raise RuntimeError(f"webhook answered {status}")  # the job is retried with back-off


PRUNE_CHUNK = 5000


@periodic(seconds=3600)
def prune_skipped_runs() -> int:
    """Delete the skipped runs older than the retention period, a chunk per statement.

    A skipped run only explains why a rule did not fire; every event makes one per enabled rule of its
    type, so they would soon outgrow everything else. Runs that did something are kept: they are the
    rule's record and what stops a re-delivered event from firing it twice."""
    cutoff = timezone.now() - datetime.timedelta(days=settings.LAVKA_AUTOMATION_KEEP_SKIPPED_RUNS_DAYS)
    old = RuleRun.objects.filter(outcome=RuleRun.Outcome.SKIPPED, created_at__lt=cutoff)
    pruned = 0
    while True:
        ids = list(old.order_by("id").values_list("id", flat=True)[:PRUNE_CHUNK])
        if not ids:
            return pruned
        pruned += RuleRun.objects.filter(id__in=ids).delete()[0]
