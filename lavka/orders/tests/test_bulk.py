import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from lavka.core.actor import Actor
from lavka.core.history import verify_chain
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.actions import CustomerData, create_customer, refresh_stats
from lavka.customers.models import Customer
from lavka.orders import actions
from lavka.orders.actions import ItemData, OrderData, PaymentData
from lavka.orders.bulk import CustomerRow, OrderRow, import_customers, import_orders
from lavka.orders.models import Order

IMPORTER = Actor.importer("test import")
LAST_YEAR = timezone.now() - datetime.timedelta(days=365)


@pytest.fixture
def customer(shop) -> Customer:
    return create_customer(
        shop.site,
        CustomerData(first_name="Анна", last_name="Петрова", phones=["+79160001122"]),
        actor=shop.actor(shop.alice),
    )


def lines(shop) -> list[ItemData]:
    return [
        ItemData(offer_id=shop.cup.pk, quantity=3),  # 333.33 × 3 = 999.99
        ItemData(offer_id=shop.tea.pk, quantity="1.5", discount_manual_percent="10"),  # 405.00 × 1.5
    ]


def test_customers_are_cleaned_like_the_action_and_bad_rows_are_named(shop):
    rows = [
        CustomerRow(
            first_name="Иван",
            phones=["8 (916) 123-45-67"],
            email="Ivan@Mail.RU",
            tags=["VIP"],
            address={"city": "Москва", "street": "ул. Тверская"},
            created_at=LAST_YEAR,
            consents={("email", "marketing"): True},
        ),
        CustomerRow(first_name="Пётр", phones=["12345"]),
        CustomerRow(first_name="Ольга", email="not an e-mail"),
        CustomerRow(first_name="Мария", consents={("pigeon", "service"): True}),
        CustomerRow(first_name="Ева", phones=["+7 903 000-00-01"]),
    ]
    result = import_customers(shop.site, rows, actor=IMPORTER, batch_size=2)

    assert [(e.index, e.field) for e in result.errors] == [(1, "phones"), (2, "email"), (3, "consents")]
    assert result.ids[1:4] == [None, None, None] and result.created == 2
    ivan = Customer.objects.get(pk=result.ids[0])
    assert [p.number for p in ivan.phones.all()] == ["+79161234567"]
    assert ivan.email == "Ivan@mail.ru" and ivan.created_at == LAST_YEAR
    assert ivan.addresses.get().city == "Москва"
    assert list(ivan.tags.values_list("name", flat=True)) == ["VIP"]
    assert ivan.consents.get().granted
    assert not Customer.objects.filter(first_name__in=["Пётр", "Ольга", "Мария"]).exists()


def test_order_totals_are_exact_and_equal_to_create_order(shop, customer):
    data = dict(
        items=lines(shop),
        delivery_cost="300",
        discount_manual_amount="0.01",
        payments=[PaymentData(type="cash", status="paid", amount="1907.48")],
    )
    by_action = actions.create_order(shop.site, OrderData(customer=customer, **data), actor=IMPORTER)
    result = import_orders(shop.site, [OrderRow(customer=customer, **data)], actor=IMPORTER)
    imported = Order.objects.get(pk=result.ids[0])

    assert {i.sku: i.summ for i in imported.items.all()} == {
        "CUP-1": Decimal("999.99"),
        "PU-100": Decimal("607.50"),
    }
    figures = ("summ", "purchase_summ", "total_summ", "prepay_sum")
    assert [getattr(imported, f) for f in figures] == [
        Decimal("1607.49"),
        Decimal("600.00"),
        Decimal("1907.48"),
        Decimal("1907.48"),
    ]
    assert [getattr(imported, f) for f in figures] == [getattr(by_action, f) for f in figures]
    assert imported.full_paid_at is not None


def test_import_writes_one_chained_record_per_object_and_no_events(shop, customer):
    events = OutboxEvent.objects.count()
    customers = import_customers(shop.site, [CustomerRow(first_name="Иван")], actor=IMPORTER)
    orders = import_orders(
        shop.site,
        [
            OrderRow(customer_id=customers.ids[0], items=lines(shop)),
            OrderRow(customer=customer, status="complete", items=lines(shop)),
        ],
        actor=IMPORTER,
    )

    assert OutboxEvent.objects.count() == events
    records = HistoryRecord.objects.filter(source="import")
    assert records.count() == 3 and all(r.created for r in records)
    status = records.get(entity="order", entity_id=orders.ids[1])
    assert status.field == "status" and status.new_value == {"code": "complete"}
    assert status.context == {"site": "shop", "number": Order.objects.get(pk=orders.ids[1]).number}
    checked, problem = verify_chain()
    assert problem is None and checked == HistoryRecord.objects.count()


