"""Shop KPIs on small hand-built shops: every expected number is worked out by hand in the comments.

Orders are loaded through the bulk import (the path that may set an old order's status, dates and
complaint directly); it also keeps the customers' first-order dates and revenue to date, which the KPIs
read. Times are wall-clock times in the installation's zone (Europe/Moscow in the test settings).
"""

from __future__ import annotations

import datetime
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lavka.analytics import shop_kpi
from lavka.analytics.kpi import Period
from lavka.analytics.models import Cost, CostGroup, CostItem, CustomerMetrics, SiteAnalytics
from lavka.core.actor import Actor
from lavka.customers.models import Customer
from lavka.orders.actions import ItemData
from lavka.orders.bulk import CustomerRow, OrderRow, import_customers, import_orders

IMPORTER = Actor.importer("tests")
FEBRUARY = Period(datetime.date(2024, 2, 1), datetime.date(2024, 2, 29))
MARCH = Period(datetime.date(2024, 3, 1), datetime.date(2024, 3, 31))
LATER = timezone.make_aware(datetime.datetime(2024, 6, 1), timezone.get_default_timezone())


def at(month: int, day: int, hour: int = 12, year: int = 2024) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(year, month, day, hour), timezone.get_default_timezone())


_phones = iter(range(1000, 9999))


def customer(shop, name: str, source: str = "", site=None) -> Customer:
    site = site or shop.site
    row = CustomerRow(first_name=name, phones=[f"+7916000{next(_phones):04d}"], source=source)
    result = import_customers(site, [row], actor=IMPORTER)
    assert not result.errors, result.errors
    return Customer.objects.get(pk=result.ids[0])


def order(
    shop,
    who: Customer,
    when: datetime.datetime,
    amount: str,
    status: str = "complete",
    *,
    done: datetime.datetime | None = None,
    source: str = "",
    complaint: str = "",
) -> None:
    offer = shop.tea if who.site_id == shop.site.pk else shop.foreign_offer
    row = OrderRow(
        customer_id=who.pk,
        created_at=when,
        status=status,
        status_updated_at=done or when,
        manager=shop.alice if who.site_id == shop.site.pk else shop.outsider,
        manager_set=True,
        items=[ItemData(offer_id=offer.pk, initial_price=Decimal(amount))],
        source=source,
        complaint_reason=complaint,
    )
    result = import_orders(who.site, [row], actor=IMPORTER)
    assert not result.errors, result.errors


def test_previous_period():
    assert shop_kpi.previous_period(MARCH) == FEBRUARY  # whole months: the month before
    quarter = Period(datetime.date(2024, 4, 1), datetime.date(2024, 6, 30))
    assert shop_kpi.previous_period(quarter) == Period(datetime.date(2024, 1, 1), datetime.date(2024, 3, 31))
    # From a month's first day to a day inside a later month: the same days, as many months before.
    to_date = Period(datetime.date(2025, 12, 1), datetime.date(2026, 11, 23))
    assert shop_kpi.previous_period(to_date) == Period(
        datetime.date(2024, 12, 1), datetime.date(2025, 11, 23)
    )
    month_to_date = Period(datetime.date(2024, 3, 1), datetime.date(2024, 3, 15))
    assert shop_kpi.previous_period(month_to_date) == Period(
        datetime.date(2024, 2, 1), datetime.date(2024, 2, 15)
    )
    long_month = Period(
        datetime.date(2024, 1, 1), datetime.date(2024, 3, 30)
    )  # 30 March − 3 months: 30 December
    assert shop_kpi.previous_period(long_month) == Period(
        datetime.date(2023, 10, 1), datetime.date(2023, 12, 30)
    )
    # 30 March − 1 month: no 30 February, so 29 February.
    march_to_30 = Period(datetime.date(2024, 3, 1), datetime.date(2024, 3, 30))
    assert shop_kpi.previous_period(march_to_30) == FEBRUARY
    # Not starting on a month's first day: the same number of days (10 … 19 March is 10 days →
    # 29 February … 9 March).
    odd = Period(datetime.date(2024, 3, 10), datetime.date(2024, 3, 19))
    assert shop_kpi.previous_period(odd) == Period(datetime.date(2024, 2, 29), datetime.date(2024, 3, 9))


