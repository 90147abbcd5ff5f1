"""Task actions: create with a key (also under a race), complete/cancel/reopen, reassign, history and
events in one go."""

import datetime
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.actions import CustomerData, create_customer
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.tasks import actions
from lavka.tasks.actions import (
    TaskData,
    cancel_task,
    complete_task,
    create_task,
    reassign_task,
    reopen_task,
    update_task,
)
from lavka.tasks.models import Task

SYSTEM = Actor.system("tests")
RULE = Actor("rule", ref="12", name="a rule")


def task_events() -> list[str]:
    return list(
        OutboxEvent.objects.filter(type__startswith="tasks.").order_by("id").values_list("type", flat=True)
    )


def test_user_task_completed_then_reopened(shop):
    actor = shop.actor(shop.supervisor)
    task = create_task(TaskData(text="Позвонить", performer=shop.alice), actor=actor, site=shop.site)
    assert task.creator == shop.supervisor and task.site == shop.site
    assert task.status == Task.Status.OPEN and not task.complete
    task = complete_task(task, actor=actor, comment="Договорились на пятницу")
    assert task.status == Task.Status.DONE and task.complete and task.completed_at
    assert task.completion_comment == "Договорились на пятницу"
    task = update_task(task, TaskData(complete=False), actor=actor)
    assert task.status == Task.Status.OPEN and task.complete is False and task.completed_at is None
    assert task.completion_comment == ""
    assert task_events() == ["tasks.created", "tasks.completed", "tasks.reopened"]
    assert OutboxEvent.objects.get(type="tasks.reopened").payload["old_status"] == "done"
    fields = list(
        HistoryRecord.objects.filter(entity="task", entity_id=task.pk, created=False).values_list(
            "field", flat=True
        )
    )
    assert sorted(fields) == sorted(["complete", "status", "completion_comment"] * 2)


def test_cancel_and_reopen(shop):
    task = create_task(TaskData(text="Отправить образцы", performer=shop.bob), actor=SYSTEM, site=shop.site)
    task = cancel_task(task, actor=SYSTEM, comment="Клиент передумал")
    assert task.status == Task.Status.CANCELLED and task.complete is True
    assert cancel_task(task, actor=SYSTEM).status == Task.Status.CANCELLED  # twice is once
    with pytest.raises(ValidationError) as error:
        complete_task(task, actor=SYSTEM)
    assert "status" in error.value.message_dict
    task = reopen_task(task, actor=SYSTEM)
    assert reopen_task(task, actor=SYSTEM).status == Task.Status.OPEN
    task = complete_task(task, actor=SYSTEM)
    assert complete_task(task, actor=SYSTEM).status == Task.Status.DONE
    with pytest.raises(ValidationError):
        cancel_task(task, actor=SYSTEM)
    assert task_events() == ["tasks.created", "tasks.cancelled", "tasks.reopened", "tasks.completed"]
    cancelled = OutboxEvent.objects.get(type="tasks.cancelled").payload
    assert cancelled["performer_id"] == shop.bob.pk


def test_completed_late_is_told(shop):
    past = timezone.now() - datetime.timedelta(hours=1)
    task = create_task(
        TaskData(text="x", performer=shop.alice, due_at=past, due_at_set=True), actor=SYSTEM, site=shop.site
    )
    complete_task(task, actor=SYSTEM)
    assert OutboxEvent.objects.get(type="tasks.completed").payload["late"] is True


def test_reassign_and_moving_the_due_time_resets_the_marks(shop):
    now = timezone.now()
    task = create_task(
        TaskData(
            text="x", performer=shop.alice, due_at=now, due_at_set=True, remind_at=now, remind_at_set=True
        ),
        actor=SYSTEM,
        site=shop.site,
    )
    Task.objects.filter(pk=task.pk).update(reminded_at=now, overdue_at=now, escalated_at=now)
    task = reassign_task(task, shop.bob, actor=SYSTEM)
    assert task.performer == shop.bob and task.overdue_at is not None  # the same deadline
    later = now + datetime.timedelta(days=1)
    task = update_task(task, TaskData(due_at=later, due_at_set=True), actor=SYSTEM)
    assert task.overdue_at is None and task.escalated_at is None and task.reminded_at is not None
    task = update_task(task, TaskData(remind_at=later, remind_at_set=True), actor=SYSTEM)
    assert task.reminded_at is None
    updates = [e.payload["fields"] for e in OutboxEvent.objects.filter(type="tasks.updated").order_by("id")]
    assert updates == [["performer"], ["datetime"], ["remind_at"]]


