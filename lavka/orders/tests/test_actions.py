from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.utils import translation

from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.actions import CustomerData
from lavka.customers.models import Customer
from lavka.orders import actions
from lavka.orders.actions import ItemData, OrderData, PaymentData
from lavka.orders.models import Order


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def new_order(shop, user=None, **overrides) -> Order:
    user = user or shop.alice
    data = OrderData(
        new_customer=CustomerData(first_name="Анна", last_name="Петрова", phones=["+7 916 000-11-22"]),
        items=[ItemData(offer_id=shop.tea.pk, quantity=2), ItemData(offer_id=shop.cup.pk, quantity=3)],
        **overrides,
    )
    return actions.create_order(shop.site, data, actor=shop.actor(user))


def test_totals_are_exact_decimals(shop):
    order = actions.create_order(
        shop.site,
        OrderData(
            new_customer=CustomerData(first_name="Анна", phones=["+79160001122"]),
            items=[
                ItemData(offer_id=shop.cup.pk, quantity=3),  # 333.33 × 3 = 999.99
                ItemData(offer_id=shop.tea.pk, quantity="1.5", discount_manual_percent="10"),  # 405 × 1.5
            ],
            delivery_cost="300",
            discount_manual_amount="0.01",
        ),
        actor=shop.actor(shop.alice),
    )
    lines = {i.sku: i.summ for i in order.items.all()}
    assert lines == {"CUP-1": Decimal("999.99"), "PU-100": Decimal("607.50")}
    assert order.summ == Decimal("1607.49")
    assert order.total_summ == Decimal("1907.48")
    assert order.purchase_summ == Decimal("600.00")


def test_order_percent_discount_rounds_half_up(shop):
    order = new_order(shop, discount_manual_percent="3")
    # items: 900.00 + 999.99 = 1899.99; 3 % = 56.9997 → 57.00
    assert order.summ == Decimal("1899.99")
    assert order.total_summ == Decimal("1842.99")


def test_numbers_are_per_site_and_sequential(shop):
    first, second = new_order(shop), new_order(shop)
    assert (first.number, second.number) == ("1A", "2A")