@pytest.fixture
def march_shop(shop):
    """Five customers of `shop` and one of `other` around February and March 2024."""
    a, b, c = customer(shop, "A"), customer(shop, "B", "vk"), customer(shop, "C")
    d, e = customer(shop, "D"), customer(shop, "E")
    f = customer(shop, "F", site=shop.other_site)
    order(shop, a, at(1, 10), "1000", done=at(1, 12))
    order(shop, a, at(3, 5), "2000", done=at(3, 7))  # delivered after 48 h
    order(shop, b, at(3, 2, 10), "500", done=at(3, 3, 10))  # 24 h
    order(shop, b, at(3, 20, 10), "1500", "complaint", done=at(3, 25), complaint="defect")
    order(shop, c, at(3, 10), "3000", done=at(3, 14))  # 96 h
    order(shop, c, at(3, 12), "700", "no-call")  # cancelled: counts nowhere but as an order's existence
    order(shop, d, at(2, 15), "800", done=at(2, 16))  # 24 h
    order(shop, e, at(3, 25), "400", "new")
    order(shop, f, at(3, 3), "9999")  # another site
    return shop


def test_period_figures(march_shop):
    shop = march_shop
    march, february = shop_kpi.period_figures([shop.site.pk], [MARCH, FEBRUARY], now=LATER)

    # March, counted orders (not cancelled): A 2000, B 500, B 1500, C 3000, E 400.
    assert march.orders == 5
    assert march.revenue == Decimal("7400.00")  # 2000 + 500 + 1500 + 3000 + 400
    assert march.average_order == Decimal("1480.00")  # 7400 / 5
    # Buyers A, B, C, E. Repeat: A (first order in January, before March), B (two orders in March);
    # C's second order is cancelled, E has one. 2 / 4.
    assert (march.buyers, march.repeat_buyers) == (4, 2)
    assert march.repeat_share == 0.5
    # Revenue of A and B in March: 2000 + 500 + 1500 = 4000 of 7400.
    assert march.repeat_revenue == Decimal("4000.00")
    assert march.repeat_revenue_share == pytest.approx(4000 / 7400)
    assert march.frequency == 1.25  # 5 orders / 4 buyers
    assert march.new_customers == 3  # B, C, E placed their first counted order in March
    # Delivered (complete group): A 5 Mar, B 2 Mar, C 10 Mar; complaints: B's order of 20 March.
    assert (march.delivered, march.complaints) == (3, 1)
    assert march.complaints_per_10k == pytest.approx(10_000 / 3)  # 1 / 3 × 10 000 = 3333.3
    assert march.delivery_time == datetime.timedelta(hours=56)  # (48 + 24 + 96) / 3

    # February: D's one order of 800; D is new and not (yet) a repeat customer.
    assert (february.orders, february.revenue, february.buyers) == (1, Decimal("800.00"), 1)
    assert (february.repeat_buyers, february.repeat_share, february.repeat_revenue_share) == (0, 0.0, 0.0)
    assert february.new_customers == 1
    assert (february.delivered, february.complaints, february.complaints_per_10k) == (1, 0, 0.0)
    assert february.delivery_time == datetime.timedelta(hours=24)


def test_empty_period_has_no_ratios(shop):
    (figures,) = shop_kpi.period_figures([shop.site.pk], [MARCH], now=LATER)
    assert (figures.orders, figures.revenue, figures.buyers) == (0, Decimal("0.00"), 0)
    assert figures.average_order is None and figures.repeat_share is None and figures.frequency is None
    assert figures.complaints_per_10k is None and figures.delivery_time is None
    assert figures.churn.rate is None


def test_other_sites_do_not_count(march_shop):
    shop = march_shop
    (other,) = shop_kpi.period_figures([shop.other_site.pk], [MARCH], now=LATER)
    assert (other.orders, other.revenue, other.buyers, other.new_customers) == (1, Decimal("9999.00"), 1, 1)
    (both,) = shop_kpi.period_figures([shop.site.pk, shop.other_site.pk], [MARCH], now=LATER)
    assert (both.orders, both.revenue) == (6, Decimal("17399.00"))  # 5 + 1, 7400 + 9999


