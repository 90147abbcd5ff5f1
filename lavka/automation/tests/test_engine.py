"""The rule engine in one process: conditions decide, actions run once, runs explain themselves,
chains stop at the depth limit, waits go on later, timers fire once per anchor."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from lavka.automation import conditions, jobs
from lavka.automation.actions import RuleData, save_rule, set_rule_active
from lavka.automation.models import ActionEffect, PostponedStep, Rule, RuleRun, TimerMark
from lavka.core import dispatcher
from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent
from lavka.customers.actions import CustomerData
from lavka.orders.actions import ItemData, OrderData, PaymentData, add_payment, change_status, create_order
from lavka.orders.models import Order
from lavka.tasks.models import Task

SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _fresh_caches():
    conditions.forget()
    yield
    conditions.forget()


def rule(shop, condition: str = "", *, trigger: str = "orders.created", actions=None, enabled=True, **params):
    data = RuleData(
        name=f"rule {Rule.objects.count() + 1}",
        trigger=trigger,
        trigger_params=params,
        condition=condition,
        actions=actions
        or [("create_task", {"title": "Call about {{ order.number }}", "performer": "supervisor"})],
    )
    saved = save_rule(None, data, actor=shop.actor(shop.supervisor))
    return set_rule_active(saved, True, actor=SYSTEM) if enabled else saved


def order(shop, quantity: int = 1, manager=None) -> Order:
    data = OrderData(
        new_customer=CustomerData(first_name="Ivan"),
        items=[ItemData(offer_id=shop.tea.pk, quantity=quantity)],
        manager=manager,
        manager_set=manager is not None,
    )
    return create_order(shop.site, data, actor=shop.actor(shop.alice))


def test_a_rule_acts_when_its_condition_holds_and_says_why_not_when_it_does_not(shop) -> None:
    big = rule(shop, "order.total_summ >= 10000")
    small_order, big_order = order(shop, quantity=1), order(shop, quantity=30)  # 450.00 and 13,500.00
    dispatcher.drain()

    skipped = RuleRun.objects.get(rule=big, subject_id=small_order.pk)
    assert skipped.outcome == RuleRun.Outcome.SKIPPED
    assert "order.total_summ" in skipped.reason and "450" in skipped.reason
    done = RuleRun.objects.get(rule=big, subject_id=big_order.pk)
    assert done.outcome == RuleRun.Outcome.DONE
    task = Task.objects.get(order=big_order)
    assert task.performer == shop.supervisor
    assert task.text == f"Call about {big_order.number}"
    assert ActionEffect.objects.get(run=done).result == {"task_id": task.pk}
    assert not Task.objects.filter(order=small_order).exists()


def test_a_redelivered_event_runs_no_rule_twice(shop) -> None:
    rule(shop)
    made = order(shop)
    dispatcher.drain()
    event = OutboxEvent.objects.get(type="orders.created", payload__order_id=made.pk)
    # The worker died after its commit but before it could say so: the event comes back.
    OutboxEvent.objects.filter(pk=event.pk).update(processed_at=None, lease_until=None)

    assert dispatcher.drain() == 1
    assert RuleRun.objects.filter(event=event).count() == 1
    assert Task.objects.filter(order=made).count() == 1


def test_the_effect_key_keeps_a_second_run_from_making_a_second_task(shop) -> None:
    """Even if the engine ran twice for one event (a bug, a restored backup), the task's key holds."""
    chosen = rule(shop)
    made = order(shop)
    dispatcher.drain()
    run = RuleRun.objects.get(rule=chosen)
    ActionEffect.objects.all().delete()
    from lavka.automation.engine import go_on

    go_on(run, chosen, 0, conditions.context("order", made.pk, run.event))

    assert Task.objects.filter(order=made).count() == 1


def test_changed_old_and_new_see_the_event(shop) -> None:
    watcher = rule(
        shop,
        'changed("status") and old("status") == "new" and new("status") == "cancel-other"',
        trigger="orders.status_changed",
    )
    made = order(shop)
    change_status(made, "cancel-other", actor=shop.actor(shop.alice))
    dispatcher.drain()

    assert RuleRun.objects.get(rule=watcher).outcome == RuleRun.Outcome.DONE


def test_a_refused_action_stops_the_run_and_says_why(shop) -> None:
    """ "Assembling" needs a manager: the rule's status change is refused; nothing of it stays."""
    mover = rule(
        shop, actions=[("change_status", {"status": "send-to-assembling"}), ("add_tag", {"tag": "moved"})]
    )
    made = order(shop)
    dispatcher.drain()

    run = RuleRun.objects.get(rule=mover)
    assert run.outcome == RuleRun.Outcome.FAILED
    assert "(change_status) refused: status:" in run.reason
    assert list(run.effects.values_list("kind", "status")) == [("change_status", "failed")]
    made.refresh_from_db()
    assert made.status.code == "new"
    assert not made.customer.tags.exists()