def test_a_number_the_shop_already_used_is_skipped(shop):
    new_order(shop, number="2A")
    assert [new_order(shop).number, new_order(shop).number] == ["1A", "3A"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_an_uncommitted_order_does_not_hold_up_the_next_orders_number(shop):
    """An order being written keeps its number to itself without locking the count: another writer
    takes the next number at once (with the old counter row it waited until the first committed)."""
    new_order(shop)  # the site's first order makes its sequence
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT lavka_order_number(%s)", [shop.site.pk])
            held = cursor.fetchone()[0]
            with transaction.atomic():
                with connection.cursor() as mine:
                    mine.execute("SET LOCAL lock_timeout = '1s'")
                order = new_order(shop)
            assert order.number == f"{held + 1}A"
            cursor.execute("ROLLBACK")
    finally:
        holder.close()
    assert new_order(shop).number == f"{held + 2}A"  # the rolled-back number stays a gap


def test_create_writes_history_with_actor_and_source(shop):
    order = new_order(shop)
    records = HistoryRecord.objects.filter(entity="order", entity_id=order.pk)
    assert records.filter(field="status", created=True, new_value={"code": "new"}).exists()
    assert records.filter(field="order_product").count() == 2
    assert set(records.values_list("source", "user_id").distinct()) == {("user", shop.alice.pk)}


def test_invalid_transition_is_refused_with_a_message(shop):
    order = new_order(shop, manager=shop.alice, manager_set=True)
    with pytest.raises(ValidationError) as err:
        actions.change_status(order, "complete", actor=shop.actor(shop.alice))
    assert "cannot move" in err.value.message_dict["status"][0]
    order.refresh_from_db()
    assert order.status.code == "new"


def test_status_change_records_history_and_event(shop):
    order = new_order(shop, manager=shop.alice, manager_set=True)
    actions.change_status(
        order, "availability-confirmed", actor=shop.actor(shop.bob), comment="есть на складе"
    )
    record = HistoryRecord.objects.filter(entity="order", entity_id=order.pk, field="status").last()
    assert (record.old_value, record.new_value) == ({"code": "new"}, {"code": "availability-confirmed"})
    assert record.user_id == shop.bob.pk and record.source == "user"
    event = OutboxEvent.objects.filter(type="orders.status_changed").get()
    assert event.payload["new_status"] == "availability-confirmed"
    assert event.actor["user_id"] == shop.bob.pk


def test_open_order_past_new_needs_a_manager(shop):
    order = new_order(shop)
    with pytest.raises(ValidationError) as err:
        actions.change_status(order, "availability-confirmed", actor=shop.actor(shop.alice))
    assert "manager" in err.value.message_dict["status"][0]
    actions.assign_manager(order, shop.alice, actor=shop.actor(shop.supervisor))
    actions.change_status(order, "availability-confirmed", actor=shop.actor(shop.alice))
    with pytest.raises(ValidationError):
        actions.assign_manager(order, None, actor=shop.actor(shop.supervisor))


def test_cancelling_needs_no_manager(shop):
    order = new_order(shop)
    actions.change_status(order, "no-call", actor=shop.actor(shop.operator))
    assert Order.objects.get(pk=order.pk).status.code == "no-call"


def test_reassignment_is_recorded(shop):
    order = new_order(shop, manager=shop.alice, manager_set=True)
    actions.assign_manager(order, shop.bob, actor=shop.actor(shop.supervisor))
    record = HistoryRecord.objects.filter(entity="order", entity_id=order.pk, field="manager").last()
    assert (record.old_value, record.new_value) == ({"id": shop.alice.pk}, {"id": shop.bob.pk})
    assert OutboxEvent.objects.filter(type="orders.manager_changed").count() == 1


def test_manager_of_another_site_is_refused(shop):
    with pytest.raises(ValidationError) as err:
        new_order(shop, manager=shop.outsider, manager_set=True)
    assert "manager" in err.value.message_dict


def test_complaint_needs_a_reason(shop):
    order = new_order(shop, manager=shop.alice, manager_set=True)
    alice = shop.actor(shop.alice)
    for status in ("availability-confirmed", "send-to-assembling", "send-to-delivery"):
        actions.change_status(order, status, actor=alice)
    with pytest.raises(ValidationError) as err:
        actions.change_status(order, "complaint", actor=alice)
    assert "complaint_reason" in err.value.message_dict
    actions.change_status(
        order,
        "complaint",
        actor=alice,
        complaint_reason="courier",
        complaint_comment="Курьер опоздал на три часа",
    )
    order.refresh_from_db()
    assert (order.complaint_reason, order.status.group.code) == ("courier", "complaint")


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (ItemData(offer_id=None), "items.0.offer"),
        (ItemData(offer_id="abc"), "items.0.offer"),
        (ItemData(offer_id=999999), "items.0.offer"),
        (ItemData(offer_id="foreign"), "items.0.offer"),
        (ItemData(offer_id="tea", quantity=0), "items.0.quantity"),
        (ItemData(offer_id="tea", quantity=-1), "items.0.quantity"),
        (ItemData(offer_id="tea", quantity="много"), "items.0.quantity"),
        (ItemData(offer_id="tea", quantity="NaN"), "items.0.quantity"),
        (ItemData(offer_id="tea", initial_price="-5"), "items.0.initial_price"),
        (ItemData(offer_id="tea", initial_price="1e400"), "items.0.initial_price"),
        (ItemData(offer_id="tea", discount_manual_amount="1000"), "items.0.discount_manual_amount"),
    ],
)
def test_bad_lines_are_refused_naming_the_field_and_nothing_is_written(shop, item, field):
    if item.offer_id == "tea":
        item.offer_id = shop.tea.pk
    elif item.offer_id == "foreign":
        item.offer_id = shop.foreign_offer.pk
    counts = (
        Order.objects.count(),
        Customer.objects.count(),
        HistoryRecord.objects.count(),
        OutboxEvent.objects.count(),
    )
    with pytest.raises(ValidationError) as err:
        actions.create_order(
            shop.site,
            OrderData(new_customer=CustomerData(first_name="X", phones=["+79160001122"]), items=[item]),
            actor=shop.actor(shop.alice),
        )
    assert field in err.value.message_dict
    assert counts == (
        Order.objects.count(),
        Customer.objects.count(),
        HistoryRecord.objects.count(),
        OutboxEvent.objects.count(),
    )