def test_order_and_customer_must_share_a_site(shop):
    order = create_order(
        shop.site,
        OrderData(new_customer=CustomerData(first_name="Анна"), items=[ItemData(offer_id=shop.tea.pk)]),
        actor=SYSTEM,
    )
    stranger = create_customer(shop.other_site, CustomerData(first_name="Отто"), actor=SYSTEM)
    data = TaskData(
        text="x", performer=shop.alice, order=order, order_set=True, customer=stranger, customer_set=True
    )
    with pytest.raises(ValidationError) as error:
        create_task(data, actor=SYSTEM)
    assert "order" in error.value.message_dict


def test_a_key_makes_creating_idempotent(shop):
    data = TaskData(text="Позвонить клиенту", performer=shop.alice)
    first = create_task(data, actor=RULE, site=shop.site, key="rule-run:12:step:2")
    again = create_task(
        TaskData(text="something else", performer=shop.bob),
        actor=RULE,
        site=shop.site,
        key="rule-run:12:step:2",
    )
    assert (
        again.pk == first.pk
        and again.text == "Позвонить клиенту"
        and again.source_key == "rule-run:12:step:2"
    )
    assert Task.objects.count() == 1 and task_events() == ["tasks.created"]
    other = create_task(data, actor=RULE, site=shop.site, key="rule-run:12:step:3")
    assert other.pk != first.pk
    # Without a key nothing is de-duplicated.
    create_task(data, actor=RULE, site=shop.site)
    create_task(data, actor=RULE, site=shop.site)
    assert Task.objects.count() == 4
    with pytest.raises(ValueError):
        create_task(data, actor=RULE, key="x" * 201)


def test_a_lost_race_on_the_key_returns_the_winner_and_keeps_the_transaction(shop, monkeypatch):
    """The insert itself decides: with the shortcut look-up blind (as when the winner has not committed
    yet), the unique constraint fails the second insert inside a savepoint; the caller's transaction
    (the dispatcher's batch, a rule run) goes on."""
    data = TaskData(text="Позвонить", performer=shop.alice)
    winner = create_task(data, actor=RULE, site=shop.site, key="rule-run:1:step:1")
    real_filter = Task.objects.filter
    blind = {"on": True}

    def filter_blind_once(*args, **kwargs):
        if blind["on"] and kwargs == {"source_key": "rule-run:1:step:1"}:
            blind["on"] = False
            return Task.objects.none()
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(Task.objects, "filter", filter_blind_once, raising=False)
    with transaction.atomic():
        loser = create_task(data, actor=RULE, site=shop.site, key="rule-run:1:step:1")
        assert Task.objects.count() == 1  # the transaction is still usable
    assert loser.pk == winner.pk and not blind["on"]
    assert task_events() == ["tasks.created"]
    assert HistoryRecord.objects.filter(entity="task", field="id").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creators_with_one_key_make_one_task(shop):
    """PostgreSQL, two connections: the second's INSERT waits on the first's uncommitted row, then fails
    on the unique key and returns the first's task."""
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL)")
    key = "rule-run:77:step:1"
    results: dict[str, object] = {}
    first_inserted, commit_first = threading.Event(), threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = create_task(
                    TaskData(text="первая", performer=shop.alice), actor=RULE, site=shop.site, key=key
                )
                first_inserted.set()
                commit_first.wait(10)
        except Exception as exc:  # reported by the assertions below
            results["first_error"] = exc
        finally:
            close_old_connections()
            connection.close()

    def second() -> None:
        first_inserted.wait(10)
        try:
            results["second"] = create_task(
                TaskData(text="вторая", performer=shop.bob), actor=RULE, site=shop.site, key=key
            )
        except Exception as exc:
            results["second_error"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    # Let the first commit only once the second is blocked on a lock (its insert, or the chain head).
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= 1:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the second creator never waited for the first")
    commit_first.set()
    for thread in threads:
        thread.join(20)
    assert "first_error" not in results and "second_error" not in results, results
    assert results["first"].pk == results["second"].pk  # type: ignore[attr-defined]
    assert Task.objects.filter(source_key=key).count() == 1
    assert OutboxEvent.objects.filter(type="tasks.created").count() == 1


def test_actions_module_exports_what_automation_calls():
    assert callable(actions.due_in_working_minutes) and callable(actions.create_task)
