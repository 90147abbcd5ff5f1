"""Customer metrics on a hand-computed shop: the full refresh, the incremental path, and that both agree."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lavka.analytics import metrics
from lavka.analytics.models import CustomerMetrics, ModelFit, SiteAnalytics
from lavka.analytics.tests.metrics_kit import customer, customers, days_ago, load, order, row
from lavka.catalog.models import Category, Offer, Product
from lavka.customers.models import Customer

FIELDS = (
    "orders_count",
    "revenue",
    "average_order",
    "first_order_at",
    "last_order_at",
    "favourite_categories",
    "returns_count",
    "complaints_count",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "lifecycle",
    "p_alive",
    "churn_risk",
)


@pytest.fixture
def catalog(shop):
    """Three categories: tea (the kit's tea), cups (the kit's cup, moved) and sweets; and an offer with no
    category."""
    tea = shop.tea.product.category
    cups = Category.objects.create(site=shop.site, name="Cups")
    Product.objects.filter(pk=shop.cup.product_id).update(category=cups)
    sweets = Category.objects.create(site=shop.site, name="Sweets")
    candy = Offer.objects.create(
        product=Product.objects.create(site=shop.site, category=sweets, name="Candy"), name="Candy", price=1
    )
    loose = Offer.objects.create(
        product=Product.objects.create(site=shop.site, name="Gift box"), name="Box", price=1
    )
    shop.cup.refresh_from_db()
    return {"tea": tea.pk, "cups": cups.pk, "sweets": sweets.pk, "candy": candy, "loose": loose}


@pytest.fixture
def hand(shop, catalog):
    """A: three counted orders 100, 60 and 20 days ago (1000 tea; 500 cups with a complaint reason;
    300 candy + 100 gift box), and a cancelled 2000 cups order 5 days ago.
    B: one 450 tea order 10 days ago, now in the "return" status (complaint group).
    C: no orders. D: only a cancelled order. M: merged into A (no row). E: a customer of the other site.
    """
    now = timezone.now()
    a, b, c, d, merged = customers(shop.site, 5)
    load(
        shop.site,
        [
            row(shop, a, days_ago(100, now), [(shop.tea, "1000")]),
            row(shop, a, days_ago(60, now), [(shop.cup, "500")], complaint="delay"),
            row(shop, a, days_ago(20, now), [(catalog["candy"], "300"), (catalog["loose"], "100")]),
            row(shop, a, days_ago(5, now), [(shop.cup, "2000")], status="cancel-other"),
            row(shop, b, days_ago(10, now), [(shop.tea, "450")], status="return", complaint="defect"),
            row(shop, d, days_ago(30, now), [(shop.tea, "700")], status="no-call"),
        ],
    )
    Customer.objects.filter(pk=merged.pk).update(merged_into=a)
    e = customer(shop.other_site, "Elsewhere")
    return {"a": a, "b": b, "c": c, "d": d, "merged": merged, "e": e, "now": now}


def rows() -> dict[int, CustomerMetrics]:
    return {m.customer_id: m for m in CustomerMetrics.objects.all()}


def test_full_refresh_on_a_hand_computed_shop(shop, catalog, hand):
    report = metrics.refresh_site(shop.site)
    assert list(report.steps) == list(metrics.STEPS)
    assert (report.customers, report.buyers) == (4, 2)  # A, B, C, D; the merged stub and E have no row
    got = rows()
    assert set(got) == {hand[k].pk for k in "abcd"}

    a = got[hand["a"].pk]
    assert a.orders_count == 3 and a.revenue == Decimal("1900.00") and a.average_order == Decimal("633.33")
    assert abs((a.first_order_at - days_ago(100, hand["now"])).total_seconds()) < 1
    assert abs((a.last_order_at - days_ago(20, hand["now"])).total_seconds()) < 1
    assert a.days_between_orders == pytest.approx(40.0, abs=1e-4)  # (100 − 20) / (3 − 1)
    # By revenue of counted orders: tea 1000, cups 500, sweets 300 (the cancelled 2000 cups do not count,
    # the gift box has no category).
    assert a.favourite_categories == [catalog["tea"], catalog["cups"], catalog["sweets"]]
    assert (a.complaints_count, a.returns_count) == (1, 0)

    b = got[hand["b"].pk]
    assert (b.orders_count, b.revenue, b.days_between_orders) == (1, Decimal("450.00"), None)
    assert (b.complaints_count, b.returns_count) == (1, 1)
    assert b.favourite_categories == [catalog["tea"]]

    # Two buyers: the better one scores 1 + 5·1 // 2 = 3, the other 1.
    # R: B ordered last (10 days ago) → B 3, A 1; F: A 3, B 1; M: A 3, B 1.
    assert (a.r_score, a.f_score, a.m_score, a.rfm_segment) == (1, 3, 3, "at_risk")
    assert (b.r_score, b.f_score, b.m_score, b.rfm_segment) == (3, 1, 1, "about_to_sleep")
    # Too few purchase gaps to derive thresholds: the defaults 90 / 180 / 365 stay.
    assert (a.lifecycle, b.lifecycle) == ("repeat", "new")

    for key in "cd":
        empty = got[hand[key].pk]
        assert (empty.orders_count, empty.revenue, empty.average_order) == (0, 0, 0)
        assert (empty.r_score, empty.rfm_segment, empty.lifecycle, empty.favourite_categories) == (
            None,
            "",
            "",
            [],
        )
        assert empty.first_order_at is None and empty.p_alive is None
    assert got[hand["d"].pk].complaints_count == 0

    settings = SiteAnalytics.objects.get(site=shop.site)
    assert settings.refreshed_at is not None
    edges = settings.rfm_edges
    assert edges["customers"] == 2
    assert edges["f"] == [3, 3, None, None] and edges["m"] == ["1900.00", "1900.00", None, None]
    assert edges["r"][:2] == [days_ago(10, hand["now"]).astimezone(datetime.UTC).date().isoformat()] * 2
    fit = ModelFit.objects.get(site=shop.site)
    assert not fit.sufficient and "customers" in fit.reason and report.fit == fit


def test_refresh_again_is_idempotent_and_drops_merged_rows(shop, catalog, hand):
    metrics.refresh_site(shop.site)
    first = {pk: [getattr(m, f) for f in FIELDS] for pk, m in rows().items()}
    Customer.objects.filter(pk=hand["d"].pk).update(merged_into=hand["a"])
    metrics.refresh_site(shop.site)
    again = {pk: [getattr(m, f) for f in FIELDS] for pk, m in rows().items()}
    del first[hand["d"].pk]
    assert again == first


def test_incremental_refresh_matches_the_full_one(shop, catalog, hand):
    metrics.refresh_site(shop.site)
    full = rows()
    CustomerMetrics.objects.all().delete()
    for pk in full:
        metrics.refresh_customer(pk)
    metrics.refresh_customer(hand["merged"].pk)
    incremental = rows()
    assert set(incremental) == set(full)
    for pk, expected in full.items():
        got = incremental[pk]
        for name in FIELDS:
            assert getattr(got, name) == getattr(expected, name), (pk, name)
        if expected.days_between_orders is not None:
            assert got.days_between_orders == pytest.approx(expected.days_between_orders)


def test_a_new_order_updates_one_customer_against_the_stored_edges(shop, catalog, hand):
    metrics.refresh_site(shop.site)
    b = hand["b"]
    order(shop, b, days_ago(1), [(shop.cup, "2000")])
    with CaptureQueriesContext(connection) as queries:
        metrics.refresh_customer(b.pk)
    assert len(queries) <= 12
    got = CustomerMetrics.objects.get(pk=b.pk)
    assert (got.orders_count, got.revenue) == (2, Decimal("2450.00"))
    # Stored edges: R ≥ 10 days ago → 3; F: 2 < 3 → 1; M: 2450 ≥ 1900 → 3.
    assert (got.r_score, got.f_score, got.m_score) == (3, 1, 3)
    assert got.rfm_segment == "about_to_sleep" and got.lifecycle == "repeat"
    assert got.favourite_categories == [catalog["cups"], catalog["tea"]]
    # The others are untouched.
    assert CustomerMetrics.objects.get(pk=hand["a"].pk).orders_count == 3


def test_refresh_customer_of_a_merged_or_deleted_customer(shop, catalog, hand):
    metrics.refresh_site(shop.site)
    Customer.objects.filter(pk=hand["c"].pk).update(merged_into=hand["a"])
    metrics.refresh_customer(hand["c"].pk)
    assert not CustomerMetrics.objects.filter(pk=hand["c"].pk).exists()
    metrics.refresh_customer(10**9)  # no such customer: nothing happens


def test_full_refresh_takes_the_same_queries_for_more_customers(shop):
    def queries_for(count: int) -> int:
        people = customers(shop.site, count, prefix=f"n{count}")
        load(shop.site, [row(shop, who, days_ago(n % 50 + 1)) for n, who in enumerate(people)])
        with CaptureQueriesContext(connection) as captured:
            metrics.refresh_site(shop.site)
        return len(captured)

    metrics.refresh_site(shop.site)  # the site's settings row exists from now on
    few = queries_for(3)
    assert queries_for(40) == few


def test_progress_is_reported_per_step(shop, hand):
    seen = []
    metrics.refresh_site(shop.site, progress=lambda step, done, total: seen.append((step, done, total)))
    total = len(metrics.STEPS)
    assert seen == [(metrics.STEPS[0], 0, total), *((s, n, total) for n, s in enumerate(metrics.STEPS, 1))]


def test_a_row_written_by_an_incremental_update_during_the_refresh_is_kept(shop, hand, monkeypatch):
    """The refresh read the orders before the incremental update committed: its older figures must not
    overwrite the newer row."""
    metrics.refresh_site(shop.site)
    real = metrics._write

    def with_concurrent_update(cursor, site_id, thresholds, started, **options):
        CustomerMetrics.objects.filter(pk=hand["b"].pk).update(orders_count=99, updated_at=timezone.now())
        return real(cursor, site_id, thresholds, started, **options)

    monkeypatch.setattr(metrics, "_write", with_concurrent_update)
    metrics.refresh_site(shop.site)
    assert CustomerMetrics.objects.get(pk=hand["b"].pk).orders_count == 99
    assert CustomerMetrics.objects.get(pk=hand["a"].pk).orders_count == 3


def _schema() -> tuple[set, set]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'analytics_customermetrics'::regclass"
        )
        constraints = set(cursor.fetchall())
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'analytics_customermetrics'"
        )
        return constraints, set(cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the table swap is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_refresh_that_changes_most_rows_swaps_in_a_new_table_with_the_same_rows_and_schema(
    shop, catalog, hand, monkeypatch
):
    """What the swap keeps and writes is what the in-place update would: the same figures, other sites'
    rows, a newer row an incremental update wrote meanwhile; merged customers' rows go. The constraints
    and indexes come back under their own names."""
    other = Customer.objects.get(pk=hand["e"].pk)
    metrics.refresh_customer(other.pk)  # the other site's row, which the swap must carry over
    metrics.refresh_site(shop.site)
    in_place = {pk: [getattr(m, f) for f in FIELDS] for pk, m in rows().items()}
    schema = _schema()
    CustomerMetrics.objects.filter(site=shop.site).update(p_alive=-1, orders_count=77)
    Customer.objects.filter(pk=hand["d"].pk).update(merged_into=hand["a"])
    del in_place[hand["d"].pk]
    real = metrics._write

    def with_concurrent_update(cursor, site_id, thresholds, started, **options):
        CustomerMetrics.objects.filter(pk=hand["b"].pk).update(orders_count=99, updated_at=timezone.now())
        return real(cursor, site_id, thresholds, started, **options)

    monkeypatch.setattr(metrics, "_write", with_concurrent_update)
    monkeypatch.setattr(metrics, "SWAP_ROWS", 1)
    swapped = []
    real_swap = metrics._swap
    monkeypatch.setattr(metrics, "_swap", lambda *args: swapped.append(1) or real_swap(*args))
    report = metrics.refresh_site(shop.site)
    assert swapped == [1]
    got = {pk: [getattr(m, f) for f in FIELDS] for pk, m in rows().items()}
    assert got[hand["b"].pk][0] == 99  # newer than what the refresh read: kept
    in_place[hand["b"].pk][0] = 99
    in_place[hand["b"].pk][FIELDS.index("p_alive")] = -1  # as the test left it before the refresh
    assert got == in_place and other.pk in got
    # A and C rewritten (B kept as newer, D merged: its row deleted).
    assert report.written == 3 and report.customers == 3
    assert _schema() == schema
    # The incremental path writes to the new table.
    metrics.refresh_customer(hand["b"].pk)
    assert CustomerMetrics.objects.get(pk=hand["b"].pk).orders_count == 1


# --- Events and the nightly job ---------------------------------------------------------------------------


def test_order_and_merge_events_keep_the_customer_current(shop):
    from lavka.core.dispatcher import drain
    from lavka.customers.actions import CustomerData, merge_customers
    from lavka.orders import actions
    from lavka.orders.actions import ItemData, OrderData

    actor = shop.actor(shop.alice)

    def new_order(**data):
        items = [ItemData(offer_id=shop.tea.pk, quantity=2)]
        return actions.create_order(
            shop.site, OrderData(items=items, manager=shop.alice, manager_set=True, **data), actor=actor
        )

    from lavka.customers.actions import create_customer

    lone = create_customer(shop.site, CustomerData(first_name="Lone", phones=["+79160009988"]), actor=actor)
    drain()
    got = CustomerMetrics.objects.get(pk=lone.pk)
    assert (got.orders_count, got.revenue, got.lifecycle, got.p_alive) == (0, 0, "", None)

    first = new_order(new_customer=CustomerData(first_name="Ann", phones=["+79160001122"]))
    drain()
    ann = first.customer
    got = CustomerMetrics.objects.get(pk=ann.pk)
    assert (got.orders_count, got.revenue, got.lifecycle) == (1, first.total_summ, "new")

    second = new_order(customer=ann)
    drain()
    assert CustomerMetrics.objects.get(pk=ann.pk).orders_count == 2

    actions.change_status(second, "cancel-other", actor=actor)
    drain()
    assert CustomerMetrics.objects.get(pk=ann.pk).orders_count == 1

    other = new_order(new_customer=CustomerData(first_name="Bob", phones=["+79160003344"]))
    drain()
    merge_customers(ann, [other.customer], actor=actor)
    drain()
    assert CustomerMetrics.objects.get(pk=ann.pk).orders_count == 2
    assert not CustomerMetrics.objects.filter(pk=other.customer_id).exists()


def test_an_update_that_changes_no_figure_leaves_the_customer_alone(shop):
    """A manager's comment or a new phone on the order moves no figure: the receivers skip the event
    (the row keeps its `updated_at`); a delivery cost does move the revenue."""
    from lavka.analytics.models import OrderFacts
    from lavka.core.dispatcher import drain
    from lavka.core.models import OutboxEvent, ReceiverDelivery
    from lavka.customers.actions import CustomerData
    from lavka.orders import actions
    from lavka.orders.actions import ItemData, OrderData

    actor = shop.actor(shop.alice)
    order = actions.create_order(
        shop.site,
        OrderData(
            items=[ItemData(offer_id=shop.tea.pk, quantity=2)],
            new_customer=CustomerData(first_name="Ann", phones=["+79160001122"]),
        ),
        actor=actor,
    )
    drain()
    before = CustomerMetrics.objects.get(pk=order.customer_id)
    facts_before = OrderFacts.objects.filter(customer_id=order.customer_id).values_list("cents", flat=True)
    facts_before = list(facts_before)
    actions.update_order(order, OrderData(manager_comment="call after 6", phone="+79160001133"), actor=actor)
    drain()
    assert CustomerMetrics.objects.get(pk=order.customer_id).updated_at == before.updated_at
    passive = OutboxEvent.objects.filter(type="orders.updated").latest("id")
    assert passive.processed_at is not None
    # Not run, so not recorded either: the dispatcher left them out.
    assert not ReceiverDelivery.objects.filter(
        event=passive,
        receiver__in=["analytics.refresh_metrics", "analytics.order_facts", "customers.refresh_stats"],
    ).exists()

    actions.update_order(order, OrderData(delivery_cost=Decimal("300")), actor=actor)
    drain()
    after = CustomerMetrics.objects.get(pk=order.customer_id)
    assert after.revenue == before.revenue + 300 and after.updated_at > before.updated_at
    assert Customer.objects.get(pk=order.customer_id).total_summ == after.revenue
    cents = list(OrderFacts.objects.filter(customer_id=order.customer_id).values_list("cents", flat=True))
    assert cents == [facts_before[0] + 30000]


def test_the_nightly_job_refreshes_each_site_once_a_day(shop, hand):
    from lavka.analytics import jobs
    from lavka.core.models import Job

    assert jobs.schedule_metrics_refresh() == 2  # both sites, never refreshed
    assert jobs.schedule_metrics_refresh() == 2  # the same keys: no second job
    queued = Job.objects.filter(name="lavka.analytics.jobs.refresh_site_metrics")
    assert sorted(job.args for job in queued) == sorted([[shop.site.pk], [shop.other_site.pk]])
    assert jobs.refresh_site_metrics(shop.site.pk) == 4
    assert jobs.refresh_site_metrics(shop.site.pk) == 0  # just refreshed: nothing to do
    assert jobs.refresh_site_metrics(10**9) == 0
    assert CustomerMetrics.objects.filter(site=shop.site).count() == 4
    assert jobs.schedule_metrics_refresh() == 1  # only the other site is still due


# --- The CLI ----------------------------------------------------------------------------------------------


def test_cli_refresh_and_export(shop, hand, tmp_path, capsys):
    import csv

    from lavka.cli import main

    assert main(["analytics", "refresh", "--site", "shop"]) == 0
    out, err = capsys.readouterr()
    assert "shop: 4 customers, 2 with orders; no model scores" in out
    for step in (*metrics.STEPS, "total"):
        assert f"  {step}" in out
    assert "6/6 write" in err  # the progress bar
    assert CustomerMetrics.objects.filter(site=shop.site).count() == 4

    target = tmp_path / "customers.csv"
    assert (
        main(["analytics", "export-customers", "--format", "csv", "--site", "shop", "--output", str(target)])
        == 0
    )
    with target.open(encoding="utf-8") as source:
        table = list(csv.DictReader(source))
    assert len(table) == 4 and list(table[0]) == list(metrics.EXPORT_COLUMNS)
    a = next(r for r in table if r["customer_id"] == str(hand["a"].pk))
    assert (a["orders_count"], a["revenue"], a["rfm_segment"], a["lifecycle"], a["site"]) == (
        "3",
        "1900.00",
        "at_risk",
        "repeat",
        "shop",
    )
    assert a["p_alive"] == "" and len(a["favourite_categories"].split()) == 3

    assert main(["analytics", "export-customers"]) == 0  # every site, to stdout
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 4
    assert main(["analytics", "refresh", "--site", "nope"]) == 2
    assert "unknown site 'nope'" in capsys.readouterr().err
