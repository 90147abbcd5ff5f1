"""Order facts and their cells (lavka.analytics.facts), kept from order and customer events, caught up
after imports, and always equal to what a full rebuild makes of the same orders."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from lavka.analytics import facts, receivers, shop_kpi
from lavka.analytics.kpi import Period
from lavka.analytics.models import FactsCell, FactsState, OrderFacts, SiteAnalytics
from lavka.analytics.tests.test_shop_kpi import at, customer, order
from lavka.core.actor import Actor, Source
from lavka.core.dispatcher import drain
from lavka.core.models import OutboxEvent
from lavka.customers.actions import CustomerData, merge_customers, update_customer
from lavka.orders import actions
from lavka.orders.actions import ItemData, OrderData
from lavka.orders.models import Order

INTEGRATION = Actor(Source.API, ref="1", name="shop integration")


def state() -> tuple[list[tuple], list[tuple]]:
    """Every fact row and every cell that is not all zero (a cell whose orders all left keeps a row of
    zeros until the next rebuild), in a comparable form."""
    found = [
        tuple(str(v) for v in row)
        for row in OrderFacts.objects.order_by("order_id").values_list(*(f.attname for f in FACT_FIELDS))
    ]
    cells = [
        tuple(str(v) for v in row)
        for row in FactsCell.objects.exclude(n=0, amount=0, extra=0)
        .order_by("site_id", "kind", "day", "key", "label")
        .values_list("site_id", "kind", "day", "key", "label", "n", "amount", "extra")
    ]
    return found, cells


FACT_FIELDS = OrderFacts._meta.concrete_fields


def assert_same_as_a_rebuild() -> tuple[list[tuple], list[tuple]]:
    kept = state()
    facts.rebuild()
    assert kept == state()
    return kept


def facts_of(order: Order) -> OrderFacts:
    return OrderFacts.objects.get(order_id=order.pk)


@pytest.fixture
def desk(shop):
    actor = shop.actor(shop.alice)

    def new_order(who=None, amount: str = "100", **data) -> Order:
        items = [ItemData(offer_id=shop.tea.pk, initial_price=Decimal(amount))]
        made = actions.create_order(
            shop.site,
            OrderData(
                customer=who,
                new_customer=None if who else CustomerData(first_name="New", phones=[_phone()]),
                items=items,
                manager=shop.alice,
                manager_set=True,
                **data,
            ),
            actor=actor,
        )
        drain()
        return made

    return shop, actor, new_order


_phones = iter(range(10_000, 99_999))


def _phone() -> str:
    return f"+7916{next(_phones):07d}"


def test_order_events_keep_the_facts_as_a_rebuild_makes_them(desk):
    shop, actor, new_order = desk
    first = new_order(amount="300")
    ann = first.customer
    got = facts_of(first)
    assert (got.rank, got.counted, got.cents, got.prev_day, got.source) == (1, True, 30000, None, "")
    assert (got.customer_cents, got.next_month) == (30000, facts.NEVER_MONTH)
    assert_same_as_a_rebuild()

    second = new_order(ann, amount="200")
    got = facts_of(second)
    assert (got.rank, got.prev_day, got.prev_cents) == (2, facts_of(first).day, 30000)
    assert facts_of(first).customer_cents == 50000  # revenue to date, on the first order
    assert not got.month_first and facts_of(first).month_first
    assert_same_as_a_rebuild()

    # Cancelled: the second order no longer counts, and the first is the last again.
    actions.change_status(second, "cancel-other", actor=actor)
    drain()
    got = facts_of(second)
    assert (got.counted, got.rank, got.prev_day) == (False, 0, None)
    assert (facts_of(first).next_month, facts_of(first).customer_cents) == (facts.NEVER_MONTH, 30000)
    assert_same_as_a_rebuild()

    # Complete (as a shop's integration reports it, past the transition matrix): delivered, with the
    # time from the order to the status.
    actions.change_status(first, "complete", actor=INTEGRATION)
    drain()
    got = facts_of(first)
    first.refresh_from_db()
    assert got.complete and got.delivery_us == (
        first.status_updated_at - first.created_at
    ) // datetime.timedelta(microseconds=1)
    assert_same_as_a_rebuild()

    # A complaint reason makes a complaint, whatever the status.
    actions.change_status(first, "complaint", actor=INTEGRATION, complaint_reason="defect")
    drain()
    assert facts_of(first).complaint and not facts_of(first).complete
    assert_same_as_a_rebuild()


def test_orders_moving_between_customers(desk):
    shop, actor, new_order = desk
    one = new_order(amount="100")
    ann = one.customer
    two = new_order(ann, amount="200")
    other = new_order(amount="400")
    bob = other.customer

    # An order moved to another customer: both customers' facts change.
    actions.update_order(two, OrderData(customer=bob), actor=actor)
    drain()
    # Ann's second order is older than Bob's one: it becomes Bob's first.
    assert (facts_of(two).customer_id, facts_of(two).rank, facts_of(other).rank) == (bob.pk, 1, 2)
    assert facts_of(one).customer_cents == 10000 and facts_of(one).next_month == facts.NEVER_MONTH
    assert_same_as_a_rebuild()

    # Merged: Bob's orders are Ann's now, ranked among hers; Bob keeps no facts.
    merge_customers(ann, [bob], actor=actor)
    drain()
    assert sorted(OrderFacts.objects.filter(customer=ann).values_list("rank", flat=True)) == [1, 2, 3]
    assert not OrderFacts.objects.filter(customer=bob).exists()
    assert facts_of(one).customer_cents == 70000
    assert_same_as_a_rebuild()

    # Merged orders: the source is cancelled.
    actions.merge_orders(one, other, actor=actor)
    drain()
    assert not facts_of(other).counted
    assert_same_as_a_rebuild()


def test_the_acquisition_source_follows_the_customer(desk):
    shop, actor, new_order = desk
    first = new_order(source="yandex")
    assert facts_of(first).source == "yandex"  # the customer names none: the first order's
    update_customer(first.customer, CustomerData(source="vk"), actor=actor)
    drain()
    assert facts_of(first).source == "vk"
    assert_same_as_a_rebuild()


def test_a_redelivered_event_changes_nothing(desk):
    shop, actor, new_order = desk
    made = new_order()
    new_order(made.customer)
    before = state()
    for event in OutboxEvent.objects.filter(type__startswith="orders.").order_by("id"):
        receivers.refresh_order_facts(event)
    assert state() == before


def test_imported_orders_get_their_facts_when_read_or_at_the_next_event(desk):
    shop, actor, new_order = desk
    ann = customer(shop, "Ann")
    order(shop, ann, at(3, 5), "1000")
    order(shop, ann, at(3, 20), "500")
    assert not OrderFacts.objects.exists()  # the import emits no events

    # The next event, for another customer, catches up with them first.
    new_order()
    assert OrderFacts.objects.filter(customer=ann).count() == 2
    assert_same_as_a_rebuild()

    # Or the next read of the KPIs.
    order(shop, ann, at(4, 1), "250")
    (april,) = shop_kpi.period_figures(
        [shop.site.pk], [Period(datetime.date(2024, 4, 1), datetime.date(2024, 4, 30))]
    )
    assert (april.orders, april.revenue, april.repeat_buyers) == (1, Decimal("250.00"), 1)
    assert_same_as_a_rebuild()


def test_many_imported_orders_are_caught_up_by_a_rebuild(shop, monkeypatch):
    monkeypatch.setattr(facts, "CATCH_UP_ORDERS", 1)
    ann = customer(shop, "Ann")
    order(shop, ann, at(3, 5), "1000")
    order(shop, ann, at(3, 20), "500")
    facts.sync()
    assert OrderFacts.objects.count() == 2 and FactsState.objects.get().rebuilt_at is not None
    assert_same_as_a_rebuild()


def test_days_are_in_the_installation_time_zone_and_follow_it(shop, settings):
    ann = customer(shop, "Ann")
    # 1 April 01:30 in Moscow is 31 March 22:30 UTC.
    order(shop, ann, timezone.make_aware(datetime.datetime(2024, 4, 1, 1, 30)), "100")
    facts.sync()
    assert OrderFacts.objects.get().day == datetime.date(2024, 4, 1)
    settings.TIME_ZONE = "UTC"
    facts.sync()  # the facts' days are in another zone: rebuilt
    assert OrderFacts.objects.get().day == datetime.date(2024, 3, 31)
    assert FactsState.objects.get().zone == "UTC"


def test_churn_with_a_window_shorter_than_the_month(shop):
    # W = 20 days. March: s = 1 Mar, e = 1 Apr; s − W = 10 Feb (2024 is a leap year), e − W = 12 Mar.
    SiteAnalytics.objects.create(site=shop.site, churned_days=20)
    a, b, c, d = (customer(shop, name) for name in "ABCD")
    order(shop, a, at(2, 20), "100")  # active at 1 Mar; its last order before 1 Apr (5 Mar) is too old
    order(shop, a, at(3, 5), "100")
    order(shop, b, at(1, 1), "100")  # not active at 1 Mar (nothing since 10 Feb): not counted at all,
    order(shop, b, at(3, 3), "100")  # though it orders twice in March and nothing after 12 Mar
    order(shop, b, at(3, 5), "100")
    order(shop, c, at(2, 25), "100")  # active at both ends (20 Mar ≥ 12 Mar)
    order(shop, c, at(3, 20), "100")
    order(shop, d, at(2, 15), "100")  # active at 1 Mar, nothing since: churned
    march = Period(datetime.date(2024, 3, 1), datetime.date(2024, 3, 31))
    (churn,) = shop_kpi.churn_by_month([shop.site.pk], [march], now=at(6, 1))
    assert (churn.active, churn.churned) == (3, 2)  # A, C, D; A and D


def test_cli_rebuild_facts(shop, capsys):
    from lavka.cli import main

    ann = customer(shop, "Ann")
    order(shop, ann, at(3, 5), "1000")
    assert main(["analytics", "rebuild-facts"]) == 0
    out = capsys.readouterr().out
    assert "order facts: 1 orders" in out
    assert OrderFacts.objects.count() == 1