def test_a_loop_of_two_rules_stops_at_the_depth_limit_and_is_reported(shop, settings) -> None:
    settings.LAVKA_AUTOMATION_MAX_DEPTH = 4
    comment = [("add_comment", {"text": "ping"})]
    rule(shop, trigger="orders.updated", actions=comment)
    rule(shop, trigger="orders.updated", actions=comment)
    made = order(shop, manager=shop.alice)
    from lavka.orders.actions import OrderData as Data
    from lavka.orders.actions import update_order

    update_order(made, Data(manager_comment="start"), actor=shop.actor(shop.alice))
    dispatcher.drain()

    loops = RuleRun.objects.filter(outcome=RuleRun.Outcome.LOOP)
    assert loops.exists()
    assert "limit is 4" in loops.first().reason
    assert RuleRun.objects.aggregate(deepest=__import__("django").db.models.Max("depth"))["deepest"] == 4
    assert not OutboxEvent.objects.filter(processed_at__isnull=True).exists()  # it ended


def test_a_wait_goes_on_later_only_if_the_recheck_holds(shop) -> None:
    waiting = rule(
        shop,
        actions=[("wait", {"minutes": 10, "recheck": 'order.status == "new"'}), ("add_tag", {"tag": "slow"})],
    )
    stays, moves = order(shop), order(shop, manager=shop.alice)
    dispatcher.drain()
    assert RuleRun.objects.filter(rule=waiting, outcome=RuleRun.Outcome.WAITING).count() == 2
    change_status(moves, "client-confirmed", actor=shop.actor(shop.alice))

    assert jobs.resume_waiting() == 0  # not yet due
    PostponedStep.objects.update(due_at=timezone.now() - datetime.timedelta(seconds=1))
    assert jobs.resume_waiting() == 2
    assert jobs.resume_waiting() == 0  # each once

    assert list(stays.customer.tags.values_list("name", flat=True)) == ["slow"]
    assert not moves.customer.tags.exists()
    assert RuleRun.objects.get(subject_id=stays.pk).outcome == RuleRun.Outcome.DONE
    skipped = RuleRun.objects.get(subject_id=moves.pk)
    assert skipped.outcome == RuleRun.Outcome.SKIPPED and "after the wait" in skipped.reason


def test_an_order_in_a_status_for_too_long_fires_once_per_stay(shop) -> None:
    escalate = rule(
        shop,
        trigger="timer.order_in_status",
        status="new",
        minutes=30,
        actions=[("add_tag", {"tag": "waited"})],
    )
    old, fresh = order(shop), order(shop)
    Order.objects.filter(pk=old.pk).update(status_updated_at=timezone.now() - datetime.timedelta(minutes=31))
    dispatcher.drain()

    assert jobs.fire_timers() == 1
    assert jobs.fire_timers() == 0
    dispatcher.drain()

    assert RuleRun.objects.get(rule=escalate).subject_id == old.pk
    assert TimerMark.objects.get().subject_id == old.pk
    assert list(old.customer.tags.values_list("name", flat=True)) == ["waited"]
    assert not fresh.customer.tags.exists()


def test_fully_paid_raises_its_event_once(shop) -> None:
    paid = rule(shop, trigger="orders.fully_paid", actions=[("add_tag", {"tag": "paid"})])
    made = order(shop, quantity=2)  # 900.00
    add_payment(made, PaymentData(type="cash", status="paid", amount=Decimal("400")), actor=SYSTEM)
    add_payment(made, PaymentData(type="cash", status="paid", amount=Decimal("500")), actor=SYSTEM)
    add_payment(made, PaymentData(type="cash", status="paid", amount=Decimal("1")), actor=SYSTEM)
    dispatcher.drain()

    assert OutboxEvent.objects.filter(type="orders.fully_paid").count() == 1
    assert RuleRun.objects.get(rule=paid).outcome == RuleRun.Outcome.DONE


def test_a_bad_condition_is_refused_on_save_with_its_position(shop) -> None:
    with pytest.raises(ValidationError) as caught:
        rule(shop, "order.total_summ >= ")
    assert "condition" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        rule(shop, "order.totl_summ > 1")
    assert "total_summ" in caught.value.message_dict["condition"][0]


def test_a_disabled_rule_does_nothing_and_costs_the_dispatcher_nothing(shop) -> None:
    rule(shop, enabled=False)
    order(shop)
    dispatcher.drain()

    assert not RuleRun.objects.exists()
    assert not Task.objects.exists()


def test_old_skipped_runs_are_pruned_and_runs_that_acted_are_kept(shop, settings) -> None:
    big = rule(shop, "order.total_summ >= 10000")
    small_order, big_order = order(shop, quantity=1), order(shop, quantity=30)
    dispatcher.drain()
    fresh_small = order(shop, quantity=1)
    dispatcher.drain()
    settings.LAVKA_AUTOMATION_KEEP_SKIPPED_RUNS_DAYS = 30
    long_ago = timezone.now() - datetime.timedelta(days=31)
    RuleRun.objects.filter(subject_id__in=[small_order.pk, big_order.pk]).update(created_at=long_ago)

    assert jobs.prune_skipped_runs() == 1

    assert not RuleRun.objects.filter(subject_id=small_order.pk).exists()
    assert RuleRun.objects.get(rule=big, subject_id=big_order.pk).outcome == RuleRun.Outcome.DONE
    assert RuleRun.objects.get(rule=big, subject_id=fresh_small.pk).outcome == RuleRun.Outcome.SKIPPED