def test_monthly_churn(shop):
    # Churn window W = 40 days. For March (s = 1 Mar, e = 1 Apr): s − W = 21 Jan, e − W = 21 Feb.
    # For February (s = 1 Feb, e = 1 Mar): s − W = 23 Dec, e − W = 21 Jan.
    SiteAnalytics.objects.create(site=shop.site, churned_days=40)
    a, d, g, h, k, m = (customer(shop, n) for n in "ADGHKM")
    order(shop, a, at(1, 10), "100")
    order(shop, a, at(3, 5), "100")
    order(shop, d, at(2, 15), "100")
    order(shop, g, at(2, 25), "100")
    order(shop, g, at(3, 28), "100")
    order(shop, h, at(2, 1), "100")
    order(shop, h, at(4, 10), "100")  # H comes back, but only after March
    order(shop, k, at(1, 5), "100")
    order(shop, k, at(1, 25), "100", "no-call")  # cancelled: does not keep K active
    order(shop, m, at(1, 15), "100")
    order(shop, m, at(2, 10), "100")

    march, february = shop_kpi.churn_by_month([shop.site.pk], [MARCH, FEBRUARY], now=LATER)
    # Active at 1 Mar (a counted order in [21 Jan, 1 Mar)): D 15 Feb, G 25 Feb, H 1 Feb, M 10 Feb;
    # not A (10 Jan) nor K (5 Jan). Still active at 1 Apr (an order in [21 Feb, 1 Apr)): only G (28 Mar).
    assert (march.active, march.churned) == (4, 3)
    assert march.rate == 0.75
    # Active at 1 Feb (an order in [23 Dec, 1 Feb)): A 10 Jan, K 5 Jan, M 15 Jan (H's order is on 1 Feb,
    # not before it). Still active at 1 Mar (an order in [21 Jan, 1 Mar)): only M (10 Feb).
    assert (february.active, february.churned) == (3, 2)
    assert february.months == [datetime.date(2024, 2, 1)] and february.window_days == [40]

    # Two months pool their counts: (2 + 3) / (3 + 4).
    (both,) = shop_kpi.churn_by_month([shop.site.pk], [Period(FEBRUARY.first, MARCH.last)], now=LATER)
    assert (both.active, both.churned) == (7, 5)
    # A month not over yet does not count: on 15 April only March is whole and past.
    spring = Period(MARCH.first, datetime.date(2024, 4, 30))
    (spring_churn,) = shop_kpi.churn_by_month([shop.site.pk], [spring], now=at(4, 15))
    assert spring_churn.months == [datetime.date(2024, 3, 1)]
    assert (spring_churn.active, spring_churn.churned) == (4, 3)
    # A period with no whole month in it has no churn figure.
    (none,) = shop_kpi.churn_by_month([shop.site.pk], [Period(MARCH.first, datetime.date(2024, 3, 30))])
    assert none.months == [] and none.rate is None


@pytest.mark.parametrize("window", [20, 45, 365])
def test_churn_matches_its_definition_on_random_orders(shop, window):
    """The query's month arithmetic against the definition applied literally, order by order."""
    rng = random.Random(window)
    SiteAnalytics.objects.create(site=shop.site, churned_days=window)
    moments: dict[int, list[datetime.datetime]] = {}
    for n in range(25):
        who = customer(shop, f"Z{n}")
        moments[who.pk] = []
        for _ in range(rng.choice([1, 1, 2, 3, 5])):
            when = at(1, 1, 0, year=2023) + datetime.timedelta(hours=rng.randrange(24 * 700))
            cancelled = rng.random() < 0.1
            order(shop, who, when, "100", "no-call" if cancelled else "complete")
            if not cancelled:
                moments[who.pk].append(when)
    year = Period(datetime.date(2024, 1, 1), datetime.date(2024, 12, 31))
    (churn,) = shop_kpi.churn_by_month([shop.site.pk], [year], now=at(1, 1, 0, year=2025))
    w = datetime.timedelta(days=window)

    def active(times: list[datetime.datetime], moment: datetime.datetime) -> bool:
        return any(moment - w <= t < moment for t in times)

    expected_active = expected_churned = 0
    for month in range(1, 13):
        span = shop_kpi._month_span(datetime.date(2024, month, 1))
        for times in moments.values():
            if active(times, span.start):
                expected_active += 1
                expected_churned += not active(times, span.end)
    assert len(churn.months) == 12
    assert (churn.active, churn.churned) == (expected_active, expected_churned)
    assert expected_churned > 0


