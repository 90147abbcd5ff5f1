"""Manager KPIs: figures on a hand-built month of work, the page, the drill-down, the CSV, permissions
and a query count that does not grow with the number of managers.

Times are set by patching `django.utils.timezone.now` while the actions run (history is append-only,
so records are never back-dated afterwards); every expected number below is worked out by hand.
"""

from __future__ import annotations

import csv
import datetime
import io
from contextlib import contextmanager

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lavka.accounts.actions import create_user
from lavka.analytics import kpi
from lavka.core.actor import Actor
from lavka.core.testing import PASSWORD
from lavka.customers.actions import CustomerData
from lavka.orders.actions import ItemData, OrderData, assign_manager, change_status, create_order
from lavka.tasks.actions import TaskData, cancel_task, complete_task, create_task, escalate

SYSTEM = Actor.system("tests")
MARCH = kpi.Period(datetime.date(2024, 3, 1), datetime.date(2024, 3, 31))


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime.datetime:
    """A wall-clock time in the installation's zone (Europe/Moscow in the test settings)."""
    naive = datetime.datetime(2024, month, day, hour, minute)
    return timezone.make_aware(naive, timezone.get_default_timezone())


@contextmanager
def clock(moment: datetime.datetime):
    from unittest import mock

    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def order(shop, when, *, site=None, manager=None, actor=SYSTEM, phone="+79160001122"):
    site = site or shop.site
    offer = shop.tea if site == shop.site else shop.foreign_offer
    data = OrderData(
        new_customer=CustomerData(first_name="Анна", phones=[phone]),
        items=[ItemData(offer_id=offer.pk)],
        manager=manager,
        manager_set=manager is not None,
    )
    with clock(when):
        return create_order(site, data, actor=actor)


def assign(o, manager, when, by):
    with clock(when):
        return assign_manager(o, manager, actor=Actor.for_user(by))


def move(o, status, when, by):
    with clock(when):
        return change_status(o, status, actor=Actor.for_user(by))


def task(shop, performer, *, due=None, created=None, text="Перезвонить"):
    data = TaskData(text=text, performer=performer, due_at=due, due_at_set=due is not None)
    with clock(created or at(2, 20)):
        return create_task(data, actor=SYSTEM, site=shop.site)


def done(t, when, *, cancel=False):
    with clock(when):
        return (cancel_task if cancel else complete_task)(t, actor=SYSTEM)


