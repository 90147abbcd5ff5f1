"""Subjects against real models: schemas, context loaders (and their query counts), what events changed."""

import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from lavka.accounts.models import Team
from lavka.automation.expressions import ExpressionError, check, compile_condition, evaluate, explain
from lavka.automation.subjects import (
    build_context,
    coerce,
    schema_for,
    subject_for_trigger,
    subject_of,
)
from lavka.core.models import CustomField, OutboxEvent
from lavka.customers.actions import CustomerData
from lavka.customers.models import Tag
from lavka.orders import actions
from lavka.orders.actions import ItemData, OrderData, PaymentData
from lavka.tasks.models import Task

UTC = datetime.UTC


@pytest.fixture
def order(shop):
    team = Team.objects.create(name="Sales Moscow", supervisor=shop.supervisor)
    shop.alice.team = team
    shop.alice.save(update_fields=["team"])
    CustomField.objects.create(site=shop.site, entity="order", code="gift", name="Gift", type="boolean")
    CustomField.objects.create(site=shop.site, entity="order", code="weight", name="Weight", type="numeric")
    CustomField.objects.create(site=shop.site, entity="customer", code="nps", name="NPS", type="integer")
    data = OrderData(
        new_customer=CustomerData(
            first_name="Анна",
            last_name="Петрова",
            email="anna@example.com",
            phones=["+79161234567", "+79031112233"],
            tags=["vip", "опт"],
            custom_fields={"nps": 9},
        ),
        items=[ItemData(offer_id=shop.tea.pk, quantity=2), ItemData(offer_id=shop.cup.pk, quantity=3)],
        payments=[PaymentData(type="cash", status="not-paid", amount="100")],
        manager=shop.alice,
        manager_set=True,
        delivery_cost="300",
        custom_fields={"gift": True, "weight": "1.25"},
    )
    return actions.create_order(shop.site, data, actor=shop.actor(shop.alice))


def last_event(kind: str) -> OutboxEvent:
    return OutboxEvent.objects.filter(type=kind).order_by("-id").first()


def holds(text: str, context, subject: str = "order") -> bool:
    return evaluate(compile_condition(text, schema_for(subject)), context)


# --- schemas ---------------------------------------------------------------------------------------


def test_order_schema_checks_the_documented_examples(order):
    schema = schema_for("order")
    for text in [
        'order.total_summ >= 10000 and order.site == "shop"',
        'changed("status") and new("status") == "paid"',
        "count(order.items) >= 3",
        "any(order.items, item.quantity > 2)",
        "order.customer.orders_count == 1",
        '"vip" in order.customer.tags',
        "now.hour >= 9 and now.weekday < 5",
        "not order.manager",
        'order.manager.team == "Sales Moscow"',
        "any(order.payments, payment.paid) or order.full_paid",
        'any(order.items, item.offer.sku == "PU-100" and item.product.name != "")',
        'event.type == "orders.updated" and changed("delivery_cost") and new("delivery_cost") > 500',
        "days_since(order.customer.last_order_at) > 90",
        'old("manager") == null and new("manager") != null',
        'changed("items") or changed("payments") or changed("custom.gift")',
    ]:
        assert check(text, schema) == check("true", schema)


@pytest.mark.django_db
def test_custom_fields_are_typed_from_their_definitions(order):
    schema = schema_for("order")
    check("order.custom.gift and order.custom.weight > 1", schema)
    check("order.customer.custom.nps >= 9", schema)
    with pytest.raises(ExpressionError, match="cannot compare number with string"):
        check('order.custom.weight == "heavy"', schema)
    with pytest.raises(
        ExpressionError, match=r"unknown field 'order.custom.gfit' at 13; did you mean 'gift'\?"
    ):
        check("order.custom.gfit", schema)


@pytest.mark.django_db
def test_task_and_customer_schemas():
    task = schema_for("task")
    check('task.performer.username == "alice" and not task.complete and task.overdue', task)
    check('task.order.status == "new" and "vip" in task.customer.tags', task)
    check('changed("complete") and new("complete")', task)
    customer = schema_for("customer")
    check("customer.vip or customer.total_summ > 100000", customer)
    check('changed("manager") and old("manager") == null', customer)
    with pytest.raises(ExpressionError, match="unknown name 'order'"):
        check("order.total_summ > 1", customer)
    with pytest.raises(ValueError):
        schema_for("planet")


