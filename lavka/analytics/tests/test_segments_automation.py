"""Automation conditions read segments: `"code" in customer.segments` (also `order.customer.segments`),
checked when the rule is saved, loaded only when a condition reads it, and current at each event."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from lavka.analytics.segments import actions as segment_actions
from lavka.analytics.segments.actions import SegmentData
from lavka.automation import conditions
from lavka.automation.actions import RuleData, save_rule, set_rule_active
from lavka.automation.expressions import compile_condition, evaluate
from lavka.automation.models import RuleRun
from lavka.automation.subjects import build_context, schema_for
from lavka.core import dispatcher
from lavka.core.actor import Actor
from lavka.customers.actions import CustomerData, create_customer
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.tasks.models import Task

SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _fresh_caches():
    conditions.forget()
    yield
    conditions.forget()


@pytest.fixture
def big_spenders(shop):
    """Customers with at least two counted orders: a dynamic segment on order history."""
    definition = {"op": "and", "items": [{"field": "orders.count", "operator": "gte", "value": 2}]}
    return segment_actions.create_segment(
        SegmentData(name="Big spenders", code="regulars", definition=definition), actor=SYSTEM
    )


def buy(shop, customer):
    data = OrderData(customer=customer, items=[ItemData(offer_id=shop.tea.pk, quantity=1)])
    return create_order(shop.site, data, actor=shop.actor(shop.alice))


def test_the_condition_is_checked_like_any_other(shop):
    conditions.check('"regulars" in customer.segments', "customer")
    conditions.check('any(order.customer.segments, segment == "regulars")', "order")
    with pytest.raises(ValidationError, match="cannot compare list of string with number"):
        conditions.check("customer.segments > 2", "customer")
    with pytest.raises(ValidationError, match="did you mean 'segments'"):
        conditions.check('"regulars" in customer.segmnts', "customer")


def test_segments_are_loaded_only_when_read(shop, big_spenders, django_assert_num_queries):
    customer = create_customer(shop.site, CustomerData(first_name="Анна"), actor=SYSTEM)
    buy(shop, customer)
    buy(shop, customer)
    schema = schema_for("customer")
    reads = compile_condition('"regulars" in customer.segments', schema)
    other = compile_condition("customer.vip", schema)
    build_context("customer", customer.pk, None, schema=schema, needs=reads.fields)  # warm the caches
    with django_assert_num_queries(1):  # the customer only
        context = build_context("customer", customer.pk, None, schema=schema, needs=other.fields)
    assert context.values["customer"]["segments"] is None
    with django_assert_num_queries(2):  # the customer, then every segment in one query
        context = build_context("customer", customer.pk, None, schema=schema, needs=reads.fields)
    assert context.values["customer"]["segments"] == ["regulars"]
    assert evaluate(reads, context) is True


def test_a_rule_acts_on_customers_in_a_segment(shop, big_spenders):
    """A task for orders of customers who are regulars by the time the order is made."""
    data = RuleData(
        name="Regulars get a call",
        trigger="orders.created",
        condition='"regulars" in order.customer.segments',
        actions=[("create_task", {"title": "Thank {{ order.number }}", "performer": "supervisor"})],
    )
    rule = set_rule_active(save_rule(None, data, actor=SYSTEM), True, actor=SYSTEM)
    customer = create_customer(shop.site, CustomerData(first_name="Анна"), actor=SYSTEM)
    first = buy(shop, customer)
    dispatcher.drain()
    second = buy(shop, customer)
    dispatcher.drain()
    assert RuleRun.objects.get(rule=rule, subject_id=first.pk).outcome == RuleRun.Outcome.SKIPPED
    assert RuleRun.objects.get(rule=rule, subject_id=second.pk).outcome == RuleRun.Outcome.DONE
    assert list(Task.objects.values_list("order_id", flat=True)) == [second.pk]


def test_a_new_segment_is_seen_at_once_in_this_process(shop):
    customer = create_customer(shop.site, CustomerData(first_name="Анна", vip=True), actor=SYSTEM)
    schema = schema_for("customer")
    reads = compile_condition('"vip" in customer.segments', schema)
    context = build_context("customer", customer.pk, None, schema=schema, needs=reads.fields)
    assert context.values["customer"]["segments"] == []
    vip = {"op": "and", "items": [{"field": "vip", "operator": "is", "value": True}]}
    segment = segment_actions.create_segment(SegmentData(name="VIP", definition=vip), actor=SYSTEM)
    context = build_context("customer", customer.pk, None, schema=schema, needs=reads.fields)
    assert evaluate(reads, context) is True
    segment_actions.delete_segment(segment, actor=SYSTEM)
    context = build_context("customer", customer.pk, None, schema=schema, needs=reads.fields)
    assert evaluate(reads, context) is False