@pytest.fixture
def month(shop):
    """A month of work for alice and bob (shop) and otto (other site). See each figure's test."""
    sv, alice, bob, otto = shop.supervisor, shop.alice, shop.bob, shop.outsider
    o = {}
    # o1: assigned to alice, she acts 30 min later, completes next day.
    o[1] = order(shop, at(3, 2, 10), phone="+79160000001")
    assign(o[1], alice, at(3, 2, 10), sv)
    move(o[1], "send-to-assembling", at(3, 2, 10, 30), alice)
    move(o[1], "complete", at(3, 3, 12), alice)
    # o2: bob, acts after 2 h by cancelling it.
    o[2] = order(shop, at(3, 5, 9), phone="+79160000002")
    assign(o[2], bob, at(3, 5, 9), sv)
    move(o[2], "no-call", at(3, 5, 11), bob)
    # o3: alice acts after 1.5 h, then the order goes to bob, who completes it a day later.
    o[3] = order(shop, at(3, 10, 8), phone="+79160000003")
    assign(o[3], alice, at(3, 10, 8), sv)
    move(o[3], "send-to-assembling", at(3, 10, 9, 30), alice)
    assign(o[3], bob, at(3, 11, 10), sv)
    move(o[3], "complete", at(3, 12, 10), bob)
    # o4: assigned and worked in February; the supervisor cancels it at 00:30 on 1 March (Moscow),
    # which is still 28 February in UTC: it counts in March, for alice, who was responsible.
    o[4] = order(shop, at(2, 27, 12), phone="+79160000004")
    assign(o[4], alice, at(2, 27, 12), sv)
    move(o[4], "send-to-assembling", at(2, 27, 12, 5), alice)
    move(o[4], "cancel-other", at(3, 1, 0, 30), sv)
    # o5: assigned to alice, never touched: handled, but not in the median.
    o[5] = order(shop, at(3, 20, 9), phone="+79160000005")
    assign(o[5], alice, at(3, 20, 9), sv)
    # o6: assigned to bob ten minutes into April: not March.
    o[6] = order(shop, at(3, 31, 23), phone="+79160000006")
    assign(o[6], bob, at(4, 1, 0, 10), sv)
    # o7: alice creates it with herself as manager: handled; writing the order is not an action.
    o[7] = order(shop, at(3, 15, 9), manager=alice, actor=Actor.for_user(alice), phone="+79160000007")
    # o8: otto, on the other site: admins see him, the shop's supervisor does not.
    o[8] = order(shop, at(3, 6, 9), site=shop.other_site, phone="+79160000008")
    assign(o[8], otto, at(3, 6, 9), shop.admin)
    move(o[8], "send-to-assembling", at(3, 6, 9, 1), otto)
    move(o[8], "complete", at(3, 6, 10), otto)

    t = {}
    t[1] = task(shop, alice, due=at(3, 5, 18))
    done(t[1], at(3, 5, 17))  # on time
    t[2] = task(shop, alice, due=at(3, 6, 18))
    done(t[2], at(3, 7, 10))  # late: overdue
    t[3] = task(shop, alice, due=at(3, 8, 18))  # never done: overdue, and escalated
    with clock(at(3, 20)):
        assert escalate(t[3].pk, now=at(3, 20))
    t[4] = task(shop, alice, due=at(4, 2, 18))
    done(t[4], at(3, 30, 10))  # done in March before an April due time: on time
    t[5] = task(shop, alice, due=at(2, 25, 18))
    done(t[5], at(3, 2, 10))  # late, but its due time was in February: neither
    t[6] = task(shop, alice, due=at(3, 10, 18))
    done(t[6], at(3, 9, 10), cancel=True)  # cancelled before due: neither
    t[7] = task(shop, alice)
    done(t[7], at(3, 12, 10))  # no due time: neither
    t[8] = task(shop, bob, due=at(3, 15, 18))
    done(t[8], at(3, 14, 10))  # bob, on time
    return o, t


def by_manager(rows):
    return {row.manager.username: row for row in rows}


def test_order_figures_match_the_hand_count(shop, month):
    o, _ = month
    rows = by_manager(kpi.manager_kpis(shop.admin, MARCH))
    alice, bob, otto = rows["alice"], rows["bob"], rows["otto"]

    assert alice.handled_order_ids == sorted([o[1].pk, o[3].pk, o[5].pk, o[7].pk])
    # alice acted after 30 min (o1) and 90 min (o3): median 60 min.
    assert sorted(a.seconds for a in alice.acted) == [1800, 5400]
    assert alice.median_first_action == datetime.timedelta(minutes=60)
    assert alice.completed_order_ids == [o[1].pk]
    assert alice.cancelled_order_ids == [o[4].pk]

    assert bob.handled_order_ids == sorted([o[2].pk, o[3].pk])
    # bob: 2 h (o2) and 24 h (o3): median 13 h.
    assert sorted(a.seconds for a in bob.acted) == [7200, 86400]
    assert bob.median_first_action == datetime.timedelta(hours=13)
    assert bob.completed_order_ids == [o[3].pk]
    assert bob.cancelled_order_ids == [o[2].pk]

    assert otto.handled_order_ids == [o[8].pk] and otto.completed_order_ids == [o[8].pk]
    assert otto.median_first_action == datetime.timedelta(minutes=1)


def test_task_figures_match_the_hand_count(shop, month):
    _, t = month
    rows = by_manager(kpi.manager_kpis(shop.admin, MARCH))
    assert rows["alice"].on_time_task_ids == [t[1].pk, t[4].pk]
    assert rows["alice"].overdue_task_ids == [t[2].pk, t[3].pk]
    assert rows["alice"].escalated_task_ids == [t[3].pk]
    assert rows["bob"].on_time_task_ids == [t[8].pk]
    assert rows["bob"].overdue_task_ids == rows["bob"].escalated_task_ids == []