def test_subject_of_events_and_triggers():
    assert subject_for_trigger("orders.status_changed") == "order"
    assert subject_for_trigger("customers.updated") == "customer"
    assert subject_for_trigger("customers.corporate_updated") is None
    assert subject_for_trigger("tasks.completed") == "task"
    assert subject_for_trigger("timer.order_in_status") == "order"
    assert subject_for_trigger("timer.task_overdue") == "task"
    assert subject_for_trigger("telephony.call_missed") is None
    assert subject_of("orders.updated", {"order_id": 7, "customer_id": 3}) == ("order", 7)
    assert subject_of("tasks.created", {"task_id": 5, "order_id": 7}) == ("task", 5)
    assert subject_of("telephony.call_missed", {"order_id": None, "customer_id": 3}) == ("customer", 3)
    assert subject_of("analytics.cost_created", {"cost_id": 1}) is None


# --- order context ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_order_context_loads_everything_in_six_queries(order, shop, django_assert_num_queries):
    schema = schema_for("order")
    event = last_event("orders.created")
    build_context("order", order.pk, event, schema=schema)  # reference books are cached per process
    with django_assert_num_queries(6):  # order+customer, users, items, payments, phones, tags
        context = build_context("order", order.pk, event, schema=schema)
    o = context.values["order"]
    assert o["number"] == order.number and o["site"] == "shop" and o["status"] == "new"
    assert o["status_group"] == "new" and o["closed"] is False
    assert o["total_summ"] == order.total_summ == Decimal("2199.99")  # 900 + 999.99 + 300
    assert o["delivery_cost"] == Decimal("300.00")
    assert o["prepay_sum"] == Decimal("0.00") and o["to_pay"] == order.total_summ  # the payment is not paid
    assert o["manager"] == {
        "id": shop.alice.pk,
        "username": "alice",
        "name": "Alice",
        "first_name": "Alice",
        "last_name": "",
        "email": "",
        "role": "manager",
        "presence": "working",
        "team": "Sales Moscow",
    }
    customer = o["customer"]
    assert customer["name"] == "Петрова Анна" and customer["email"] == "anna@example.com"
    assert customer["phones"] == ["+79161234567", "+79031112233"]
    assert customer["tags"] == sorted(["vip", "опт"])
    assert customer["custom"] == {"nps": 9}
    assert o["custom"] == {"gift": True, "weight": Decimal("1.25")}
    assert [(i["sku"], i["quantity"], i["offer"]["name"], i["product"]["name"]) for i in o["items"]] == [
        ("PU-100", Decimal("2"), "Пуэр 100 г", "Пуэр"),
        ("CUP-1", Decimal("3"), "Чашка", "Чашка"),
    ]
    assert [(p["type"], p["status"], p["amount"], p["paid"]) for p in o["payments"]] == [
        ("cash", "not-paid", Decimal("100.00"), False)
    ]
    assert context.values["event"] == {"type": "orders.created", "source": "user", "depth": 0}
    assert o["created_at"].utcoffset() == datetime.timedelta(hours=3)  # shown in the site's zone

    conditions = [
        compile_condition(text, schema)
        for text in [
            "count(order.items) == 2 and any(order.items, item.quantity > 2)",
            '"vip" in order.customer.tags and order.customer.custom.nps >= 9',
            'order.manager.team == "Sales Moscow" and order.custom.gift',
            "order.total_summ >= 10000",
        ]
    ]
    with django_assert_num_queries(0):  # compiled once, evaluated against plain data
        assert [evaluate(c, context) for c in conditions] == [True, True, True, False]


@pytest.mark.django_db
def test_only_the_lists_conditions_read_are_loaded(order, django_assert_num_queries):
    schema = schema_for("order")
    compiled = compile_condition('order.total_summ > 1000 and order.manager.username == "alice"', schema)
    build_context("order", order.pk, None, schema=schema)
    with django_assert_num_queries(2):  # the order, its manager
        context = build_context("order", order.pk, None, schema=schema, needs=compiled.fields)
    assert evaluate(compiled, context) is True
    assert context.values["order"]["items"] is None and context.values["order"]["customer"]["tags"] is None

    tags = compile_condition('"vip" in order.customer.tags and count(order.items) > 1', schema)
    with django_assert_num_queries(3):  # the order, its customer's tags, its items
        context = build_context("order", order.pk, None, schema=schema, needs=tags.fields)
    assert evaluate(tags, context) is True


@pytest.mark.django_db
def test_queries_do_not_grow_with_items(shop, django_assert_num_queries):
    schema = schema_for("order")
    big = actions.create_order(
        shop.site,
        OrderData(
            new_customer=CustomerData(first_name="Олег", phones=["+79160000000"]),
            items=[ItemData(offer_id=shop.tea.pk, quantity=1) for _ in range(30)],
            payments=[PaymentData(type="cash", status="not-paid", amount="1") for _ in range(5)],
        ),
        actor=shop.actor(shop.alice),
    )
    build_context("order", big.pk, None, schema=schema)
    with django_assert_num_queries(5):  # no manager to read
        context = build_context("order", big.pk, None, schema=schema)
    assert len(context.values["order"]["items"]) == 30
    assert context.values["order"]["manager"] is None
    assert holds("not order.manager and order.manager.team == null", context)


