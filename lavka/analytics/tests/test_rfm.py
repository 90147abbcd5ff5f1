"""RFM: the segments cover every score combination exactly once; quintile scores with ties."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

import pytest
from django.db import connection

from lavka.analytics import metrics, rfm
from lavka.analytics.models import CustomerMetrics, SiteAnalytics
from lavka.analytics.tests.metrics_kit import customers, days_ago, load, row

COMBINATIONS = list(itertools.product(rfm.SCORES, repeat=3))


def test_every_combination_is_in_exactly_one_segment():
    assert len(COMBINATIONS) == 125
    for r, f, m in COMBINATIONS:
        matching = [segment.code for segment in rfm.SEGMENTS if segment.matches(r, f, m)]
        assert len(matching) == 1, ((r, f, m), matching)
        assert rfm.segment_of(r, f, m) == matching[0]
    # Every segment is used, and the codes fit the column.
    used = {rfm.segment_of(*c) for c in COMBINATIONS}
    assert used == set(rfm.BY_CODE) and len(rfm.SEGMENTS) == 11
    assert max(len(code) for code in rfm.BY_CODE) <= 32


def test_known_corners():
    assert rfm.segment_of(5, 5, 5) == "champions"
    assert rfm.segment_of(5, 1, 1) == "new"
    assert rfm.segment_of(1, 1, 1) == "lost"
    assert rfm.segment_of(1, 5, 1) == "cant_lose"
    assert rfm.segment_of(2, 4, 5) == "cant_lose" and rfm.segment_of(2, 4, 4) == "at_risk"
    assert rfm.segment_of(None, 1, 1) == ""


def test_the_sql_case_agrees_with_python(db):
    values = " UNION ALL ".join(f"SELECT {r} AS r, {f} AS f, {m} AS m" for r, f, m in COMBINATIONS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT r, f, m, {rfm.segment_sql('r', 'f', 'm')} FROM ({values}) t")
        got = {(r, f, m): code for r, f, m, code in cursor.fetchall()}
        cursor.execute(f"SELECT {rfm.segment_sql('NULL', 'NULL', 'NULL')}")
        assert cursor.fetchone()[0] == ""
    assert got == {c: rfm.segment_of(*c) for c in COMBINATIONS}


def test_scores_against_edges():
    # Edges are the smallest value reaching scores 2 … 5; a None edge is never reached.
    edges = rfm.edges_from({1: 100, 2: 200, 4: 400, 5: 600})
    assert edges == [200, 400, 400, 600]
    assert [rfm.score(v, edges) for v in (50, 100, 200, 350, 400, 599, 600, 10**6)] == [
        1,
        1,
        2,
        2,
        4,
        4,
        5,
        5,
    ]
    assert rfm.score(7, [3, None, None, None]) == 2
    assert rfm.score(None, edges) is None and rfm.score(5, []) is None


def test_ties_get_one_score_and_edges_reproduce_the_scores(shop):
    """Ten buyers with revenues 100 100 200 300 300 300 400 500 600 700 (one order each, on days 1 … 10
    ago, two of them on the same day). Score = 1 + 5·(buyers with less) // 10:
    less = 0 0 2 3 3 3 6 7 8 9 → M = 1 1 2 2 2 2 4 4 5 5."""
    revenues = ["100", "100", "200", "300", "300", "300", "400", "500", "600", "700"]
    ages = [10, 9, 8, 7, 6, 5, 5, 3, 2, 1]  # days ago; the 6th and 7th buyers share a day
    people = customers(shop.site, 10)
    now = days_ago(0)
    # Noon UTC, so that "days ago" stays on whole UTC days.
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    load(
        shop.site,
        [
            row(shop, who, noon - datetime.timedelta(days=age), [(shop.tea, amount)])
            for who, amount, age in zip(people, revenues, ages, strict=True)
        ],
    )
    metrics.refresh_site(shop.site)
    got = [CustomerMetrics.objects.get(pk=who.pk) for who in people]
    assert [m.m_score for m in got] == [1, 1, 2, 2, 2, 2, 4, 4, 5, 5]
    # F: everyone has one order → all tie at the lowest position → 1.
    assert {m.f_score for m in got} == {1}
    # R: later is better; less = 0 1 2 3 4 5 5 7 8 9 → 1 1 2 2 3 3 3 4 5 5.
    assert [m.r_score for m in got] == [1, 1, 2, 2, 3, 3, 3, 4, 5, 5]

    edges = SiteAnalytics.objects.get(site=shop.site).rfm_edges
    assert edges["m"] == ["200.00", "400.00", "400.00", "600.00"]
    assert edges["f"] == [None, None, None, None]
    for m in got:
        assert rfm.scores_from_stored(edges, m.last_order_at, m.orders_count, m.revenue) == (
            m.r_score,
            m.f_score,
            m.m_score,
        )
    # A value between edges scores like its lower neighbour; one above them all scores 5.
    assert rfm.scores_from_stored(edges, got[0].last_order_at, 1, Decimal("350"))[2] == 2
    assert rfm.scores_from_stored(edges, now, 1, Decimal("10000"))[::2] == (5, 5)


@pytest.mark.parametrize("value", ["2024-02-29", "1970-01-01"])
def test_day_numbers_round_trip(value):
    day = rfm.day_number_of(value)
    moment = datetime.datetime.fromisoformat(value).replace(hour=23, tzinfo=datetime.UTC)
    assert rfm.day_number(moment) == day
    assert rfm.stored_edges([day, None, None, None], [], [], 1)["r"][0] == value