def test_february_and_april_count_their_own_records(shop, month):
    o, t = month
    feb = by_manager(
        kpi.manager_kpis(shop.admin, kpi.Period(datetime.date(2024, 2, 1), datetime.date(2024, 2, 29)))
    )
    assert feb["alice"].handled_order_ids == [o[4].pk]
    assert feb["alice"].cancelled_order_ids == []  # cancelled on 1 March, Moscow time
    assert feb["alice"].overdue_task_ids == [t[5].pk]
    apr = by_manager(
        kpi.manager_kpis(shop.admin, kpi.Period(datetime.date(2024, 4, 1), datetime.date(2024, 4, 30)))
    )
    assert apr["bob"].handled_order_ids == [o[6].pk]
    assert apr["alice"].on_time_task_ids == [] and apr["alice"].overdue_task_ids == []


def test_supervisor_sees_managers_of_their_site_only(shop, month):
    names = {row.manager.username for row in kpi.manager_kpis(shop.supervisor, MARCH)}
    assert names == {"alice", "bob"}
    assert kpi.manager_kpis(shop.alice, MARCH) == []


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_page_for_supervisor_and_404_for_managers(shop, month):
    url = reverse("analytics:kpi") + "?from=2024-03-01&to=2024-03-31"
    response = client_for(shop.supervisor).get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Alice" in body and "Otto" not in body
    detail = reverse("analytics:kpi_detail", args=[shop.alice.pk, "handled"])
    assert f'href="{detail}?from=2024-03-01&amp;to=2024-03-31"' in body
    assert client_for(shop.admin).get(url).status_code == 200
    for user in (shop.alice, shop.operator):
        client = client_for(user)
        assert client.get(url).status_code == 404
        assert client.get(reverse("analytics:kpi_csv")).status_code == 404
        assert client.get(detail).status_code == 404
    assert Client().get(url).status_code == 302  # anonymous: to the login page


def test_drill_down_lists_exactly_the_records(shop, month):
    o, t = month
    client = client_for(shop.supervisor)
    query = "?from=2024-03-01&to=2024-03-31"

    def listed(user, figure, attr):
        response = client.get(reverse("analytics:kpi_detail", args=[user.pk, figure]) + query)
        assert response.status_code == 200
        rows = response.context[attr]
        return response, rows

    response, rows = listed(shop.alice, "handled", "assignments")
    assert sorted(a.order_id for a, _, _ in rows) == sorted([o[1].pk, o[3].pk, o[5].pk, o[7].pk])
    assert o[1].number in response.content.decode()
    _, rows = listed(shop.alice, "first_action", "assignments")
    assert sorted(a.order_id for a, _, _ in rows) == sorted([o[1].pk, o[3].pk])
    _, rows = listed(shop.alice, "cancelled", "moves")
    assert [m.order_id for m, _ in rows] == [o[4].pk]
    _, rows = listed(shop.bob, "completed", "moves")
    assert [m.order_id for m, _ in rows] == [o[3].pk]
    _, tasks = listed(shop.alice, "tasks_overdue", "tasks")
    assert [x.pk for x in tasks] == [t[2].pk, t[3].pk]
    _, tasks = listed(shop.alice, "escalations", "tasks")
    assert [x.pk for x in tasks] == [t[3].pk]
    # Another site's manager, an unknown figure, a non-manager: 404.
    for user, figure in ((shop.outsider, "handled"), (shop.alice, "salary"), (shop.operator, "handled")):
        assert client.get(reverse("analytics:kpi_detail", args=[user.pk, figure])).status_code == 404