@pytest.mark.django_db
def test_reference_books_are_cached_and_new_rows_found(order, shop, django_assert_num_queries):
    from lavka.orders.models import Status, StatusGroup

    schema = schema_for("order")
    build_context("order", order.pk, None, schema=schema)
    group = StatusGroup.objects.get(code="approval")
    Status.objects.create(code="call-back", name="Call back", group=group)  # saving one clears the cache
    order.status = Status.objects.get(code="call-back")
    order.save(update_fields=["status"])
    context = build_context("order", order.pk, None, schema=schema)
    assert context.values["order"]["status"] == "call-back"
    assert context.values["order"]["status_group"] == "approval"
    with django_assert_num_queries(6):  # warm again
        build_context("order", order.pk, None, schema=schema)


@pytest.mark.django_db
def test_a_missing_subject_gives_no_context(db):
    assert build_context("order", 999_999, None) is None
    assert build_context("customer", 999_999, None) is None
    assert build_context("task", 999_999, None) is None


@pytest.mark.django_db
def test_now_is_in_the_site_time_zone(order):
    # 06:30 UTC on a Sunday is 09:30 in Moscow.
    moment = datetime.datetime(2025, 3, 2, 6, 30, tzinfo=UTC)
    context = build_context("order", order.pk, None, now=moment)
    assert context.values["now"] == {
        "hour": 9,
        "minute": 30,
        "weekday": 6,
        "day": 2,
        "month": 3,
        "year": 2025,
        "date": datetime.date(2025, 3, 2),
        "time": "09:30",
    }
    assert holds('now.hour >= 9 and now.time >= "09:30" and now.weekday >= 5', context)
    order.site.time_zone = "Asia/Vladivostok"
    order.site.save(update_fields=["time_zone"])
    context = build_context("order", order.pk, None, now=moment)
    assert context.values["now"]["hour"] == 16
    assert context.now.utcoffset() == datetime.timedelta(hours=10)


@pytest.mark.django_db
def test_days_since_counts_from_the_context_moment(order):
    later = order.created_at + datetime.timedelta(days=3, hours=5)
    context = build_context("order", order.pk, None, now=later)
    assert evaluate(compile_condition("days_since(order.created_at) == 3", schema_for("order")), context)


# --- what the event changed ------------------------------------------------------------------------


@pytest.mark.django_db
def test_status_changed_event(order, shop):
    actions.change_status(order, "availability-confirmed", actor=shop.actor(shop.alice))
    event = last_event("orders.status_changed")
    context = build_context("order", order.pk, event)
    assert context.changed == {"status"}
    assert (context.old["status"], context.new["status"]) == ("new", "availability-confirmed")
    assert holds('changed("status") and new("status") == "availability-confirmed"', context)
    assert holds('old("status") == "new" and order.status == new("status")', context)
    assert not holds('changed("manager")', context)


@pytest.mark.django_db
def test_manager_changed_event(order, shop):
    actions.assign_manager(order, shop.bob, actor=shop.actor(shop.supervisor))
    context = build_context("order", order.pk, last_event("orders.manager_changed"))
    assert context.changed == {"manager"}
    assert (context.old["manager"], context.new["manager"]) == (shop.alice.pk, shop.bob.pk)
    assert holds('changed("manager") and new("manager") == order.manager.id', context)
    assert context.values["event"]["source"] == "user"


@pytest.mark.django_db
def test_updated_event_with_old_and_new_values(order, shop):
    actions.update_order(
        order, OrderData(delivery_cost="700", manager_comment="позвонить"), actor=shop.actor(shop.alice)
    )
    event = last_event("orders.updated")
    context = build_context("order", order.pk, event)
    assert {"delivery_cost", "manager_comment"} <= context.changed
    if "changes" in event.payload:  # the lead adds it to the event
        assert context.old["delivery_cost"] == Decimal("300.00")
    assert context.new["delivery_cost"] == Decimal("700.00")
    assert holds('changed("delivery_cost") and new("delivery_cost") > 500', context)
    assert holds('new("manager_comment") == "позвонить"', context)
    assert not holds('changed("status")', context)