def test_churn_window_defaults_to_the_lifecycle_default(shop):
    assert shop_kpi.churn_window([shop.site.pk]) == {shop.site.pk: 365}


def test_cohort_matrix(shop):
    p1, p2, p3, p4, p5, p6 = (customer(shop, f"P{n}") for n in range(1, 7))
    order(shop, p1, at(1, 5), "100")
    order(shop, p1, at(2, 7), "100")
    order(shop, p1, at(3, 9), "100")
    order(shop, p2, at(1, 20), "100")
    order(shop, p2, at(3, 3), "100")
    order(shop, p3, at(1, 25), "100")
    order(shop, p3, at(4, 2), "100")  # after the period: not seen
    order(shop, p4, at(2, 2), "100")
    order(shop, p4, at(2, 20), "100")
    order(shop, p4, at(3, 1), "100")
    order(shop, p5, at(2, 14), "100")
    order(shop, p5, at(3, 10), "100", "no-call")  # cancelled: not a return
    order(shop, p6, at(3, 30), "100")

    quarter = Period(datetime.date(2024, 1, 1), MARCH.last)
    matrix = shop_kpi.cohorts([shop.site.pk], quarter, months=3)
    assert matrix.months == 3
    jan, feb, mar = matrix.cohorts
    # January: P1, P2, P3. February: P1 → 1/3. March: P1, P2 → 2/3.
    assert (jan.month, jan.customers, jan.buyers) == (datetime.date(2024, 1, 1), 3, [3, 1, 2])
    assert jan.retention == [1.0, pytest.approx(1 / 3), pytest.approx(2 / 3)]
    # February: P4, P5 (P4's two February orders are one buyer). March: P4 → 1/2.
    assert (feb.customers, feb.buyers, feb.retention) == (2, [2, 1], [1.0, 0.5, None])
    assert (mar.customers, mar.retention) == (1, [1.0, None, None])

    # A one-month period still shows `months` cohorts, ending with its month.
    short = shop_kpi.cohorts([shop.site.pk], MARCH, months=2)
    assert [c.month for c in short.cohorts] == [datetime.date(2024, 2, 1), datetime.date(2024, 3, 1)]
    assert short.cohorts[0].retention == [1.0, 0.5]


def test_sources_ltv_cac_romi(shop):
    s1 = customer(shop, "S1", "vk")
    s2, s3, s4, s5, s6 = (customer(shop, f"S{n}") for n in range(2, 7))
    order(shop, s1, at(3, 3), "1000", source="yandex")  # the customer's own source wins: vk
    order(shop, s1, at(4, 5), "500", source="email")  # after the period, but revenue to date
    order(shop, s2, at(3, 4), "2000", source="yandex")
    order(shop, s2, at(3, 20), "1000", source="email")  # a repeat order keeps the first order's source
    order(shop, s3, at(3, 10), "600", source="yandex")
    order(shop, s4, at(2, 10), "900", source="yandex")  # acquired in February: not in March's rows
    order(shop, s4, at(3, 10), "900", source="yandex")
    order(shop, s5, at(3, 15), "400")  # no source anywhere
    order(shop, s6, at(3, 1), "700", "no-call", source="google")  # cancelled: not the first order
    order(shop, s6, at(3, 2), "300", source="direct")

    group = CostGroup.objects.create(code="ads", name="Ads")
    item = CostItem.objects.create(code="ads", name="Ads", group=group)

    def cost(source: str, first: tuple[int, int], last: tuple[int, int], summ: str, sites=()) -> None:
        made = Cost.objects.create(
            cost_item=item,
            source=source,
            date_from=datetime.date(2024, *first),
            date_to=datetime.date(2024, *last),
            summ=Decimal(summ),
            created_at=timezone.now(),
        )
        made.sites.set(sites)

    cost("yandex", (3, 1), (3, 31), "3100", [shop.site])
    cost("vk", (2, 20), (3, 19), "580", [shop.site])  # 29 days, 20 a day; 19 of them in March: 380
    cost("google", (3, 1), (3, 31), "1000", [shop.other_site])  # another site's spend
    cost("email", (3, 1), (3, 31), "200")  # no sites: shared by all
    cost("", (3, 1), (3, 31), "5000", [shop.site])  # no source: not acquisition spend

    rows = {r.source: r for r in shop_kpi.sources([shop.site.pk], MARCH)}
    assert list(rows) == ["yandex", "vk", "", "direct", "email"]  # by revenue
    yandex = rows["yandex"]  # S2 (2000 + 1000) and S3 (600)
    assert (yandex.customers, yandex.revenue, yandex.ltv) == (2, Decimal("3600.00"), Decimal("1800.00"))
    assert (yandex.cost, yandex.cac) == (Decimal("3100.00"), Decimal("1550.00"))  # 3100 / 2
    assert yandex.romi == pytest.approx((3600 - 3100) / 3100)  # 0.161
    vk = rows["vk"]  # S1: 1000 in March + 500 in April
    assert (vk.customers, vk.revenue, vk.cost, vk.cac) == (1, Decimal("1500.00"), Decimal("380.00"), 380)
    assert vk.romi == pytest.approx((1500 - 380) / 380)  # 2.947
    assert (rows[""].customers, rows[""].revenue, rows[""].cost) == (1, Decimal("400.00"), None)
    assert (rows["direct"].customers, rows["direct"].revenue) == (1, Decimal("300.00"))
    email = rows["email"]  # spend and no new customer
    assert (email.customers, email.cost, email.cac, email.ltv, email.romi) == (
        0,
        Decimal("200.00"),
        None,
        None,
        -1.0,
    )


