"""Order pages: the permission matrix, the create form end to end, bad input, complaints, query counts."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.core.testing import PASSWORD
from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Customer
from lavka.orders import actions
from lavka.orders.actions import ItemData, OrderData
from lavka.orders.models import Order, Status

ALICE_PHONE = "+79161234567"


def make_order(shop, creator, *, manager=None, phone=ALICE_PHONE, name="Анна", lines=1) -> Order:
    data = OrderData(
        new_customer=CustomerData(
            first_name=name,
            last_name="Петрова",
            phones=[phone],
            manager=manager,
            manager_set=manager is not None,
        ),
        items=[ItemData(offer_id=shop.tea.pk, quantity=1) for _ in range(lines)],
        manager=manager,
        manager_set=manager is not None,
    )
    return actions.create_order(shop.site, data, actor=shop.actor(creator))


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(shop, **overrides) -> dict:
    """A valid order create POST: a new customer and two lines."""
    data = {
        "site": shop.site.code,
        "customer": "",
        "last_name": "Иванова",
        "first_name": "Мария",
        "patronymic": "",
        "phone": "8 (916) 555-44-33",
        "email": "maria@example.com",
        "order_type": "eshop-individual",
        "order_method": "phone",
        "manager": str(shop.alice.pk),
        "delivery_type": "courier",
        "delivery_cost": "300",
        "delivery_address": "Москва, Тверская 1",
        "delivery_date": "2030-05-01",
        "delivery_time_from": "10:00",
        "delivery_time_to": "14:00",
        "discount_manual_amount": "",
        "discount_manual_percent": "",
        "payment_type": "",
        "payment_status": "",
        "payment_amount": "",
        "source": "yandex",
        "medium": "",
        "campaign": "",
        "customer_comment": "Позвонить заранее",
        "manager_comment": "",
        "items-TOTAL_FORMS": "3",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "200",
        "items-0-offer": str(shop.tea.pk),
        "items-0-quantity": "2",
        "items-0-initial_price": "",
        "items-1-offer": str(shop.cup.pk),
        "items-1-quantity": "3",
        "items-1-initial_price": "",
        "items-1-discount_manual_percent": "10",
        "items-2-offer": "",
        "items-2-quantity": "1",
    }
    data.update(overrides)
    return data


def counts() -> tuple[int, int, int, int]:
    return (
        Order.objects.count(),
        Customer.objects.count(),
        HistoryRecord.objects.count(),
        OutboxEvent.objects.count(),
    )


# --- The permission matrix -------------------------------------------------------------------------------


@pytest.fixture
def alices(shop):
    return make_order(shop, shop.alice, manager=shop.alice)


@pytest.mark.parametrize(
    "who, status",
    [("alice", 200), ("bob", 404), ("supervisor", 200), ("admin", 200), ("outsider", 404), ("operator", 404)],
)
def test_order_card_scope(shop, alices, who, status):
    assert (
        client_for(getattr(shop, who)).get(reverse("orders:detail", args=[alices.pk])).status_code == status
    )


def test_bob_cannot_touch_alices_order(shop, alices):
    bob = client_for(shop.bob)
    assert bob.get(reverse("orders:edit", args=[alices.pk])).status_code == 404
    assert bob.post(reverse("orders:edit", args=[alices.pk]), form_data(shop)).status_code == 404
    assert (
        bob.post(reverse("orders:status", args=[alices.pk]), {"status": "client-confirmed"}).status_code
        == 404
    )
    assert bob.post(reverse("orders:assign", args=[alices.pk]), {"take": "1"}).status_code == 404
    assert (
        bob.post(
            reverse("orders:payment_add", args=[alices.pk]), {"type": "cash", "status": "paid", "amount": "1"}
        ).status_code
        == 404
    )
    alices.refresh_from_db()
    assert alices.manager_id == shop.alice.pk and alices.payments.count() == 0


@pytest.mark.parametrize(
    "who, found",
    [
        ("alice", True),
        ("bob", False),
        ("supervisor", True),
        ("admin", True),
        ("outsider", False),
        ("operator", False),
    ],
)
def test_order_list_and_search_scope(shop, alices, who, found):
    client = client_for(getattr(shop, who))
    for query in ({}, {"q": "8 916 123-45-67"}, {"q": "9161234567"}, {"q": alices.number}):
        page = client.get(reverse("orders:list"), query)
        assert page.status_code == 200
        assert (f'href="/orders/{alices.pk}/"' in page.content.decode()) is found, query
    export = b"".join(client.get(reverse("orders:export"), {"q": ALICE_PHONE}).streaming_content).decode()
    assert (alices.number in export) is found


def test_operator_sees_the_queue_and_what_they_created(shop, alices):
    queue = make_order(shop, shop.bob, phone="+79160000001")
    created = make_order(shop, shop.operator, manager=shop.bob, phone="+79160000002")
    bobs = make_order(shop, shop.bob, manager=shop.bob, phone="+79160000003")
    oleg = client_for(shop.operator)
    body = oleg.get(reverse("orders:list")).content.decode()
    assert f'href="/orders/{queue.pk}/"' in body and f'href="/orders/{created.pk}/"' in body
    assert f'href="/orders/{bobs.pk}/"' not in body and f'href="/orders/{alices.pk}/"' not in body
    assert oleg.get(reverse("orders:detail", args=[created.pk])).status_code == 200
    assert oleg.get(reverse("orders:detail", args=[bobs.pk])).status_code == 404


def test_my_work_shows_my_orders_and_the_queue_oldest_first(shop, alices):
    first = make_order(shop, shop.bob, phone="+79160000001")
    second = make_order(shop, shop.bob, phone="+79160000002")
    bobs = make_order(shop, shop.bob, manager=shop.bob, phone="+79160000003")
    response = client_for(shop.alice).get(reverse("orders:my_work"))
    body = response.content.decode()
    assert [o.pk for o in response.context["queue"]] == [first.pk, second.pk]
    assert [o.pk for o in response.context["rows"]] == [alices.pk]
    assert f'href="/orders/{bobs.pk}/"' not in body
    supervisor = client_for(shop.supervisor).get(reverse("orders:my_work"))
    assert {o.pk for o in supervisor.context["rows"]} == {alices.pk, bobs.pk}
    assert client_for(shop.alice).get("/").url == reverse("orders:my_work")


def test_take_from_the_queue(shop):
    queued = make_order(shop, shop.bob)
    response = client_for(shop.alice).post(reverse("orders:assign", args=[queued.pk]), {"take": "1"})
    assert response.status_code == 302
    queued.refresh_from_db()
    assert queued.manager_id == shop.alice.pk


# --- Create through the form -----------------------------------------------------------------------------


def test_create_order_for_a_new_customer_with_two_lines(shop):
    response = client_for(shop.alice).post(reverse("orders:create"), form_data(shop))
    assert response.status_code == 302, response.context and response.context["form"].errors
    order = Order.objects.get()
    assert response.url == reverse("orders:detail", args=[order.pk])
    # 450.00 × 2 + (333.33 − 33.33) × 3 = 1800.00; + delivery 300
    assert order.summ == Decimal("1800.00") and order.total_summ == Decimal("2100.00")
    assert order.phone == "+79165554433" and order.manager_id == shop.alice.pk
    assert order.customer.full_name == "Иванова Мария" and order.customer.main_phone == "+79165554433"
    fields = set(
        HistoryRecord.objects.filter(entity="order", entity_id=order.pk).values_list("field", flat=True)
    )
    assert {"status", "order_product", "delivery_cost"} <= fields
    card = client_for(shop.alice).get(response.url)
    body = card.content.decode()
    assert "Пуэр 100 г" in body and "2,100.00\xa0₽" in body  # the test users work in English


def test_create_for_an_existing_customer_and_with_a_payment(shop):
    customer = create_customer(
        shop.site, CustomerData(first_name="Олег", phones=["+79160001111"]), actor=shop.actor(shop.alice)
    )
    data = form_data(
        shop,
        customer=str(customer.pk),
        last_name="",
        first_name="",
        phone="",
        email="",
        payment_type="cash",
        payment_status="paid",
        payment_amount="900",
    )
    assert client_for(shop.alice).post(reverse("orders:create"), data).status_code == 302
    order = Order.objects.get()
    assert order.customer_id == customer.pk and order.phone == "+79160001111"
    assert order.prepay_sum == Decimal("900.00")


def test_duplicate_customer_is_warned_about_with_a_link(shop, alices):
    client = client_for(shop.alice)
    data = form_data(shop, phone="8 916 123 45 67")
    response = client.post(reverse("orders:create"), data)
    assert response.status_code == 200 and Order.objects.count() == 1
    assert reverse("customers:detail", args=[alices.customer_id]) in response.content.decode()
    assert client.post(reverse("orders:create"), {**data, "confirm_new_customer": "on"}).status_code == 302
    assert Order.objects.count() == 2


def test_offer_search_is_limited_to_the_site(shop):
    client = client_for(shop.alice)
    found = client.get(reverse("orders:offer_search"), {"site": "shop", "prefix": "items-0", "offer_q": "PU"})
    assert "Пуэр" in found.content.decode()
    assert (
        "Кофе"
        not in client.get(
            reverse("orders:offer_search"), {"site": "shop", "prefix": "items-0", "offer_q": "Коф"}
        ).content.decode()
    )
    assert (
        client.get(
            reverse("orders:offer_search"), {"site": "other", "prefix": "items-0", "offer_q": "CF"}
        ).status_code
        == 404
    )
    picked = client.get(
        reverse("orders:offer_search"), {"site": "shop", "prefix": "items-1", "pick": shop.foreign_offer.pk}
    )
    assert picked.status_code == 404
    row = client.get(reverse("orders:item_row"), {"site": "shop", "index": "3"})
    assert 'name="items-3-quantity"' in row.content.decode() and 'value="4"' in row.content.decode()


BAD_INPUTS = [
    ({"phone": "12"}, "phone"),
    ({"email": "not-an-email"}, "email"),
    ({"customer": "999999", "last_name": "", "first_name": "", "phone": "", "email": ""}, "customer"),
    ({"manager": "999999"}, "manager"),
    ({"delivery_cost": "-5"}, "delivery_cost"),
    ({"delivery_date": "2030-13-45"}, "delivery_date"),
    ({"order_type": "nope"}, "order_type"),
    ({"payment_amount": "abc"}, "payment_amount"),
    ({"discount_manual_percent": "150"}, "discount_manual_percent"),
]
BAD_LINES = [
    ({"items-0-quantity": "0"}, "quantity"),
    ({"items-0-quantity": "-1"}, "quantity"),
    ({"items-0-quantity": "много"}, "quantity"),
    ({"items-0-quantity": "1e999"}, "quantity"),
    ({"items-0-initial_price": "-10"}, "initial_price"),
    ({"items-0-initial_price": "дёшево"}, "initial_price"),
    ({"items-0-offer": "99999999"}, "offer"),
    ({"items-0-offer": "99999999999999999999999"}, "offer"),
    ({"items-0-discount_manual_amount": "1000"}, "discount_manual_amount"),
]


@pytest.mark.parametrize("override, field", BAD_INPUTS)
def test_bad_order_input_lands_on_the_field(shop, override, field):
    before = counts()
    response = client_for(shop.alice).post(reverse("orders:create"), form_data(shop, **override))
    assert response.status_code in (200, 400)
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert counts() == before


@pytest.mark.parametrize("override, field", BAD_LINES)
def test_bad_line_lands_on_the_line_field(shop, override, field):
    before = counts()
    response = client_for(shop.alice).post(reverse("orders:create"), form_data(shop, **override))
    assert response.status_code == 400
    assert response.context["items"].forms[0].errors.get(field), response.context["items"].errors
    assert counts() == before


def test_offer_of_another_site_and_foreign_customer_are_refused(shop):
    other_customer = create_customer(
        shop.other_site, CustomerData(first_name="Чужой"), actor=shop.actor(shop.outsider)
    )
    before = counts()
    client = client_for(shop.alice)
    response = client.post(
        reverse("orders:create"), form_data(shop, **{"items-1-offer": shop.foreign_offer.pk})
    )
    assert response.context["items"].forms[1].errors["offer"]
    response = client.post(reverse("orders:create"), form_data(shop, customer=other_customer.pk))
    assert response.context["form"].errors["customer"]
    # An admin sees every customer, so the site check of the action answers instead of the form.
    response = client_for(shop.admin).post(
        reverse("orders:create"), form_data(shop, customer=other_customer.pk)
    )
    assert response.context["form"].errors["customer"]
    response = client.post(reverse("orders:create"), form_data(shop, manager=shop.outsider.pk))
    assert response.context["form"].errors["manager"]
    assert counts() == before


def test_no_lines_is_an_error(shop):
    data = form_data(
        shop,
        **{
            "items-0-offer": "",
            "items-0-quantity": "1",
            "items-1-offer": "",
            "items-1-quantity": "1",
            "items-1-discount_manual_percent": "",
        },
    )
    response = client_for(shop.alice).post(reverse("orders:create"), data)
    assert response.status_code == 400 and response.context["items"].non_form_errors()
    assert not Order.objects.exists()


# --- Edit ------------------------------------------------------------------------------------------------


def test_edit_changes_lines_and_writes_history(shop, alices):
    item = alices.items.get()
    data = form_data(
        shop,
        **{
            "customer": str(alices.customer_id),
            "manager": "",
            "items-TOTAL_FORMS": "2",
            "items-INITIAL_FORMS": "1",
            "items-0-id": str(item.pk),
            "items-0-offer": str(shop.tea.pk),
            "items-0-quantity": "5",
            "items-1-offer": str(shop.cup.pk),
            "items-1-quantity": "1",
            "items-1-discount_manual_percent": "",
        },
    )
    response = client_for(shop.alice).post(reverse("orders:edit", args=[alices.pk]), data)
    assert response.status_code == 302, response.context and response.context["form"].errors
    alices.refresh_from_db()
    assert alices.summ == Decimal("450.00") * 5 + Decimal("333.33")
    fields = HistoryRecord.objects.filter(entity="order", entity_id=alices.pk).values_list("field", flat=True)
    assert "order_product.quantity" in fields and "delivery_address" in fields


def test_edit_refuses_a_line_of_another_order(shop, alices):
    other = make_order(shop, shop.alice, manager=shop.alice, phone="+79160000009")
    data = form_data(
        shop,
        **{
            "customer": str(alices.customer_id),
            "items-TOTAL_FORMS": "1",
            "items-INITIAL_FORMS": "1",
            "items-0-id": str(other.items.get().pk),
            "items-0-offer": str(shop.tea.pk),
            "items-0-quantity": "5",
        },
    )
    before = counts()
    response = client_for(shop.alice).post(reverse("orders:edit", args=[alices.pk]), data)
    assert response.status_code == 400
    assert response.context["items"].forms[0].errors
    assert counts() == before


# --- Status, complaints, payments, card ------------------------------------------------------------------


def test_status_change_offers_only_allowed_statuses(shop, alices):
    client = client_for(shop.alice)
    card = client.get(reverse("orders:detail", args=[alices.pk]))
    offered = {code for code, _label in card.context["status_form"].fields["status"].choices}
    assert offered == {s.code for s in actions.allowed_statuses(alices)}
    assert "complete" not in offered
    refused = client.post(reverse("orders:status", args=[alices.pk]), {"status": "complete"})
    assert refused.status_code == 400 and refused.context["status_form"].errors["status"]
    assert (
        client.post(reverse("orders:status", args=[alices.pk]), {"status": "client-confirmed"}).status_code
        == 302
    )
    alices.refresh_from_db()
    assert alices.status.code == "client-confirmed"
    body = client.get(reverse("orders:detail", args=[alices.pk])).content.decode()
    assert "Согласовано с клиентом" in body and "alice" in body.lower()


def test_complaint_flow(shop, alices):
    client = client_for(shop.alice)
    for code in ("send-to-assembling", "send-to-delivery"):
        assert client.post(reverse("orders:status", args=[alices.pk]), {"status": code}).status_code == 302
    missing = client.post(reverse("orders:status", args=[alices.pk]), {"status": "complaint"})
    assert missing.status_code == 400 and missing.context["status_form"].errors["complaint_reason"]
    done = client.post(
        reverse("orders:status", args=[alices.pk]),
        {"status": "complaint", "complaint_reason": "defect", "complaint_comment": "Разбита чашка"},
    )
    assert done.status_code == 302
    page = client.get(reverse("orders:complaints"))
    assert (
        f'href="/orders/{alices.pk}/"' in page.content.decode() and "Разбита чашка" in page.content.decode()
    )
    assert (
        f'href="/orders/{alices.pk}/"'
        not in client_for(shop.bob).get(reverse("orders:complaints")).content.decode()
    )
    filtered = client.get(reverse("orders:complaints"), {"reason": "delay"})
    assert f'href="/orders/{alices.pk}/"' not in filtered.content.decode()


def test_payment_add_and_errors(shop, alices):
    client = client_for(shop.alice)
    bad = client.post(
        reverse("orders:payment_add", args=[alices.pk]), {"type": "cash", "status": "paid", "amount": "-3"}
    )
    assert bad.status_code == 400 and bad.context["payment_form"].errors["amount"]
    ok = client.post(
        reverse("orders:payment_add", args=[alices.pk]), {"type": "cash", "status": "paid", "amount": "450"}
    )
    assert ok.status_code == 302
    alices.refresh_from_db()
    assert alices.prepay_sum == Decimal("450.00")


def test_assigning_a_manager_of_another_site_is_refused(shop, alices):
    response = client_for(shop.admin).post(
        reverse("orders:assign", args=[alices.pk]), {"manager": shop.outsider.pk}
    )
    assert response.status_code == 400 and response.context["assign_form"].errors["manager"]
    alices.refresh_from_db()
    assert alices.manager_id == shop.alice.pk


def test_card_query_count_does_not_grow_with_lines(shop):
    small = make_order(shop, shop.alice, manager=shop.alice, lines=1)
    big = make_order(shop, shop.alice, manager=shop.alice, lines=30, phone="+79160000008")
    client = client_for(shop.alice)
    client.get(reverse("orders:detail", args=[small.pk]))  # warm the session
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("orders:detail", args=[small.pk]))
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("orders:detail", args=[big.pk]))
    assert len(one) == len(many)


def test_list_query_count_does_not_grow_with_page_size(shop):
    for i in range(101):
        make_order(shop, shop.alice, manager=shop.alice, phone=f"+7916{i:07d}")
    client = client_for(shop.alice)
    client.get(reverse("orders:list"))
    with CaptureQueriesContext(connection) as small:
        page = client.get(reverse("orders:list"), {"per_page": 20})
    assert len(page.context["page"].rows) == 20
    with CaptureQueriesContext(connection) as large:
        page = client.get(reverse("orders:list"), {"per_page": 100})
    assert len(page.context["page"].rows) == 100 and page.context["page"].has_next
    assert len(small) == len(large)


def test_list_filters_and_htmx_partial(shop, alices):
    client = client_for(shop.alice)
    other = make_order(shop, shop.alice, manager=shop.alice, phone="+79160000007", name="Борис")
    actions.change_status(other, "cancel-other", actor=shop.actor(shop.alice))
    by_group = client.get(reverse("orders:list"), {"group": "cancel"}).context["page"].rows
    assert [o.pk for o in by_group] == [other.pk]
    by_status = client.get(reverse("orders:list"), {"status": "new"}).context["page"].rows
    assert [o.pk for o in by_status] == [alices.pk]
    by_name = client.get(reverse("orders:list"), {"q": "борис"}).context["page"].rows
    assert [o.pk for o in by_name] == [other.pk]
    sorted_rows = client.get(reverse("orders:list"), {"sort": "created_at"}).context["page"].rows
    assert [o.pk for o in sorted_rows] == [alices.pk, other.pk]
    partial = client.get(
        reverse("orders:list"), {"status": "new"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    assert "<html" not in partial.content.decode() and alices.number in partial.content.decode()
    invalid = client.get(
        reverse("orders:list"), {"status": "nope", "date_from": "x", "page": "²", "per_page": "7"}
    )
    assert invalid.status_code == 200


def test_saved_filters(shop, alices):
    client = client_for(shop.alice)
    response = client.post(
        reverse("settings:filter_save"), {"page": "orders", "name": "Новые", "query": "status=new"}
    )
    assert response.status_code == 302 and response.url.endswith("?status=new")
    page = client.get(reverse("orders:list"))
    saved = list(page.context["saved_filters"])
    assert [s.name for s in saved] == ["Новые"]
    assert list(client_for(shop.bob).get(reverse("orders:list")).context["saved_filters"]) == []
    assert client_for(shop.bob).post(reverse("settings:filter_delete", args=[saved[0].pk])).status_code == 404
    assert client.post(reverse("settings:filter_delete", args=[saved[0].pk])).status_code == 302


def test_csrf_is_enforced(shop, alices):
    client = Client(enforce_csrf_checks=True)
    client.force_login(shop.alice)
    assert (
        client.post(reverse("orders:status", args=[alices.pk]), {"status": "client-confirmed"}).status_code
        == 403
    )
    assert client.post(reverse("orders:create"), form_data(shop)).status_code == 403
    assert not Order.objects.exclude(pk=alices.pk).exists()


def test_login_required(shop, alices):
    response = Client().get(reverse("orders:detail", args=[alices.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_language_and_presence_switch(shop):
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    client.post(reverse("settings:language"), {"language": "ru", "next": "/orders/"})
    assert "Моя работа" in client.get(reverse("orders:my_work")).content.decode()
    client.post(reverse("settings:presence"), {"presence": "busy"})
    shop.alice.refresh_from_db()
    assert (shop.alice.language, shop.alice.presence) == ("ru", "busy")
    response = client.post(reverse("settings:language"), {"language": "en", "next": "https://evil.example/"})
    assert response.url == reverse("orders:my_work")


def test_pages_render_for_every_role(shop, alices):
    for user in (shop.admin, shop.supervisor, shop.alice, shop.operator, shop.outsider):
        client = client_for(user)
        for name in ("orders:my_work", "orders:list", "orders:complaints", "orders:create"):
            assert client.get(reverse(name)).status_code in (200, 404), (user, name)


def test_unknown_order_status_code_in_a_post_is_a_field_error(shop, alices):
    response = client_for(shop.alice).post(reverse("orders:status", args=[alices.pk]), {"status": "x" * 500})
    assert response.status_code == 400
    assert Status.objects.get(pk=alices.status_id).code == "new"


def test_nul_and_junk_in_query_parameters(shop, alices):
    """PostgreSQL refuses NUL in text: no parameter may carry one into a query."""
    client = client_for(shop.alice)
    nul = "a\x00b"
    for name in (
        "q",
        "site",
        "group",
        "status",
        "manager",
        "payment_status",
        "order_method",
        "sort",
        "date_from",
    ):
        assert client.get(reverse("orders:list"), {name: nul}).status_code == 200, name
    assert client.get(reverse("orders:complaints"), {"reason": nul}).status_code == 200
    assert client.get(reverse("orders:my_work"), {"status": nul}).status_code == 200
    assert client.get(reverse("orders:create"), {"site": nul}).status_code == 200
    assert client.get(reverse("orders:offer_search"), {"site": nul, "prefix": "items-0"}).status_code == 404
    assert (
        client.get(
            reverse("orders:offer_search"), {"site": "shop", "prefix": "items-0", "offer_q": nul}
        ).status_code
        == 200
    )
    assert client.get(reverse("customers:list"), {"q": nul, "tag": nul}).status_code == 200
    assert client.get(reverse("customers:search"), {"site": "shop", "customer_q": nul}).status_code == 200
    assert (
        client.post(
            reverse("settings:filter_save"), {"page": "orders", "name": nul, "query": nul}
        ).status_code
        == 302
    )


def test_the_count_is_capped(shop, monkeypatch):
    monkeypatch.setattr("lavka.core.ui.COUNT_CAP", 5)
    for i in range(8):
        make_order(shop, shop.alice, manager=shop.alice, phone=f"+7916{i:07d}")
    response = client_for(shop.alice).get(reverse("orders:list"), {"per_page": 20})
    page = response.context["page"]
    assert (page.count, page.capped, page.num_pages, len(page.rows)) == (5, True, None, 8)
    assert "5+" in response.content.decode()
