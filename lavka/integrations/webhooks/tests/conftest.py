from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from django.db import transaction

from lavka.core import dispatcher, events, jobs
from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent
from lavka.integrations.webhooks import actions, sender
from lavka.integrations.webhooks.models import WebhookSubscription
from lavka.integrations.webhooks.tests.receiver import Receiver

SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def fast_webhooks(settings):
    """Back-offs of milliseconds, so that retries happen within a test; messages in English."""
    settings.LAVKA_WEBHOOK_BACKOFF_BASE_SECONDS = 0.01
    settings.LAVKA_WEBHOOK_BACKOFF_CAP_SECONDS = 0.04
    settings.LAVKA_WEBHOOK_TIMEOUT_SECONDS = 3
    settings.LAVKA_WEBHOOK_LEASE_SECONDS = 5
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def subscribe(url: str, **values) -> WebhookSubscription:
    fields = {
        "name": "Shop sync",
        "url": url,
        "all_events": True,
        "event_types": [],
        "max_consecutive_failures": 1000,
        **values,
    }
    return actions.create_subscription(fields, actor=SYSTEM)


def emit(*domain_events: events.DomainEvent) -> list[OutboxEvent]:
    with transaction.atomic():
        return [events.emit(event, actor=SYSTEM) for event in domain_events]


def pump(
    until: Callable[[], bool] = lambda: False, *, seconds: float = 20, rounds: int | None = None
) -> None:
    """What a worker does, round after round: dispatch the outbox, run queued jobs, sweep due retries."""
    deadline = time.monotonic() + seconds
    done = 0
    while not until():
        if rounds is not None and done >= rounds:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds} s")
        dispatcher.drain("tests")
        jobs.run_due("tests")
        sender.send_due()
        done += 1
        time.sleep(0.005)