def test_csv_lists_figures_with_their_records_and_neutralises_formulas(shop, month):
    o, t = month
    create_user(
        "mallory",
        role="manager",
        password=PASSWORD,
        actor=SYSTEM,
        site_codes=["shop"],
        first_name='=HYPERLINK("http://x")',
        last_name="<b>M</b>",
    )
    response = client_for(shop.supervisor).get(
        reverse("analytics:kpi_csv") + "?from=2024-03-01&to=2024-03-31"
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0].keys() >= {"manager", "orders_handled", "orders_handled_numbers", "tasks_overdue_ids"}
    by_id = {row["manager_id"]: row for row in rows}
    assert set(by_id) == {
        str(shop.alice.pk),
        str(shop.bob.pk),
        str(by_name(rows, "'=HYPERLINK")["manager_id"]),
    }
    alice = by_id[str(shop.alice.pk)]
    assert alice["orders_handled"] == "4"
    assert set(alice["orders_handled_numbers"].split()) == {o[i].number for i in (1, 3, 5, 7)}
    assert alice["median_first_action_seconds"] == "3600"
    assert (alice["orders_completed"], alice["orders_completed_numbers"]) == ("1", o[1].number)
    assert (alice["orders_cancelled"], alice["orders_cancelled_numbers"]) == ("1", o[4].number)
    assert (alice["tasks_on_time"], alice["tasks_on_time_ids"]) == ("2", f"{t[1].pk} {t[4].pk}")
    assert (alice["tasks_overdue"], alice["tasks_overdue_ids"]) == ("2", f"{t[2].pk} {t[3].pk}")
    assert (alice["escalations"], alice["escalations_task_ids"]) == ("1", str(t[3].pk))
    # The page escapes the same name.
    page = client_for(shop.supervisor).get(reverse("analytics:kpi")).content.decode()
    assert "<b>M</b>" not in page and "&lt;b&gt;M&lt;/b&gt;" in page


def by_name(rows, prefix):
    return next(row for row in rows if row["manager"].startswith(prefix))


def test_bad_period_falls_back_to_the_current_month(shop):
    response = client_for(shop.supervisor).get(reverse("analytics:kpi") + "?from=2024-03-31&to=2024-03-01")
    assert response.status_code == 200
    assert response.context["period"] == kpi.Period.current_month()
    assert response.context["error"]
    assert client_for(shop.supervisor).get(reverse("analytics:kpi_csv") + "?from=x").status_code == 400


def _more_managers(shop, n):
    """n more managers of the shop, each with an assigned, acted-on and completed order and two tasks."""
    for i in range(n):
        user = create_user(f"m{i}", role="manager", password=PASSWORD, actor=SYSTEM, site_codes=["shop"])
        o = order(shop, at(3, 4, 9), phone=f"+7916100{i:04d}")
        assign(o, user, at(3, 4, 9), shop.supervisor)
        move(o, "send-to-assembling", at(3, 4, 10), user)
        move(o, "complete", at(3, 4, 11), user)
        done(task(shop, user, due=at(3, 5)), at(3, 5, 10))
        task(shop, user, due=at(3, 6))


def test_query_count_does_not_grow_with_managers(shop, month, django_assert_max_num_queries):
    def counted():
        viewer = type(shop.supervisor).objects.get(pk=shop.supervisor.pk)  # fresh: no cached site ids
        with CaptureQueriesContext(connection) as queries:
            rows = kpi.manager_kpis(viewer, MARCH)
            kpi.order_numbers(rows)
        return len(queries), len(rows)

    few, rows_before = counted()
    _more_managers(shop, 6)
    many, rows_after = counted()
    assert rows_after == rows_before + 6
    assert many == few
    viewer = type(shop.supervisor).objects.get(pk=shop.supervisor.pk)
    with django_assert_max_num_queries(8):
        kpi.order_numbers(kpi.manager_kpis(viewer, MARCH))


def test_page_and_csv_query_counts_do_not_grow_with_managers(shop, month):
    client = client_for(shop.supervisor)
    urls = [
        reverse("analytics:kpi") + "?from=2024-03-01&to=2024-03-31",
        reverse("analytics:kpi_csv") + "?from=2024-03-01&to=2024-03-31",
    ]

    def counts():
        result = []
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
                if hasattr(response, "streaming_content"):
                    b"".join(response.streaming_content)
            result.append(len(queries))
        return result

    before = counts()
    _more_managers(shop, 5)
    assert counts() == before