def test_trend_fills_empty_buckets(march_shop):
    points = shop_kpi.trend(
        [march_shop.site.pk], Period(datetime.date(2024, 3, 1), datetime.date(2024, 3, 5))
    )
    # 2 Mar: B 500; 5 Mar: A 2000; the other days are empty.
    assert [(p.day.day, p.orders, p.revenue) for p in points] == [
        (1, 0, Decimal("0.00")),
        (2, 1, Decimal("500.00")),
        (3, 0, Decimal("0.00")),
        (4, 0, Decimal("0.00")),
        (5, 1, Decimal("2000.00")),
    ]
    months = shop_kpi.trend([march_shop.site.pk], Period(datetime.date(2024, 1, 1), MARCH.last), "month")
    # January: A 1000; February: D 800; March: the 7400 above.
    assert [(p.orders, p.revenue) for p in months] == [
        (1, Decimal("1000.00")),
        (1, Decimal("800.00")),
        (5, Decimal("7400.00")),
    ]


def test_rfm_grid_and_lifecycle(shop):
    now = timezone.now()
    for n, (r, f, revenue, stage) in enumerate(
        [(5, 1, "100", "new"), (5, 1, "300", "new"), (1, 4, "2000", "sleeping"), (None, None, "0", "")]
    ):
        who = customer(shop, f"R{n}")
        CustomerMetrics.objects.create(
            customer=who,
            site=shop.site,
            r_score=r,
            f_score=f,
            revenue=Decimal(revenue),
            lifecycle=stage,
            updated_at=now,
        )
    cells = {(c.r, c.f): (c.customers, c.revenue) for c in shop_kpi.rfm_grid([shop.site.pk])}
    assert cells == {(5, 1): (2, Decimal("400.00")), (1, 4): (1, Decimal("2000.00"))}  # 100 + 300
    stages = shop_kpi.lifecycle_counts([shop.site.pk])
    assert [(s, n) for s, _label, n in stages] == [
        ("new", 2),
        ("active", 0),
        ("repeat", 0),
        ("sleeping", 1),
        ("churned", 0),
    ]
    assert shop_kpi.rfm_grid([shop.other_site.pk]) == []


def test_dashboard_query_count_does_not_grow_with_customers(march_shop):
    shop = march_shop

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            shop_kpi.shop_kpis([shop.site.pk], MARCH, now=LATER)
        return len(captured)

    before = queries()
    for n in range(5):
        order(shop, customer(shop, f"X{n}"), at(3, 6 + n), "100")
    assert queries() == before
    assert before <= 11  # 9 reads (docs/metrics.md, "Cost"), and two SET LOCAL on PostgreSQL


def test_visible_sites(shop):
    assert {s.code for s in shop_kpi.visible_sites(shop.admin)} == {"shop", "other"}
    assert [s.code for s in shop_kpi.visible_sites(shop.supervisor)] == ["shop"]
    assert shop_kpi.visible_sites(shop.alice) == []
    assert shop_kpi.visible_sites(shop.operator) == []
