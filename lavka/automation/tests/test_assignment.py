"""How work finds a manager (issue 4, item 7, and its acceptance): round robin over working managers,
nothing for the absent or those off duty, oldest first when capacity frees up, sticky customers, least
loaded, no turn given twice under concurrency, and a person's choice never undone."""

from __future__ import annotations

import datetime
import threading
import time
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from lavka.accounts.actions import create_user, save_team, set_presence
from lavka.accounts.models import User
from lavka.automation import assignment, assignment_receivers
from lavka.automation.models import AssignmentRule
from lavka.core import dispatcher, jobs
from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.actions import CustomerData, create_customer, update_customer
from lavka.orders import actions as order_actions
from lavka.orders.actions import ItemData, OrderData
from lavka.orders.bulk import OrderRow, import_orders
from lavka.orders.models import Order
from lavka.tasks.actions import TaskData, create_task

SYSTEM = Actor.system("tests")
IMPORTER = Actor.importer("tests")
START = timezone.now() - datetime.timedelta(days=1)
# A Monday: 10:00 in Moscow (the test site's time zone) is 07:00 UTC.
MONDAY_10_MSK = datetime.datetime(2030, 1, 7, 7, 0, tzinfo=datetime.UTC)
OFFICE_HOURS = {day: ["09:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def manager(shop, username: str, **fields) -> User:
    user = create_user(
        username, role="manager", password="x", actor=SYSTEM, site_codes=["shop"], check_password=False
    )
    if fields:
        User.objects.filter(pk=user.pk).update(**fields)
        user.refresh_from_db()
    return user


def rule(strategy: str = "round_robin", users=(), **fields) -> AssignmentRule:
    made = AssignmentRule.objects.create(name=f"{strategy} rule", strategy=strategy, **fields)
    made.users.set(users)
    return made


def customer(shop, name: str = "Анна", **fields):
    return create_customer(shop.site, CustomerData(first_name=name, **fields), actor=SYSTEM)


def import_unassigned(shop, count: int, buyer=None, start: datetime.datetime = START) -> list[int]:
    """`count` unassigned new orders, a minute apart (the first is the oldest), in one bulk import."""
    buyer = buyer or customer(shop)
    rows = [
        OrderRow(
            customer_id=buyer.pk,
            items=[ItemData(offer_id=shop.tea.pk)],
            created_at=start + datetime.timedelta(minutes=n),
        )
        for n in range(count)
    ]
    result = import_orders(shop.site, rows, actor=IMPORTER)
    assert result.created == count, result.errors
    return result.ids


def new_order(shop, buyer=None, actor: Actor = SYSTEM, **fields) -> Order:
    data = OrderData(customer=buyer or customer(shop), items=[ItemData(offer_id=shop.tea.pk)], **fields)
    return order_actions.create_order(shop.site, data, actor=actor)


def holders(ids) -> list[int | None]:
    by_id = dict(Order.objects.filter(pk__in=ids).values_list("pk", "manager_id"))
    return [by_id[pk] for pk in ids]


def pump() -> None:
    """Run the outbox through the receivers, as the worker does."""
    dispatcher.drain("tests")


# --- the acceptance ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [60, pytest.param(600, marks=pytest.mark.slow)])
def test_round_robin_spreads_600_orders_over_6_working_managers(shop, count):
    working = [manager(shop, f"m{n}") for n in range(6)]
    absent = manager(shop, "away", presence=User.Presence.ABSENT)
    busy = manager(shop, "busy", presence=User.Presence.BUSY)
    off_duty = manager(shop, "night", working_hours={"sun": ["00:00", "00:01"]})
    rule("round_robin", users=[*working, absent, busy, off_duty], is_default=True)
    ids = import_unassigned(shop, count)

    now = MONDAY_10_MSK.replace(hour=12)  # Monday 15:00 in Moscow: the night manager is off
    assert assignment.fill_queue(actor=SYSTEM, now=now) == count

    got = Counter(holders(ids))
    assert set(got) == {u.pk for u in working}
    assert max(got.values()) - min(got.values()) <= 1
    # In turn, strictly: the oldest order went to the first manager, the next to the second …
    assert holders(ids[:12]) == [u.pk for u in working] * 2


def test_absent_and_busy_managers_get_nothing(shop):
    rule("round_robin", users=[shop.alice, shop.bob], is_default=True)
    set_presence(shop.alice, User.Presence.ABSENT, actor=SYSTEM)
    set_presence(shop.bob, User.Presence.BUSY, actor=SYSTEM)
    ids = import_unassigned(shop, 3)
    assert assignment.fill_queue(actor=SYSTEM) == 0
    assert holders(ids) == [None, None, None]

    set_presence(shop.bob, User.Presence.WORKING, actor=SYSTEM)
    assert assignment.fill_queue(actor=SYSTEM) == 3
    assert holders(ids) == [shop.bob.pk] * 3


def test_outside_working_hours_gets_nothing_in_the_sites_time_zone(shop):
    User.objects.filter(pk__in=[shop.alice.pk, shop.bob.pk]).update(working_hours=OFFICE_HOURS)
    rule("round_robin", users=[shop.alice, shop.bob], is_default=True)
    ids = import_unassigned(shop, 2)
    evening = MONDAY_10_MSK.replace(hour=15)  # 18:00 in Moscow: the day has just ended
    sunday = MONDAY_10_MSK - datetime.timedelta(days=1)  # a day not listed is a day off
    early = MONDAY_10_MSK.replace(hour=5, minute=59)  # 08:59 in Moscow, already 05:59 in UTC
    for moment in (evening, sunday, early):
        assert assignment.fill_queue(actor=SYSTEM, now=moment) == 0
    assert holders(ids) == [None, None]
    # The minute job at the start of the day hands the waiting work out.
    assert assignment.fill_queue(actor=SYSTEM, now=MONDAY_10_MSK.replace(hour=6)) == 2
    assert sorted(holders(ids)) == sorted([shop.alice.pk, shop.bob.pk])


def test_working_hours_rules():
    class FakeSite:
        time_zone = "Asia/Vladivostok"  # UTC+10

    site = FakeSite()
    hours = {"mon": ["09:00", "18:00"]}
    assert assignment.within_working_hours({}, site, MONDAY_10_MSK)  # no hours: always on duty
    assert assignment.within_working_hours(hours, site, MONDAY_10_MSK)  # 17:00 in Vladivostok
    assert not assignment.within_working_hours(hours, site, MONDAY_10_MSK.replace(hour=8))  # 18:00
    assert not assignment.within_working_hours({"mon": "bad"}, site, MONDAY_10_MSK)


def test_oldest_first_when_a_manager_frees_up(shop):
    rule("round_robin", users=[shop.alice, shop.bob], is_default=True, max_open=1)
    first, second, third, fourth = import_unassigned(shop, 4)
    assert assignment.fill_queue(actor=SYSTEM) == 2
    assert holders([first, second, third, fourth]) == [shop.alice.pk, shop.bob.pk, None, None]

    # Bob's order is cancelled: his seat goes to the oldest waiting order, not the newest.
    order_actions.change_status(Order.objects.get(pk=second), "cancel-other", actor=shop.actor(shop.bob))
    pump()
    assert holders([third, fourth]) == [shop.bob.pk, None]

    order_actions.change_status(Order.objects.get(pk=first), "no-call", actor=shop.actor(shop.alice))
    pump()
    assert holders([fourth]) == [shop.alice.pk]


def test_a_manager_who_starts_working_takes_the_waiting_orders(shop):
    set_presence(shop.alice, User.Presence.ABSENT, actor=SYSTEM)
    set_presence(shop.bob, User.Presence.ABSENT, actor=SYSTEM)
    rule("round_robin", users=[shop.alice, shop.bob], is_default=True, max_open=2)
    ids = import_unassigned(shop, 3)
    pump()
    set_presence(shop.bob, User.Presence.WORKING, actor=SYSTEM)
    pump()
    assert holders(ids) == [shop.bob.pk, shop.bob.pk, None]


def test_sticky_keeps_a_returning_customer_with_their_manager(shop):
    carol = manager(shop, "carol")
    rule("sticky", users=[shop.alice, shop.bob, carol], is_default=True)
    regular = customer(shop, "Постоянная")
    first = new_order(shop, regular)
    assert assignment.assign_order(first, actor=SYSTEM) == shop.alice
    # Others come and go in turn …
    assert assignment.assign_order(new_order(shop), actor=SYSTEM) == shop.bob
    # … but the returning customer comes back to Alice, and the turn stays with Carol.
    assert assignment.assign_order(new_order(shop, regular), actor=SYSTEM) == shop.alice
    assert assignment.assign_order(new_order(shop), actor=SYSTEM) == carol

    # Alice is away: the customer is served in turn meanwhile.
    set_presence(shop.alice, User.Presence.ABSENT, actor=SYSTEM)
    assert assignment.assign_order(new_order(shop, regular), actor=SYSTEM) == shop.bob
    # The customer's responsible manager comes before the last order's.
    update_customer(regular, CustomerData(manager=carol, manager_set=True), actor=SYSTEM)
    assert assignment.assign_order(new_order(shop, regular), actor=SYSTEM) == carol


def test_least_loaded_counts_open_orders_and_tasks(shop):
    carol = manager(shop, "carol")
    least = rule("least_loaded", users=[shop.alice, shop.bob, carol])
    buyer = customer(shop)
    for holder, count in ((shop.alice, 2), (carol, 1)):
        for _ in range(count):
            new_order(shop, buyer, manager=holder, manager_set=True)
    closed = new_order(shop, buyer, manager=shop.bob, manager_set=True)
    order_actions.change_status(closed, "cancel-other", actor=SYSTEM)  # a closed order is no load
    for _ in range(3):
        create_task(TaskData(text="Позвонить", performer=shop.bob), actor=SYSTEM, site=shop.site)
    # Alice 2, Bob 3 (tasks), Carol 1.
    assert assignment.assign_order(new_order(shop, buyer), actor=SYSTEM, rule=least) == carol
    # Now Alice 2, Carol 2, Bob 3: a tie goes in turn, after Carol, i.e. round to Alice.
    assert assignment.assign_order(new_order(shop, buyer), actor=SYSTEM, rule=least) == shop.alice
    assert assignment.assign_order(new_order(shop, buyer), actor=SYSTEM, rule=least) == carol


def test_manual_reassignment_is_not_undone(shop):
    carol = manager(shop, "carol")
    rule("round_robin", users=[shop.alice, shop.bob, carol], is_default=True)
    order = new_order(shop)
    assert assignment.assign_order(order, actor=SYSTEM) == shop.alice
    # The supervisor gives it to Bob by hand; the history says who did it.
    order_actions.assign_manager(order, shop.bob, actor=shop.actor(shop.supervisor))
    record = HistoryRecord.objects.filter(entity="order", entity_id=order.pk, field="manager").last()
    assert (record.source, record.user_id, record.new_value) == (
        "user",
        shop.supervisor.pk,
        {"id": shop.bob.pk},
    )

    # Neither the rule, nor the queue, nor Bob's absence moves it.
    assert assignment.assign_order(order, actor=SYSTEM) == shop.bob
    set_presence(shop.bob, User.Presence.ABSENT, actor=SYSTEM)
    pump()
    assignment.fill_queue(actor=SYSTEM)
    order.refresh_from_db()
    assert order.manager == shop.bob
    # An order created with a manager chosen by a person is theirs as much.
    chosen = new_order(shop, manager=shop.bob, manager_set=True, actor=shop.actor(shop.supervisor))
    assert assignment.untouched_orders(shop.bob) == []
    assert holders([chosen.pk]) == [shop.bob.pk]


def test_an_absent_managers_new_untouched_work_returns_to_the_queue(shop):
    rule("round_robin", users=[shop.alice, shop.bob], is_default=True)
    set_presence(shop.bob, User.Presence.ABSENT, actor=SYSTEM)
    untouched, commented, moved = (new_order(shop) for _ in range(3))
    for order in (untouched, commented, moved):
        assert assignment.assign_order(order, actor=SYSTEM) == shop.alice
    alice = shop.actor(shop.alice)
    order_actions.update_order(commented, OrderData(manager_comment="перезвоню"), actor=alice)
    order_actions.change_status(moved, "client-confirmed", actor=alice)  # no longer "new"
    by_hand = new_order(shop, manager=shop.alice, manager_set=True, actor=shop.actor(shop.supervisor))
    assert assignment.untouched_orders(shop.alice) == [untouched.pk]
    set_presence(shop.bob, User.Presence.WORKING, actor=SYSTEM)
    pump()

    set_presence(shop.alice, User.Presence.ABSENT, actor=SYSTEM)
    pump()
    ids = [untouched.pk, commented.pk, moved.pk, by_hand.pk]
    assert holders(ids) == [shop.bob.pk, shop.alice.pk, shop.alice.pk, shop.alice.pk]
    trail = HistoryRecord.objects.filter(entity="order", entity_id=untouched.pk, field="manager")
    assert [(r.source, r.old_value, r.new_value) for r in trail] == [
        ("system", None, {"id": shop.alice.pk}),
        ("system", {"id": shop.alice.pk}, None),
        ("system", None, {"id": shop.bob.pk}),
    ]


def test_released_work_waits_when_nobody_else_is_working(shop):
    rule("round_robin", users=[shop.alice], is_default=True)
    order = new_order(shop)
    assignment.assign_order(order, actor=SYSTEM)
    assert assignment.release_untouched(shop.alice, actor=SYSTEM) == [order.pk]
    order.refresh_from_db()
    assert order.manager is None  # back in the queue; Alice (still working here) may take it again
    assert assignment.fill_queue(actor=SYSTEM) == 1


# --- rules, pools and the edges ---------------------------------------------------------------------------


def test_the_first_matching_rule_by_position_else_the_default(shop):
    carol = manager(shop, "carol")
    default = rule("round_robin", users=[carol], is_default=True, position=1)
    phone = rule("round_robin", users=[shop.bob], order_methods=["phone"], position=20)
    legal = rule("round_robin", users=[shop.alice], order_types=["eshop-legal"], position=10)
    other_site = rule("round_robin", users=[shop.alice], position=5)
    other_site.sites.set([shop.other_site])
    rule("round_robin", users=[shop.alice], position=0, is_active=False)

    by_phone = new_order(shop, order_method="phone")
    legal_by_phone = new_order(shop, order_method="phone", order_type="eshop-legal")
    plain = new_order(shop, order_method="shopping-cart")
    assert assignment.rule_for(by_phone) == phone
    assert assignment.rule_for(legal_by_phone) == legal
    assert assignment.rule_for(plain) == default
    assert assignment.assign_order(legal_by_phone, actor=SYSTEM) == shop.alice
    assert assignment.assign_order(plain, actor=SYSTEM) == carol


def test_without_a_rule_nobody_is_chosen(shop):
    order = new_order(shop)
    assert assignment.choose_manager(order) is None
    assert assignment.fill_queue(actor=SYSTEM) == 0
    AssignmentRule.objects.create(name="off", strategy="round_robin", is_default=True, is_active=False)
    assert assignment.assign_order(order, actor=SYSTEM) is None


def test_pools_team_else_users_else_the_sites_managers(shop):
    team = save_team(None, name="Продажи", supervisor=shop.supervisor, actor=SYSTEM)
    stranger = manager(shop, "stranger")
    User.objects.filter(pk__in=[shop.bob.pk, shop.outsider.pk, stranger.pk]).update(team=team)
    stranger.sites.clear()  # in the team, but not on the site: may not be responsible there
    by_team = rule("round_robin", users=[shop.alice], team=team)
    by_users = rule("round_robin", users=[shop.alice, shop.operator])
    by_site = rule("round_robin")
    assert assignment.pool(by_team, shop.site) == [shop.bob]
    assert assignment.pool(by_users, shop.site) == [shop.alice, shop.operator]
    # The site's managers: not the operator or the supervisor, not the other site's manager.
    assert assignment.pool(by_site, shop.site) == [shop.alice, shop.bob]
    User.objects.filter(pk=shop.alice.pk).update(is_active=False)
    assert assignment.pool(by_site, shop.site) == [shop.bob]


def test_an_assigned_or_closed_order_is_left_alone(shop):
    rule("round_robin", users=[shop.alice, shop.bob], is_default=True)
    taken = new_order(shop, manager=shop.bob, manager_set=True)
    assert assignment.assign_order(taken, actor=SYSTEM) == shop.bob
    closed = new_order(shop)
    order_actions.change_status(closed, "cancel-other", actor=SYSTEM)
    assert assignment.assign_order(closed, actor=SYSTEM) is None
    closed.refresh_from_db()
    assert closed.manager is None
    assert AssignmentRule.objects.get().last_user is None  # no turn was spent


def test_capacity_counts_open_orders_only(shop):
    rule("round_robin", users=[shop.alice], is_default=True, max_open=1)
    first = new_order(shop)
    assert assignment.assign_order(first, actor=SYSTEM) == shop.alice
    assert assignment.assign_order(new_order(shop), actor=SYSTEM) is None
    order_actions.change_status(first, "no-call", actor=SYSTEM)
    assert assignment.assign_order(new_order(shop), actor=SYSTEM) == shop.alice


def test_a_refused_order_does_not_stop_the_queue(shop, monkeypatch):
    rule("round_robin", users=[shop.alice], is_default=True)
    ids = import_unassigned(shop, 3)
    real = order_actions.assign_manager

    def refuse_the_first(order, manager, *, actor):
        if order.pk == ids[0]:
            raise ValidationError({"manager": "no"})
        return real(order, manager, actor=actor)

    monkeypatch.setattr(order_actions, "assign_manager", refuse_the_first)
    assert assignment.fill_queue(actor=SYSTEM) == 2
    assert holders(ids) == [None, shop.alice.pk, shop.alice.pk]


def test_fill_queue_stops_at_the_limit_oldest_first(shop):
    rule("round_robin", users=[shop.alice], is_default=True)
    ids = import_unassigned(shop, 5)
    assert assignment.fill_queue(actor=SYSTEM, limit=2) == 2
    assert holders(ids) == [shop.alice.pk] * 2 + [None] * 3


def test_orders_nobody_can_take_do_not_hold_up_the_others(shop):
    on_other = rule("round_robin", users=[shop.outsider], position=1)
    on_other.sites.set([shop.other_site])
    rule("round_robin", users=[shop.alice], is_default=True)
    set_presence(shop.outsider, User.Presence.ABSENT, actor=SYSTEM)
    foreign_buyer = create_customer(shop.other_site, CustomerData(first_name="Отто"), actor=SYSTEM)
    rows = [OrderRow(customer_id=foreign_buyer.pk, items=[ItemData(offer_id=shop.foreign_offer.pk)])]
    waiting = import_orders(shop.other_site, rows * 3, actor=IMPORTER).ids  # the oldest
    ids = import_unassigned(shop, 2, start=timezone.now())
    assert assignment.fill_queue(actor=SYSTEM) == 2
    assert holders(ids) == [shop.alice.pk] * 2 and holders(waiting) == [None] * 3


def test_an_empty_queue_costs_two_queries(shop, django_assert_num_queries):
    rule("round_robin", users=[shop.alice], is_default=True)
    new_order(shop, manager=shop.alice, manager_set=True)
    with django_assert_num_queries(2):  # the open statuses, the queue
        assert assignment.fill_queue(actor=SYSTEM) == 0


# --- the presence event, the receivers and the minute job ------------------------------------------------


def test_set_presence_emits_an_event_on_a_real_change(shop):
    set_presence(shop.alice, User.Presence.ABSENT, actor=shop.actor(shop.alice))
    set_presence(shop.alice, User.Presence.ABSENT, actor=shop.actor(shop.alice))
    events = OutboxEvent.objects.filter(type="accounts.presence_changed")
    assert [e.payload for e in events] == [
        {"user_id": shop.alice.pk, "old_presence": "working", "new_presence": "absent"}
    ]
    assert events.get().actor["user_id"] == shop.alice.pk
    with pytest.raises(ValueError, match="unknown presence"):
        set_presence(shop.alice, "asleep", actor=SYSTEM)


def test_the_minute_job_is_registered_and_fills_the_queue(shop):
    assert jobs.periodic_jobs["lavka.automation.assignment_receivers.fill_assignment_queue"][0] == 60
    rule("round_robin", users=[shop.alice], is_default=True)
    ids = import_unassigned(shop, 2)
    assert assignment_receivers.fill_assignment_queue() == 2
    assert holders(ids) == [shop.alice.pk] * 2


def test_a_handed_over_order_frees_a_seat(shop):
    rule("round_robin", users=[shop.alice], is_default=True, max_open=1)
    first, second = import_unassigned(shop, 2)
    assignment.fill_queue(actor=SYSTEM)
    order_actions.assign_manager(Order.objects.get(pk=first), shop.bob, actor=shop.actor(shop.supervisor))
    pump()
    assert holders([first, second]) == [shop.bob.pk, shop.alice.pk]


# --- concurrency (PostgreSQL) -----------------------------------------------------------------------------


@pytest.mark.slow  # 2–4 s
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_assignments_never_give_the_same_turn_twice(shop):
    people = [shop.alice, shop.bob, *(manager(shop, f"m{n}") for n in range(4))]
    rule("round_robin", users=people, is_default=True)
    ids = import_unassigned(shop, 60)
    halves = [ids[0::2], ids[1::2]]
    barrier = threading.Barrier(2)
    failures = []

    def work(mine: list[int]) -> None:
        try:
            barrier.wait()
            for pk in mine:
                assert assignment.assign_order(Order(pk=pk), actor=SYSTEM) is not None
                time.sleep(0)  # let the other thread in between turns
        except Exception as exc:  # shown below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    # History ids follow the commit order, and a turn is taken under the rule's lock: the managers
    # given orders, in that order, must go round exactly, with no one twice in a row or skipped.
    given = [
        r.new_value["id"]
        for r in HistoryRecord.objects.filter(entity="order", field="manager", entity_id__in=ids)
        .exclude(new_value=None)
        .order_by("id")
    ]
    assert given == [u.pk for u in people] * 10
    assert Counter(holders(ids)) == {u.pk: 10 for u in people}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_rule_lock_alone_keeps_concurrent_turns_apart(shop):
    """Choices that nothing else serialises (no order lock held): the rule's row decides the turns."""
    people = [shop.alice, shop.bob, manager(shop, "carol")]
    made = rule("round_robin", users=people, is_default=True)
    probe = new_order(shop)
    barrier = threading.Barrier(2)
    chosen, failures = [], []

    def choose() -> None:
        try:
            barrier.wait()
            for _ in range(6):
                with transaction.atomic():
                    chosen.append(assignment.choose_manager(probe, made).pk)
                    time.sleep(0.01)  # hold the turn a moment, as an assignment would
        except Exception as exc:  # shown below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=choose) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert chosen == [u.pk for u in people] * 4