@pytest.mark.django_db
def test_updated_event_names_are_translated(order):
    """History names (`order_product.quantity`, `source.source`, `custom_gift`) → the schema's names."""
    event = SimpleNamespace(
        type="orders.updated",
        payload={
            "order_id": order.pk,
            "fields": [
                "order_product.quantity",
                "payments.status",
                "source.source",
                "custom_gift",
                "order_type",
            ],
            "changes": {
                "source.source": ["", "yandex"],
                "custom_gift": [None, True],
                "order_type": [{"code": "a"}, {"code": "b"}],
                "made_up": [1, 2],
            },
        },
    )
    context = build_context("order", order.pk, event)
    assert context.changed == {"items", "payments", "source", "custom.gift", "order_type"}
    assert context.new == {"source": "yandex", "custom.gift": True, "order_type": "b"}
    assert context.old == {"source": "", "custom.gift": None, "order_type": "a"}
    assert holds('changed("items") and new("custom.gift") and old("order_type") == "a"', context)


@pytest.mark.django_db
def test_payment_added_event(order, shop):
    actions.add_payment(
        order, PaymentData(type="bank-card", status="paid", amount="50"), actor=shop.actor(shop.alice)
    )
    context = build_context("order", order.pk, last_event("orders.payment_added"))
    assert context.changed == {"payments"}
    assert holds(
        'changed("payments") and any(order.payments, payment.paid and payment.amount == 50)', context
    )
    assert holds("sum(order.payments, payment.amount) == 150", context)


# --- customer and task -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_customer_context(order, shop, django_assert_num_queries):
    customer = order.customer
    schema = schema_for("customer")
    build_context("customer", customer.pk, None, schema=schema)
    with django_assert_num_queries(3):  # the customer, phones, tags (no manager)
        context = build_context("customer", customer.pk, None, schema=schema)
    c = context.values["customer"]
    assert c["tags"] == ["vip", "опт"] and c["manager"] is None and c["site"] == "shop"
    assert holds('"vip" in customer.tags and customer.manager == null', context, "customer")
    event = SimpleNamespace(
        type="customers.updated", payload={"customer_id": customer.pk, "fields": ["tags", "vip"]}
    )
    Tag.objects.create(name="unused")
    context = build_context("customer", customer.pk, event, schema=schema)
    assert context.changed == {"tags", "vip"}
    assert context.new == {"vip": False}  # no values in the event: new() is the value now
    assert holds('changed("tags") and not new("vip")', context, "customer")


@pytest.mark.django_db
def test_task_context(order, shop, django_assert_num_queries):
    now = timezone.now()
    task = Task.objects.create(
        site=shop.site,
        text="Позвонить клиенту",
        performer=shop.bob,
        creator=shop.supervisor,
        order=order,
        customer=order.customer,
        due_at=now - datetime.timedelta(minutes=5),
        created_at=now - datetime.timedelta(hours=1),
    )
    schema = schema_for("task")
    build_context("task", task.pk, None, schema=schema, now=now)
    with django_assert_num_queries(4):  # task with its customer and order, users, phones, tags
        context = build_context("task", task.pk, None, schema=schema, now=now)
    t = context.values["task"]
    assert t["performer"]["username"] == "bob" and t["creator"]["username"] == "sveta"
    assert t["order"]["number"] == order.number and t["order"]["manager"]["username"] == "alice"
    assert t["customer"]["tags"] == ["vip", "опт"]
    assert t["overdue"] is True and t["site"] == "shop"
    assert holds(
        'task.overdue and task.order.total_summ > 1000 and "vip" in task.customer.tags', context, "task"
    )
    completed = SimpleNamespace(type="tasks.completed", payload={"task_id": task.pk})
    context = build_context("task", task.pk, completed, schema=schema, now=now)
    assert holds('changed("complete") and new("complete") and not old("complete")', context, "task")


@pytest.mark.django_db
def test_explain_on_a_real_order(order):
    compiled = compile_condition("order.total_summ >= 10000", schema_for("order"))
    held, why = explain(compiled, build_context("order", order.pk, None))
    assert (held, why) == (False, "order.total_summ >= 10000 was false: order.total_summ = 2199.99")


def test_coerce_values_from_json():
    from lavka.automation.expressions import BOOL, DATE, DATETIME, MONEY, NUMBER, STRING

    assert coerce("12.50", MONEY) == Decimal("12.50")
    assert coerce(3, NUMBER) == 3
    assert coerce("NaN", NUMBER) is None and coerce(True, NUMBER) is None and coerce("x", NUMBER) is None
    assert coerce({"code": "paid"}, STRING) == "paid"
    assert coerce({"id": 5}, NUMBER) == 5
    assert coerce("2025-03-01", DATE) == datetime.date(2025, 3, 1)
    assert coerce("2025-03-01T10:00:00Z", DATETIME) == datetime.datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert coerce("2025-03-01T10:00:00", DATETIME).tzinfo is not None
    assert coerce("true", BOOL) is True and coerce("maybe", BOOL) is None
    assert coerce("bad-date", DATE) is None and coerce(None, STRING) is None