def test_numbers_continue_the_counter_and_after_imported_numbers(shop, customer):
    actions.create_order(shop.site, OrderData(customer=customer, items=lines(shop)), actor=IMPORTER)  # 1A
    result = import_orders(
        shop.site,
        [
            OrderRow(customer=customer, number="7A", items=lines(shop)),
            OrderRow(customer=customer, number="EXT-9", items=lines(shop)),
            OrderRow(customer=customer, items=lines(shop)),
        ],
        actor=IMPORTER,
    )
    assert [Order.objects.get(pk=pk).number for pk in result.ids] == ["7A", "EXT-9", "8A"]
    later = actions.create_order(shop.site, OrderData(customer=customer, items=lines(shop)), actor=IMPORTER)
    assert later.number == "9A"


def test_customer_figures_are_derived(shop, customer):
    import_orders(
        shop.site,
        [
            OrderRow(customer=customer, items=lines(shop), created_at=LAST_YEAR, status="complete"),
            OrderRow(
                customer=customer, items=lines(shop), status="no-call", manager=shop.alice, manager_set=True
            ),
            OrderRow(customer=customer, items=lines(shop)),
        ],
        actor=IMPORTER,
        batch_size=1,
    )
    customer.refresh_from_db()
    imported = (customer.orders_count, customer.total_summ, customer.first_order_at, customer.last_order_at)
    assert imported[:3] == (2, Decimal("3214.98"), LAST_YEAR)
    refresh_stats(customer.pk)
    customer.refresh_from_db()
    assert (
        customer.orders_count,
        customer.total_summ,
        customer.first_order_at,
        customer.last_order_at,
    ) == imported


def test_contact_snapshot_defaults_to_the_customer(shop, customer):
    result = import_orders(shop.site, [OrderRow(customer=customer, items=lines(shop))], actor=IMPORTER)
    order = Order.objects.get(pk=result.ids[0])
    assert (order.first_name, order.last_name, order.phone) == ("Анна", "Петрова", "+79160001122")


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (dict(items=[ItemData(offer_id="foreign")]), "items.0.offer"),
        (dict(items=[ItemData(offer_id=0)]), "items.0.offer"),
        (dict(items=[ItemData(offer_id=2**64)]), "items.0.offer"),
        (dict(items=[ItemData(offer_id=-1, quantity=0)]), "items.0.quantity"),
        (dict(status="send-to-assembling"), "manager"),
        (dict(status="complaint", manager="alice", manager_set=True), "complaint_reason"),
        (dict(status="nonsense"), "status"),
        (dict(complaint_reason="boredom"), "complaint_reason"),
        (dict(payments=[PaymentData(type="cash", status="lost", amount="10")]), "payments.0.status"),
        (dict(payments=[PaymentData(type="cash", status="paid", amount="-1")]), "payments.0.amount"),
        (dict(phone="12"), "phone"),
        (dict(delivery_date="31.12.2025"), "delivery_date"),
        (dict(manager="otto", manager_set=True), "manager"),
        (dict(customer_id=None), "customer"),
        (dict(customer_id="1; DROP TABLE"), "customer"),
        (dict(customer_id="foreign"), "customer"),
    ],
)
def test_bad_rows_are_rejected_with_the_field_and_nothing_of_them_is_written(shop, customer, row, field):
    foreign = create_customer(shop.other_site, CustomerData(first_name="Чужой"), actor=IMPORTER)
    values = {"customer_id": customer.pk, "items": [ItemData(offer_id=shop.tea.pk)], **row}
    if values["customer_id"] == "foreign":
        values["customer_id"] = foreign.pk
    for item in values["items"]:
        item.offer_id = {"foreign": shop.foreign_offer.pk, -1: shop.tea.pk}.get(item.offer_id, item.offer_id)
    if "manager" in values:
        values["manager"] = {"alice": shop.alice, "otto": shop.outsider}[values["manager"]]
    good = OrderRow(customer=customer, items=lines(shop))
    result = import_orders(shop.site, [good, OrderRow(**values)], actor=IMPORTER)

    assert [(e.index, e.field) for e in result.errors] == [(1, field)]
    assert result.ids[1] is None and Order.objects.filter(pk=result.ids[0]).exists()
    assert Order.objects.count() == 1


def test_duplicate_external_ids_and_numbers_are_rejected(shop, customer):
    first = import_orders(
        shop.site, [OrderRow(customer=customer, external_id="x-1", items=lines(shop))], actor=IMPORTER
    )
    result = import_orders(
        shop.site,
        [
            OrderRow(customer=customer, external_id="x-1", items=lines(shop)),
            OrderRow(customer=customer, external_id="x-2", items=lines(shop)),
            OrderRow(customer=customer, external_id="x-2", items=lines(shop)),
            OrderRow(customer=customer, number=Order.objects.get(pk=first.ids[0]).number, items=lines(shop)),
        ],
        actor=IMPORTER,
    )
    assert [(e.index, e.field) for e in result.errors] == [
        (0, "external_id"),
        (2, "external_id"),
        (3, "number"),
    ]
    assert result.created == 1


def test_progress_is_reported_per_batch(shop, customer):
    seen = []
    import_orders(
        shop.site,
        (OrderRow(customer=customer, items=lines(shop)) for _ in range(5)),
        actor=IMPORTER,
        batch_size=2,
        progress=seen.append,
    )
    assert seen == [2, 4, 5]