@pytest.mark.parametrize(("phone", "email"), [("12345", ""), ("+7 916", ""), ("", "not-an-email")])
def test_bad_contacts_are_refused(shop, phone, email):
    with pytest.raises(ValidationError) as err:
        actions.create_order(
            shop.site,
            OrderData(
                new_customer=CustomerData(first_name="X", phones=[phone] if phone else [], email=email),
                items=[ItemData(offer_id=shop.tea.pk)],
            ),
            actor=shop.actor(shop.alice),
        )
    assert set(err.value.message_dict) & {"phones", "email"}
    assert not Customer.objects.exists()


def test_customer_of_another_site_is_refused(shop):
    customer_of_shop = new_order(shop).customer
    with pytest.raises(ValidationError) as err:
        actions.create_order(
            shop.other_site, OrderData(customer=customer_of_shop, items=[]), actor=shop.actor(shop.admin)
        )
    assert "customer" in err.value.message_dict


def test_rolled_back_action_leaves_no_outbox_row(shop):
    with pytest.raises(RuntimeError), transaction.atomic():
        new_order(shop)
        assert OutboxEvent.objects.exists()
        raise RuntimeError("the caller's transaction fails after the action")
    assert not OutboxEvent.objects.exists()
    assert not HistoryRecord.objects.exists()
    assert not Order.objects.exists()


def test_payments_drive_paid_amount(shop):
    order = new_order(shop)
    actions.add_payment(
        order, PaymentData(type="cash", status="invoice", amount="100"), actor=shop.actor(shop.alice)
    )
    payment = actions.add_payment(
        order, PaymentData(type="bank-card", status="paid", amount="1000"), actor=shop.actor(shop.alice)
    )
    order.refresh_from_db()
    assert order.prepay_sum == Decimal("1000.00") and order.full_paid_at is None
    actions.update_payment(
        payment,
        PaymentData(type="bank-card", status="paid", amount=str(order.total_summ)),
        actor=shop.actor(shop.alice),
    )
    order.refresh_from_db()
    assert order.prepay_sum == order.total_summ and order.full_paid_at is not None
    fields = set(
        HistoryRecord.objects.filter(entity="order", entity_id=order.pk).values_list("field", flat=True)
    )
    assert {"payments", "payments.amount"} <= fields
    with pytest.raises(ValidationError) as err:
        actions.add_payment(
            order, PaymentData(type="cash", status="paid", amount="-3"), actor=shop.actor(shop.alice)
        )
    assert "payment.amount" in err.value.message_dict


def test_editing_lines_records_each_change(shop):
    order = new_order(shop)
    tea_line, cup_line = order.items.order_by("id")
    actions.update_order(
        order,
        OrderData(
            items=[ItemData(id=tea_line.pk, offer_id=shop.tea.pk, quantity=5)], manager_comment="позвонить"
        ),
        actor=shop.actor(shop.alice),
    )
    order.refresh_from_db()
    assert order.summ == Decimal("2250.00")
    changes = {
        (r.field, str(r.new_value))
        for r in HistoryRecord.objects.filter(entity="order", entity_id=order.pk, created=False)
    }
    assert ("order_product.quantity", "5.000") in changes
    assert ("manager_comment", "позвонить") in changes
    assert any(field == "order_product" and new == "None" for field, new in changes)


def test_merge_orders_moves_lines_and_cancels_source(shop):
    target, source = new_order(shop), new_order(shop)
    actions.merge_orders(target, source, actor=shop.actor(shop.supervisor))
    target.refresh_from_db()
    source.refresh_from_db()
    assert target.items.count() == 4 and source.items.count() == 0
    assert source.status.group.code == "cancel"
    assert OutboxEvent.objects.filter(type="orders.merged").count() == 1


def test_offer_id_beyond_a_database_integer_is_unknown_not_a_crash(shop):
    with pytest.raises(ValidationError) as err:
        actions.create_order(
            shop.site,
            OrderData(new_customer=CustomerData(first_name="X"), items=[ItemData(offer_id=2**70)]),
            actor=shop.actor(shop.alice),
        )
    assert "items.0.offer" in err.value.message_dict
