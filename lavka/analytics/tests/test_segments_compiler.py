"""Segment definitions on a hand-built set of customers: every kind of field, groups, merged customers,
one query per count, the one-customer form agreeing with the many-customer one, and validation errors
that name the path of the mistake.

Metrics rows are written directly here (the metrics refresh writes the real ones). Orders go through
orders.actions with their creation time given, so order-history periods are exact.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from lavka.analytics import segments
from lavka.analytics.models import CustomerMetrics, Segment
from lavka.analytics.segments import compiler
from lavka.catalog.models import Category
from lavka.core.actor import Actor
from lavka.customers.actions import CustomerData, create_customer, merge_customers
from lavka.orders.actions import ItemData, OrderData, create_order

SYSTEM = Actor.system("tests")


def days_ago(days: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


def customer(site, name: str, **fields) -> object:
    return create_customer(site, CustomerData(first_name=name, **fields), actor=SYSTEM)


def metrics(c, **values) -> CustomerMetrics:
    return CustomerMetrics.objects.create(customer=c, site_id=c.site_id, updated_at=timezone.now(), **values)


def order(site, c, offer, quantity: int, days: float, **fields):
    data = OrderData(
        customer=c,
        items=[ItemData(offer_id=offer.pk, quantity=quantity)],
        created_at=days_ago(days),
        **fields,
    )
    return create_order(site, data, actor=SYSTEM)


@pytest.fixture
def people(shop):
    """Anna (VIP, champion, 2 orders), Boris (1 order 40 days ago), Vera (nothing at all), Semyon
    (sleeping, a cancelled order), Olga on the other site, and Max, merged into Anna."""
    site = shop.site
    dishes = Category.objects.create(site=site, name="Посуда", parent=shop.tea.product.category)
    shop.cup.product.category = dishes
    shop.cup.product.save()
    anna = customer(
        site,
        "Анна",
        sex="female",
        birthday=datetime.date(1990, 3, 8),
        vip=True,
        source="yandex",
        campaign="spring-sale",
        tags=["vip"],
        consents={("email", "marketing"): True, ("sms", "service"): True},
        manager=shop.alice,
        manager_set=True,
        address={"city": "Moscow"},
    )
    boris = customer(
        site,
        "Борис",
        sex="male",
        source="google",
        tags=["wholesale"],
        consents={("email", "marketing"): False},
        manager=shop.bob,
        manager_set=True,
        address={"city": "Tver"},
    )
    vera = customer(site, "Вера")
    semyon = customer(site, "Семён", tags=["vip", "wholesale"])
    olga = customer(shop.other_site, "Ольга", vip=True)
    max_ = customer(site, "Макс", vip=True, tags=["vip"])
    orders = SimpleNamespace(
        anna_tea=order(site, anna, shop.tea, 2, 10, source="yandex"),  # 900.00
        max_=order(site, max_, shop.tea, 30, 3),  # 13 500.00, Anna's once Max is merged into her
        anna_cup=order(site, anna, shop.cup, 1, 100, order_method="shopping-cart"),  # 333.33
        boris_tea=order(site, boris, shop.tea, 1, 40),  # 450.00
        semyon_cup=order(site, semyon, shop.cup, 3, 200),  # 999.99
        semyon_cancelled=order(site, semyon, shop.tea, 10, 5, status="cancel-other"),
        olga=order(shop.other_site, olga, shop.foreign_offer, 1, 5),
    )
    metrics(
        anna,
        orders_count=2,
        revenue=Decimal("1233.33"),
        average_order=Decimal("616.67"),
        first_order_at=days_ago(100),
        last_order_at=days_ago(10),
        r_score=5,
        f_score=5,
        m_score=5,
        rfm_segment="champions",
        lifecycle="repeat",
        p_alive=0.9,
        churn_risk=0.1,
        predicted_value=5000.0,
    )
    metrics(
        boris,
        orders_count=1,
        revenue=Decimal("450"),
        average_order=Decimal("450"),
        first_order_at=days_ago(40),
        last_order_at=days_ago(40),
        r_score=3,
        f_score=1,
        m_score=1,
        rfm_segment="promising",
        lifecycle="new",
    )
    metrics(
        semyon,
        orders_count=1,
        revenue=Decimal("999.99"),
        average_order=Decimal("999.99"),
        first_order_at=days_ago(200),
        last_order_at=days_ago(200),
        r_score=1,
        f_score=1,
        m_score=3,
        rfm_segment="hibernating",
        lifecycle="sleeping",
        p_alive=0.2,
        churn_risk=0.8,
    )
    metrics(olga, orders_count=1, revenue=Decimal("500"), lifecycle="new", last_order_at=days_ago(5))
    metrics(max_, orders_count=9, revenue=Decimal("99999"), lifecycle="repeat", rfm_segment="champions")
    merge_customers(anna, [max_], actor=SYSTEM)
    return SimpleNamespace(
        shop=shop,
        anna=anna,
        boris=boris,
        vera=vera,
        semyon=semyon,
        olga=olga,
        max=max_,
        orders=orders,
        dishes=dishes,
        tea_category=shop.tea.product.category,
    )


def names(definition, site=None) -> set[str]:
    found = segments.matching(definition, site_id=site.pk if site else None)
    return set(found.values_list("first_name", flat=True))


def one(field, operator, value=None, **extra) -> dict:
    condition = {"field": field, "operator": operator, **extra}
    if value is not None:
        condition["value"] = value
    return {"op": "and", "items": [condition]}


EVERYONE = {"Анна", "Борис", "Вера", "Семён", "Ольга"}


def test_the_data_is_what_the_expectations_assume(people):
    o = people.orders
    assert [
        o.anna_tea.total_summ,
        o.anna_cup.total_summ,
        o.boris_tea.total_summ,
        o.semyon_cup.total_summ,
    ] == [
        Decimal("900.00"),
        Decimal("333.33"),
        Decimal("450.00"),
        Decimal("999.99"),
    ]
    people.max.refresh_from_db()
    assert people.max.merged_into_id == people.anna.pk
    # Max's order went to Anna with the merge.
    assert o.max_.__class__.objects.get(pk=o.max_.pk).customer_id == people.anna.pk


CUSTOMER_ATTRIBUTES = [
    ({}, EVERYONE),
    (one("site", "in", ["other"]), {"Ольга"}),
    (one("site", "not_in", ["other"]), EVERYONE - {"Ольга"}),
    (one("sex", "in", ["female"]), {"Анна"}),
    (one("sex", "in", ["unknown", "male"]), {"Борис", "Вера", "Семён", "Ольга"}),
    (one("birthday_month", "in", ["3"]), {"Анна"}),
    (one("birthday_month", "not_in", ["3", "4"]), EVERYONE - {"Анна"}),
    (one("vip", "is", True), {"Анна", "Ольга"}),
    (one("vip", "is", False), {"Борис", "Вера", "Семён"}),
    (one("bad", "is", True), set()),
    (one("source", "eq", "yandex"), {"Анна"}),
    (one("source", "eq", "YANDEX"), set()),  # UTM values are exact; "contains" ignores case
    (one("source", "contains", "YAND"), {"Анна"}),
    (one("source", "ne", "yandex"), EVERYONE - {"Анна"}),
    (one("source", "contains", "oo"), {"Борис"}),
    (one("source", "empty"), {"Вера", "Семён", "Ольга"}),
    (one("source", "not_empty"), {"Анна", "Борис"}),
    (one("campaign", "not_contains", "sale"), EVERYONE - {"Анна"}),
    (one("city", "eq", "moscow"), {"Анна"}),
    (one("city", "contains", "ve"), {"Борис"}),
    (one("city", "ne", "Moscow"), EVERYONE - {"Анна"}),
    (one("city", "empty"), {"Вера", "Семён", "Ольга"}),
    (one("city", "not_empty"), {"Анна", "Борис"}),
    (one("created_at", "in_last_days", 1), EVERYONE),
    (one("created_at", "not_in_last_days", 1), set()),
    (one("created_at", "before", "2000-01-01"), set()),
    (one("created_at", "after", "2000-01-01"), EVERYONE),
]


def test_customer_attributes(people, subtests):
    for definition, expected in CUSTOMER_ATTRIBUTES:
        with subtests.test(definition=definition["items"][0] if definition else definition):
            assert names(definition) == expected


def test_manager(people):
    shop = people.shop
    assert names(one("manager", "in", [str(shop.alice.pk)])) == {"Анна"}
    assert names(one("manager", "in", ["none"])) == {"Вера", "Семён", "Ольга"}
    assert names(one("manager", "in", ["none", str(shop.bob.pk)])) == {"Вера", "Семён", "Ольга", "Борис"}
    # "Not Alice" keeps the customers nobody is responsible for.
    assert names(one("manager", "not_in", [str(shop.alice.pk)])) == EVERYONE - {"Анна"}


METRICS = [
    (one("metrics.revenue", "gte", 999.99), {"Анна", "Семён"}),
    (one("metrics.revenue", "gt", "999.99"), {"Анна"}),
    (one("metrics.revenue", "lt", 500), {"Борис"}),
    (one("metrics.revenue", "lte", "500,00"), {"Борис", "Ольга"}),
    (one("metrics.revenue", "between", [450, 999.99]), {"Борис", "Семён", "Ольга"}),
    (one("metrics.orders_count", "eq", 1), {"Борис", "Семён", "Ольга"}),
    (one("metrics.orders_count", "ne", 1), {"Анна"}),
    (one("metrics.average_order", "gte", 600), {"Анна", "Семён"}),
    (one("metrics.r_score", "gte", 3), {"Анна", "Борис"}),
    (one("metrics.r_score", "empty"), {"Вера", "Ольга"}),  # Vera has no metrics row at all
    (one("metrics.r_score", "not_empty"), {"Анна", "Борис", "Семён"}),
    (one("metrics.m_score", "between", [2, 4]), {"Семён"}),
    (one("metrics.rfm_segment", "in", ["champions", "promising"]), {"Анна", "Борис"}),
    (one("metrics.lifecycle", "in", ["sleeping"]), {"Семён"}),
    (one("metrics.lifecycle", "not_in", ["new"]), {"Анна", "Семён", "Вера"}),
    (one("metrics.last_order_at", "in_last_days", 30), {"Анна", "Ольга"}),
    (one("metrics.last_order_at", "not_in_last_days", 30), {"Борис", "Семён"}),
    (one("metrics.first_order_at", "empty"), {"Вера", "Ольга"}),
    (one("metrics.days_since_last_order", "gte", 40), {"Борис", "Семён"}),
    (one("metrics.days_since_last_order", "gt", 40), {"Семён"}),
    (one("metrics.days_since_last_order", "lt", 10), {"Ольга"}),
    (one("metrics.days_since_last_order", "lte", 10), {"Анна", "Ольга"}),
    (one("metrics.days_since_last_order", "eq", 40), {"Борис"}),
    (one("metrics.days_since_last_order", "ne", 40), {"Анна", "Семён", "Ольга"}),
    (one("metrics.days_since_last_order", "between", [5, 40]), {"Анна", "Борис", "Ольга"}),
    (one("metrics.days_since_last_order", "empty"), {"Вера"}),
]


def test_metrics(people, subtests):
    for definition, expected in METRICS:
        with subtests.test(definition=definition["items"][0] if definition else definition):
            assert names(definition) == expected


MODEL_SCORES = [
    (one("metrics.p_alive", "gte", 0.5), {"Анна"}),
    (one("metrics.churn_risk", "gt", 0.5), {"Семён"}),
    (one("metrics.churn_risk", "empty"), {"Борис", "Вера", "Ольга"}),
    (one("metrics.predicted_value", "between", [1000, 10000]), {"Анна"}),
    (one("metrics.expected_purchases_90", "not_empty"), set()),
]


def test_model_scores(people, subtests):
    for definition, expected in MODEL_SCORES:
        with subtests.test(definition=definition["items"][0] if definition else definition):
            assert names(definition) == expected


TAGS_AND_CONSENT = [
    (one("tags", "any", ["vip"]), {"Анна", "Семён"}),
    (one("tags", "any", ["vip", "wholesale"]), {"Анна", "Борис", "Семён"}),
    (one("tags", "all", ["vip", "wholesale"]), {"Семён"}),
    (one("tags", "none", ["vip"]), {"Борис", "Вера", "Ольга"}),
    (one("consent.email.marketing", "is", True), {"Анна"}),
    (one("consent.email.marketing", "is", False), EVERYONE - {"Анна"}),
    (one("consent.sms.service", "is", True), {"Анна"}),
    (one("consent.sms.marketing", "is", True), set()),
]


def test_tags_and_consent(people, subtests):
    for definition, expected in TAGS_AND_CONSENT:
        with subtests.test(definition=definition["items"][0] if definition else definition):
            assert names(definition) == expected


def test_order_history(people):
    tea, dishes = people.tea_category.pk, people.dishes.pk
    last_60 = {"last_days": 60}
    # Counted orders only: Semyon's cancelled tea is nobody's purchase. Max's order is Anna's now.
    assert names(one("orders.count", "gte", 2)) == {"Анна"}
    assert names(one("orders.count", "eq", 3)) == {"Анна"}
    assert names(one("orders.count", "eq", 0)) == {"Вера"}
    assert names(one("orders.count", "lt", 1, period={"last_days": 30})) == {"Борис", "Семён", "Вера"}
    assert names(one("orders.count", "between", [0, 1], period=last_60)) == EVERYONE - {"Анна"}
    assert names(one("orders.count", "ne", 1, period=last_60)) == {"Анна", "Семён", "Вера"}
    assert names(one("orders.revenue", "gte", "999.99")) == {"Анна", "Семён"}
    assert names(one("orders.revenue", "lt", 500, period={"last_days": 365})) == {"Вера", "Борис"}
    # A category counts with the categories below it: the cup is under "Посуда", under "Чай".
    assert names(one("orders.category", "any", [str(dishes)])) == {"Анна", "Семён"}
    assert names(one("orders.category", "any", [str(tea)], period=last_60)) == {"Анна", "Борис"}
    assert names(one("orders.category", "none", [str(tea)])) == {"Вера", "Ольга"}
    cup = str(people.shop.cup.product_id)
    day = (timezone.localdate() - datetime.timedelta(days=100)).isoformat()
    assert names(one("orders.product", "any", [cup], period={"from": day, "to": day})) == {"Анна"}
    assert names(one("orders.product", "any", [cup], period={"to": day})) == {"Анна", "Семён"}
    assert names(one("orders.method", "any", ["shopping-cart"])) == {"Анна"}
    assert names(one("orders.source", "any", ["yandex"])) == {"Анна"}
    assert names(one("orders.source", "none", ["yandex"])) == EVERYONE - {"Анна"}


def test_groups_nest(people):
    vip_and = {
        "op": "and",
        "items": [
            {"field": "vip", "operator": "is", "value": True},
            {
                "op": "or",
                "items": [
                    {"field": "tags", "operator": "any", "value": ["wholesale"]},
                    {"field": "metrics.revenue", "operator": "gte", "value": 1000},
                ],
            },
        ],
    }
    assert names(vip_and) == {"Анна"}
    either = {
        "op": "or",
        "items": [one("metrics.lifecycle", "in", ["sleeping"]), one("site", "in", ["other"])],
    }
    assert names(either) == {"Семён", "Ольга"}
    # An empty group is "everyone", also inside an OR.
    assert names({"op": "or", "items": [one("vip", "is", True), {"op": "and", "items": []}]}) == EVERYONE
    assert names({"op": "and", "items": [one("vip", "is", True), {"op": "or", "items": []}]}) == {
        "Анна",
        "Ольга",
    }


def test_site_of_a_segment_limits_it(people):
    assert names(one("vip", "is", True), site=people.shop.site) == {"Анна"}


def test_merged_customers_are_never_in_a_segment(people):
    rich = one("metrics.revenue", "gte", 50000)  # only Max, merged into Anna
    assert names(rich) == set()
    assert people.max.pk not in set(segments.matching({}).values_list("pk", flat=True))


SAMPLES = [
    one("orders.count", "gte", 2),
    one("orders.count", "lt", 1, period={"last_days": 30}),
    one("orders.count", "ne", 1),
    one("orders.revenue", "between", [0, 1000]),
    one("orders.category", "none", ["1"]),
    {"op": "or", "items": [one("tags", "all", ["vip", "wholesale"]), one("metrics.r_score", "empty")]},
    {
        "op": "and",
        "items": [
            one("metrics.days_since_last_order", "gte", 30),
            one("consent.email.marketing", "is", False),
        ],
    },
]


def test_one_customer_form_agrees_with_the_count(people, subtests):
    everyone = [people.anna, people.boris, people.vera, people.semyon, people.olga, people.max]
    for definition in SAMPLES:
        with subtests.test(definition=definition):
            bulk = set(segments.matching(definition).values_list("pk", flat=True))
            segment = Segment(code="s", definition=definition, kind=Segment.Kind.DYNAMIC)
            assert {c.pk for c in everyone if segments.contains(segment, c.pk)} == bulk


def test_a_count_is_one_query(people):
    definition = {
        "op": "and",
        "items": [
            one("metrics.lifecycle", "in", ["repeat", "sleeping"]),
            one("orders.category", "any", [str(people.tea_category.pk)], period={"last_days": 365}),
            {"op": "or", "items": [one("tags", "any", ["vip"]), one("orders.count", "gte", 2)]},
        ],
    }
    with CaptureQueriesContext(connection) as queries:
        assert segments.count(definition) == 2  # Anna and Semyon
    selects = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, selects  # (PostgreSQL also gets a SET LOCAL in a savepoint)


def test_memberships_tests_every_segment_in_one_query(people):
    def segment(code, definition, kind=Segment.Kind.DYNAMIC, site=None):
        now = timezone.now()
        return Segment.objects.create(
            name=code, code=code, definition=definition, kind=kind, site=site, created_at=now, updated_at=now
        )

    segment("vip", one("vip", "is", True))
    segment("vip-other", one("vip", "is", True), site=people.shop.other_site)
    segment("rich", one("orders.revenue", "gte", 1000))
    segment("broken", one("no.such.field", "is", True))
    frozen = segment("frozen", {}, kind=Segment.Kind.FROZEN)
    frozen.members.create(customer=people.boris)
    with CaptureQueriesContext(connection) as queries:
        assert compiler.memberships(people.anna.pk) == ["rich", "vip"]
    assert len(queries) == 2  # the segments, then one query for all of them
    assert compiler.memberships(people.boris.pk) == ["frozen"]
    assert compiler.memberships(people.olga.pk) == ["vip", "vip-other"]
    assert compiler.memberships(people.max.pk) == []


@pytest.mark.parametrize(
    ("definition", "key"),
    [
        ([], "op"),
        ({"op": "xor", "items": []}, "op"),
        ({"op": "and", "items": {}}, "items"),
        ({"op": "and", "items": [], "extra": 1}, "extra"),
        (one("no.such.field", "eq", 1), "items.0.field"),
        (one("metrics.revenue", "contains", "1"), "items.0.operator"),
        (one("metrics.revenue", "gte", "lots"), "items.0.value"),
        (one("metrics.revenue", "gte", True), "items.0.value"),
        (one("metrics.revenue", "gte", "1e20"), "items.0.value"),
        (one("metrics.orders_count", "gte", 1.5), "items.0.value"),
        (one("metrics.revenue", "between", [5, 1]), "items.0.value"),
        (one("metrics.revenue", "between", [5, "x"]), "items.0.value.1"),
        (one("metrics.revenue", "between", 5), "items.0.value"),
        (one("created_at", "before", "01.02.2024"), "items.0.value"),
        (one("created_at", "in_last_days", -1), "items.0.value"),
        (one("vip", "is", "yes"), "items.0.value"),
        (one("source", "eq", ""), "items.0.value"),
        (one("source", "eq", "x" * 256), "items.0.value"),
        (one("sex", "in", ["female", "robot"]), "items.0.value.1"),
        (one("metrics.lifecycle", "in", []), "items.0.value"),
        (one("tags", "any", [{"name": "vip"}]), "items.0.value.0"),
        (one("manager", "in", ["none", "alice"]), "items.0.value.1"),
        (one("orders.category", "any", ["tea"]), "items.0.value.0"),
        (one("site", "in", ["no-such-site"]), "items.0.value.0"),
        (one("orders.count", "gte", 1, period={"last_days": 0}), "items.0.period.last_days"),
        (
            one("orders.count", "gte", 1, period={"from": "2024-02-01", "to": "2024-01-01"}),
            "items.0.period.to",
        ),
        (one("orders.count", "gte", 1, period={"last_days": 5, "from": "2024-01-01"}), "items.0.period"),
        (one("orders.count", "gte", 1, period={"weeks": 2}), "items.0.period.weeks"),
        (one("orders.count", "gte", 1, period={"from": "", "to": ""}), "items.0.period.from"),
        (one("orders.count", "gte", 1, period=[]), "items.0.period"),
        (one("vip", "is", True, period={"last_days": 5}), "items.0.period"),
        ({"op": "and", "items": ["vip"]}, "items.0"),
        (
            {
                "op": "and",
                "items": [
                    one("vip", "is", True),
                    {"op": "or", "items": [one("vip", "is", True), one("vip", "is", 1)]},
                ],
            },
            "items.1.items.1.items.0.value",
        ),
    ],
)
def test_mistakes_name_their_path(db, definition, key):
    with pytest.raises(ValidationError) as caught:
        compiler.parse(definition)
    assert key in caught.value.message_dict, caught.value.message_dict


def test_every_mistake_is_reported_at_once():
    definition = {"op": "and", "items": [one("nope", "eq", 1)["items"][0], one("vip", "is", 3)["items"][0]]}
    with pytest.raises(ValidationError) as caught:
        compiler.parse(definition)
    assert set(caught.value.message_dict) == {"items.0.field", "items.1.value"}


def test_too_deep_and_too_many():
    deep: dict = {"op": "and", "items": []}
    node = deep
    for _ in range(compiler.MAX_DEPTH + 1):
        child: dict = {"op": "and", "items": []}
        node["items"].append(child)
        node = child
    with pytest.raises(ValidationError):
        compiler.parse(deep)
    many = {"op": "and", "items": [one("vip", "is", True)["items"][0]] * (compiler.MAX_CONDITIONS + 1)}
    with pytest.raises(ValidationError) as caught:
        compiler.parse(many)
    assert f"items.{compiler.MAX_CONDITIONS}" in caught.value.message_dict


def test_normalize_stores_plain_values():
    definition = {
        "items": [
            {"field": "metrics.revenue", "operator": "between", "value": ["10,5", 20]},
            {"field": "orders.count", "operator": "gte", "value": "2", "period": {"from": "2024-01-01"}},
            {"field": "metrics.r_score", "operator": "empty", "value": "ignored"},
        ]
    }
    assert compiler.normalize(definition) == {
        "op": "and",
        "items": [
            {"field": "metrics.revenue", "operator": "between", "value": [10.5, 20]},
            {"field": "orders.count", "operator": "gte", "value": 2, "period": {"from": "2024-01-01"}},
            {"field": "metrics.r_score", "operator": "empty"},
        ],
    }


def test_describe_says_it_in_words(people):
    definition = {
        "op": "and",
        "items": [
            one("metrics.revenue", "gte", 5000)["items"][0],
            {
                "op": "or",
                "items": [one("sex", "in", ["female"])["items"][0], one("vip", "is", True)["items"][0]],
            },
        ],
    }
    with translation.override("en"):
        assert compiler.describe(definition) == "Revenue ≥ 5000 and (Sex is one of female or VIP is yes)"
        assert compiler.describe({}) == "all customers"
