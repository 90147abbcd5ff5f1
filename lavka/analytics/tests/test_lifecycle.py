"""Lifecycle stages, thresholds derived from the shop's own purchase gaps, and editing them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from lavka.analytics import lifecycle, metrics
from lavka.analytics.lifecycle import Thresholds
from lavka.analytics.models import CustomerMetrics, SiteAnalytics
from lavka.analytics.tests.metrics_kit import customers, days_ago, load, row
from lavka.core.models import HistoryRecord

T = Thresholds(30, 60, 120)


@pytest.mark.parametrize(
    "orders, days, expected",
    [
        (0, None, ""),
        (1, 0, "new"),
        (1, 30, "new"),
        (3, 30, "repeat"),
        (1, 30.5, "active"),
        (4, 60, "active"),
        (2, 61, "sleeping"),
        (1, 120, "sleeping"),
        (1, 121, "churned"),
        (9, 5000, "churned"),
    ],
)
def test_stage(orders, days, expected):
    assert lifecycle.stage(orders, days, T) == expected


def test_the_sql_case_agrees_with_python(db):
    grid = list(itertools.product([0, 1, 2, 7], [0, 29.9, 30, 30.1, 59, 60, 61, 119.5, 120, 121, 900]))
    values = " UNION ALL ".join(f"SELECT {n} AS n, {d} AS d" for n, d in grid)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT n, d, {lifecycle.stage_sql('n', 'd', T)} FROM ({values}) t")
        got = {(n, float(d)): stage for n, d, stage in cursor.fetchall()}
    assert got == {(n, float(d)): lifecycle.stage(n, d, T) for n, d in grid}


def test_thresholds_from_gaps():
    # 1 … 100: median 50.5 → 51, 80th 80.2 → 81, 95th 95.05 → 96 (linear interpolation, rounded up).
    assert lifecycle.thresholds_from_gaps(np.arange(1, 101)) == Thresholds(51, 81, 96)
    # All gaps alike: at least 7 days active, and each threshold a day past the one before.
    assert lifecycle.thresholds_from_gaps([1.0] * 50) == Thresholds(7, 8, 9)
    assert lifecycle.thresholds_from_gaps([10.0] * (lifecycle.MIN_GAPS - 1)) is None


@pytest.fixture
def regulars(shop):
    """40 customers with two orders each, i + 1 days apart (i = 0 … 39), the last one 2 days ago; and one
    customer who ordered 50 days ago."""
    people = customers(shop.site, 41)
    now = days_ago(0)
    rows = []
    for i, who in enumerate(people[:40]):
        rows += [row(shop, who, days_ago(2 + i + 1, now)), row(shop, who, days_ago(2, now))]
    rows.append(row(shop, people[40], days_ago(50, now)))
    load(shop.site, rows)
    return people


def test_the_refresh_derives_thresholds_from_the_purchase_gaps(shop, regulars):
    metrics.refresh_site(shop.site)
    settings = SiteAnalytics.objects.get(site=shop.site)
    # Gaps 1 … 40: median 20.5 → 21, 80th 32.2 → 33, 95th 38.05 → 39.
    assert (settings.active_days, settings.sleeping_days, settings.churned_days) == (21, 33, 39)
    assert not settings.thresholds_edited
    assert CustomerMetrics.objects.get(pk=regulars[0].pk).lifecycle == "repeat"
    assert CustomerMetrics.objects.get(pk=regulars[40].pk).lifecycle == "churned"  # 50 days > 39


def test_thresholds_a_person_set_are_kept_and_applied(shop, regulars):
    metrics.refresh_site(shop.site)
    lifecycle.set_thresholds(shop.site, 60, "90", 200, actor=shop.actor(shop.supervisor))
    settings = SiteAnalytics.objects.get(site=shop.site)
    assert (settings.active_days, settings.sleeping_days, settings.churned_days) == (60, 90, 200)
    assert settings.thresholds_edited
    # Applied at once: 50 days ago with one order is "new" now.
    assert CustomerMetrics.objects.get(pk=regulars[40].pk).lifecycle == "new"
    records = HistoryRecord.objects.filter(entity="site_analytics", entity_id=shop.site.pk)
    assert {r.field for r in records} == {"active_days", "sleeping_days", "churned_days", "thresholds_edited"}
    metrics.refresh_site(shop.site)
    settings.refresh_from_db()
    assert (settings.active_days, settings.sleeping_days, settings.churned_days) == (60, 90, 200)

    lifecycle.reset_thresholds(shop.site, actor=shop.actor(shop.supervisor))
    settings.refresh_from_db()
    assert (
        settings.active_days,
        settings.sleeping_days,
        settings.churned_days,
        settings.thresholds_edited,
    ) == (
        21,
        33,
        39,
        False,
    )
    assert CustomerMetrics.objects.get(pk=regulars[40].pk).lifecycle == "churned"


@pytest.mark.parametrize(
    "values, field",
    [
        ((30, 30, 90), "sleeping_days"),
        ((30, 60, 45), "churned_days"),
        (("thirty", 60, 90), "active_days"),
        ((0, 60, 90), "active_days"),
        ((30, "", 90), "sleeping_days"),
        ((30, 60, 10**6), "churned_days"),
        ((30, 60, 9.5), "churned_days"),
    ],
)
def test_invalid_thresholds_name_the_field(shop, values, field):
    with pytest.raises(ValidationError) as caught:
        lifecycle.set_thresholds(shop.site, *values, actor=shop.actor(shop.supervisor))
    assert set(caught.value.message_dict) == {field}
    assert not SiteAnalytics.objects.filter(site=shop.site, thresholds_edited=True).exists()
