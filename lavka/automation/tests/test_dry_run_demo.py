"""Acceptance: a dry run over a week of the demo store's events lists the orders a new rule would have
touched, and changes nothing."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from lavka.automation import conditions
from lavka.automation.actions import RuleData
from lavka.automation.dry_run import dry_run
from lavka.automation.models import RuleRun
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.demo import build_demo
from lavka.orders.models import Order
from lavka.tasks.models import Task

pytestmark = pytest.mark.slow


def test_a_week_of_demo_events(db) -> None:
    build_demo(customers=300, orders=3000)
    conditions.forget()
    week_ago = timezone.now() - datetime.timedelta(days=7)
    recent = Order.objects.filter(created_at__gte=week_ago)
    expected = set(recent.filter(total_summ__gte=Decimal("5000")).values_list("id", flat=True))
    assert expected and recent.count() > len(expected)  # the rule tells orders apart
    before = (HistoryRecord.objects.count(), OutboxEvent.objects.count(), Task.objects.count())

    results = dry_run(
        RuleData(
            name="Big orders",
            trigger="orders.created",
            condition="order.total_summ >= 5000",
            actions=[("create_task", {"title": "Look at {{ order.number }}", "performer": "supervisor"})],
        ),
        days=7,
    )

    assert {r.subject_id for r in results if r.fires} == expected
    assert {r.subject_id for r in results} == set(recent.values_list("id", flat=True))
    assert all(r.label for r in results)  # order numbers, for the page
    assert (HistoryRecord.objects.count(), OutboxEvent.objects.count(), Task.objects.count()) == before
    assert not RuleRun.objects.exists()
