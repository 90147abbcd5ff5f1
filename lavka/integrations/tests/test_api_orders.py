"""API v5 orders (§2.2, §3.1–3.3): create, edit, upload, payments, lists, access and tracking."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lavka.catalog.models import Offer
from lavka.core.actor import Actor
from lavka.core.models import CustomField, HistoryRecord
from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Customer
from lavka.orders.models import Order, OrderItem, Payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(shop):
    shop.tea.external_id, shop.tea.xml_id = "tea-ext", "tea-xml"
    shop.tea.save(update_fields=["external_id", "xml_id"])
    shop.cup.external_id = "cup-ext"
    shop.cup.save(update_fields=["external_id"])
    return shop


def new_order(**overrides):
    order = {
        "externalId": "shop-1",
        "firstName": "Анна",
        "lastName": "Петрова",
        "phone": "+7 916 000-11-22",
        "email": "anna@example.com",
        "items": [
            {
                "offer": {"externalId": "tea-ext"},
                "quantity": 2,
                "externalIds": [{"code": "woo", "value": "1_7"}],
            },
            {
                "offer": {"xmlId": "tea-xml"},
                "initialPrice": 0,
                "externalIds": [{"code": "woo", "value": "2_7"}],
            },
        ],
        "delivery": {
            "code": "courier",
            "cost": 300,
            "date": "2031-05-04",
            "time": {"from": "10:00", "to": "14:00"},
            "address": {
                "city": "Москва",
                "street": "Тверская",
                "building": "1",
                "text": "Москва, Тверская 1",
            },
        },
        "payments": [{"type": "bank-card", "status": "paid", "amount": 600, "externalId": "pay-1"}],
    }
    order.update(overrides)
    return order


def create(api, **overrides):
    return api.post("orders/create", {"order": new_order(**overrides), "site": "shop"})


def test_create_with_items_delivery_and_payment(api, catalog):
    result = create(api, discountManualAmount="10.50", customFields=[])
    assert result.status == 201, result.body
    order = result["order"]
    assert result["id"] == order["id"] == Order.objects.get().pk
    assert order["externalId"] == "shop-1" and order["number"] == "1A" and order["status"] == "new"
    assert (order["orderType"], order["orderMethod"]) == ("eshop-individual", "shopping-cart")
    tea, gift = order["items"]
    assert tea["offer"]["externalId"] == "tea-ext" and tea["initialPrice"] == 450 and tea["quantity"] == 2
    assert tea["externalIds"] == [{"code": "woo", "value": "1_7"}] and tea["properties"] == []
    assert gift["initialPrice"] == 0 and gift["id"] != tea["id"]  # same offer, another line: kept apart
    assert order["delivery"] == {
        "code": "courier",
        "cost": 300,
        "date": "2031-05-04",
        "time": {"from": "10:00", "to": "14:00"},
        "address": {"city": "Москва", "street": "Тверская", "building": "1", "text": "Москва, Тверская 1"},
    }
    [(key, payment)] = order["payments"].items()
    assert key == str(payment["id"]) and payment["amount"] == 600 and payment["externalId"] == "pay-1"
    assert order["summ"] == 900 and order["totalSumm"] == 1189.5 and order["prepaySum"] == 600
    assert order["discountManualAmount"] == 10.5 and order["customFields"] == []
    assert len(order["createdAt"]) == 19 and order["createdAt"][10] == " "
    # No customer given: one is made from the order's contacts and embedded in full.
    customer = Customer.objects.get()
    assert order["customer"]["id"] == customer.pk and order["customer"]["phones"] == [
        {"number": "+79160001122"}
    ]
    assert (customer.first_name, customer.email) == ("Анна", "anna@example.com")
    assert api.get("orders/shop-1", {"site": "shop"})["order"] == order


def test_an_existing_external_id_is_refused_and_nothing_is_written(api, catalog):
    assert create(api).status == 201
    again = create(api, firstName="Другая")
    assert again.status == 400 and again.body == {"success": False, "errorMsg": "Order already exists."}
    assert Order.objects.count() == 1 and Customer.objects.count() == 1


def test_unknown_customer_and_offer_are_named(api, catalog):
    result = create(api, customer={"externalId": 355})
    assert result.status == 400 and result["errorMsg"] == "Order is not loaded"
    assert result["errors"] == {"customer.externalId": "Customer with externalId=355 not found."}
    result = create(api, items=[{"offer": {"id": 987654}}])
    assert result["errors"] == {"items[0].offer.id": "Offer with id 987654 not found."}
    # An offer of another site is unknown here too.
    result = create(api, items=[{"offer": {"id": catalog.foreign_offer.pk}}])
    assert result["errors"] == {"items[0].offer.id": f"Offer with id {catalog.foreign_offer.pk} not found."}
    assert not Order.objects.exists() and not Customer.objects.exists()


def test_order_linked_to_a_customer_by_external_id(api, catalog):
    customer = create_customer(
        catalog.site, CustomerData(first_name="Олег", external_id="c-7"), actor=Actor.system("t")
    )
    result = create(api, customer={"externalId": "c-7"}, firstName=None)
    assert result.status == 201, result.body
    assert result["order"]["customer"]["externalId"] == "c-7"
    assert Order.objects.get().customer_id == customer.pk and Customer.objects.count() == 1


def test_invalid_values_are_400_naming_the_field(api, catalog):
    result = create(api, delivery={"cost": "много"})
    assert result.status == 400 and result["errors"] == {"delivery.cost": "This value should be a number."}
    result = create(api, status="no-such-status")
    assert result.status == 400 and "status" in result["errors"]
    result = create(api, items=[{"offer": {"id": catalog.tea.pk}, "quantity": -1}])
    assert result.status == 400 and list(result["errors"]) == ["items[0].quantity"]
    result = api.post("orders/create", {"order": "[1, 2]", "site": "shop"})
    assert result.status == 400
    assert api.post("orders/create", {"site": "shop"}).body["errorMsg"] == "Parameter 'order' is missing"


def test_edit_changes_only_the_keys_sent(api, catalog):
    order_id = create(api)["id"]
    tea_line = OrderItem.objects.get(external_ids=[{"code": "woo", "value": "1_7"}])
    result = api.post(
        "orders/shop-1/edit",
        {
            "site": "shop",
            "order": {
                "managerId": catalog.alice.pk,
                "status": "availability-confirmed",
                "managerComment": "позвонить",
                # The tea line by its externalIds (quantity 3), the gift line dropped, a cup added.
                "items": [
                    {"externalIds": [{"code": "woo", "value": "1_7"}], "quantity": 3},
                    {"offer": {"externalId": "cup-ext"}, "quantity": 1},
                ],
            },
        },
    )
    assert result.status == 200, result.body
    order = result["order"]
    assert result["id"] == order_id and order["status"] == "availability-confirmed"
    assert order["managerId"] == catalog.alice.pk and order["managerComment"] == "позвонить"
    assert order["firstName"] == "Анна" and order["delivery"]["cost"] == 300  # not sent: kept
    assert [(i["id"] == tea_line.pk, i["quantity"]) for i in order["items"]] == [(True, 3), (False, 1)]
    assert order["totalSumm"] == 450 * 3 + 333.33 + 300


def test_edit_by_id_and_unknown_order(api, catalog):
    order_id = create(api)["id"]
    result = api.post(f"orders/{order_id}/edit", {"by": "id", "order": {"customerComment": "у двери"}})
    assert result.status == 200 and result["order"]["customerComment"] == "у двери"
    missing = api.post("orders/nope/edit", {"site": "shop", "order": {"customerComment": "x"}})
    assert missing.status == 404 and missing.body == {"success": False, "errorMsg": "Not found"}
    # What the shop reports has happened is taken even off the transition matrix and with no manager.
    pushed = api.post(f"orders/{order_id}/edit", {"by": "id", "order": {"status": "complete"}})
    assert pushed.status == 200 and pushed["order"]["status"] == "complete"
    record = HistoryRecord.objects.filter(entity="order", entity_id=order_id, field="status").last()
    assert record.new_value == {"code": "complete"} and record.source == "api"
    unknown = api.post(f"orders/{order_id}/edit", {"by": "id", "order": {"status": "no-such-status"}})
    assert unknown.status == 400 and "status" in unknown["errors"]


def test_payments_create_edit_delete(api, catalog):
    order_id = create(api, payments=[])["id"]
    created = api.post(
        "orders/payments/create",
        {"site": "shop", "payment": {"order": {"externalId": "shop-1"}, "type": "cash", "amount": 500}},
    )
    assert created.status == 201, created.body
    payment = Payment.objects.get(pk=created["id"])
    assert payment.order_id == order_id and payment.status.code == "not-paid"

    edited = api.post(
        f"orders/payments/{payment.pk}/edit",
        {"by": "id", "payment": {"status": "paid", "externalId": "p-9"}},
    )
    assert edited.status == 200 and edited["id"] == payment.pk
    payment.refresh_from_db()
    assert (payment.status.code, payment.amount, payment.external_id) == ("paid", Decimal("500.00"), "p-9")
    assert Order.objects.get().prepay_sum == Decimal("500.00")
    by_external = api.post("orders/payments/p-9/edit", {"payment": {"amount": 450}})
    assert by_external.status == 200 and Payment.objects.get().amount == Decimal("450.00")

    assert api.post("orders/payments/999/edit", {"by": "id", "payment": {}}).body == {
        "success": False,
        "errorMsg": "Payment not found",
    }
    deleted = api.post(f"orders/payments/{payment.pk}/delete")
    assert deleted.status == 200 and not Payment.objects.exists()
    assert Order.objects.get().prepay_sum == 0
    assert api.post(f"orders/payments/{payment.pk}/delete").status == 404


def test_upload_with_one_bad_order_is_460_and_the_good_ones_stay(api, catalog):
    good = new_order(externalId="u-1", payments=[])
    bad = new_order(externalId="u-2", items=[{"offer": {"id": 987654}}])
    result = api.post("orders/upload", {"site": "shop", "orders": [good, bad]})
    assert result.status == 460, result.body
    assert result["success"] is False and result["errorMsg"] == "Orders are loaded with errors"
    assert result["uploadedOrders"] == [{"id": Order.objects.get().pk, "externalId": "u-1"}]
    assert [o["externalId"] for o in result["orders"]] == ["u-1"]
    assert result["failedOrders"] == [{"externalId": "u-2"}]
    assert result["errors"] == {"orders[1].items[0].offer.id": "Offer with id 987654 not found."}
    # The failed one wrote nothing, not even its customer.
    assert Customer.objects.count() == 1

    fine = api.post("orders/upload", {"site": "shop", "orders": [new_order(externalId="u-3", payments=[])]})
    assert fine.status == 201 and fine["failedOrders"] == [] and len(fine["uploadedOrders"]) == 1
    too_many = api.post("orders/upload", {"site": "shop", "orders": [{}] * 51})
    assert too_many.status == 400


def test_fix_external_ids(api, catalog):
    first = create(api, externalId=None)["id"]
    second = create(api, externalId=None, payments=[])["id"]
    result = api.post(
        "orders/fix-external-ids",
        {"orders": [{"id": first, "externalId": "a"}, {"id": second, "externalId": 7}]},
    )
    assert result.status == 200, result.body
    assert dict(Order.objects.values_list("id", "external_id")) == {first: "a", second: "7"}
    taken = api.post("orders/fix-external-ids", {"orders": [{"id": second, "externalId": "a"}]})
    assert taken.status == 400 and taken["errors"] == {"orders[0].externalId": "Order already exists."}
    unknown = api.post("orders/fix-external-ids", {"orders": [{"id": 999999, "externalId": "b"}]})
    assert unknown.status == 400 and "orders[0].id" in unknown["errors"]


def test_list_filters_and_statuses(api, catalog):
    first = create(api)["id"]
    second = create(api, externalId="shop-2", email="b@example.com", payments=[], discountManualAmount=500)[
        "id"
    ]
    api.post("orders/shop-2/edit", {"site": "shop", "order": {"status": "no-call"}})

    def ids(**flt):
        result = api.get(
            "orders", {f"filter[{k}]" + ("[]" if isinstance(v, list) else ""): v for k, v in flt.items()}
        )
        assert result.status == 200, result.body
        return [o["id"] for o in result["orders"]]

    assert ids() == [second, first]
    assert ids(ids=[first]) == [first]
    assert ids(externalIds=["shop-2"]) == [second]
    assert ids(extendedStatus=["cancel"]) == [second]  # a status group's code
    assert ids(extendedStatus=["new"]) == [first]
    assert ids(paymentStatuses=["paid"]) == [first]
    assert ids(email="B@example.com") == [second]
    assert ids(customer="Петрова") == [second, first]
    assert (ids(minPrice=1000), ids(maxPrice=1000)) == ([first], [second])  # 1200 and 700
    assert ids(createdAtFrom="2000-01-01", sites=["shop"], unknownFilter="x") == [second, first]
    bad = api.get("orders", {"filter[ids][]": "abc"})
    assert bad.status == 400 and bad["errorMsg"] == "Errors in the input parameters"
    page = api.get("orders", {"limit": 20, "page": 2})
    assert page["orders"] == [] and page["pagination"]["totalCount"] == 2

    statuses = api.get("orders/statuses", {"ids[]": [first], "externalIds[]": ["shop-2"]})
    assert statuses["orders"] == [
        {"id": first, "externalId": "shop-1", "status": "new", "group": "new"},
        {"id": second, "externalId": "shop-2", "status": "no-call", "group": "cancel"},
    ]


def test_site_restricted_key_cannot_touch_another_site(api, catalog, make_api):
    other = make_api(sites=["other"])
    order_id = create(api)["id"]
    assert other.get(f"orders/{order_id}", {"by": "id"}).body == {
        "success": False,
        "errorMsg": "Access denied.",
    }
    assert other.get("orders/shop-1", {"site": "shop"}).status == 403
    assert other.get("orders/shop-1").status == 404  # not among the orders it can see
    assert other.get("orders").body["orders"] == []
    refused = other.post("orders/create", {"order": new_order(externalId="x"), "site": "shop"})
    assert refused.status == 403 and refused["errorMsg"] == "Access denied."
    assert other.post(f"orders/{order_id}/edit", {"by": "id", "order": {}}).status == 403
    assert Order.objects.count() == 1


def test_a_key_without_order_write_cannot_create(catalog, make_api):
    reader = make_api(scopes=["order_read"])
    result = reader.post("orders/create", {"order": new_order(), "site": "shop"})
    assert result.status == 403 and result.body == {"success": False, "errorMsg": "Access denied."}
    assert not Order.objects.exists()


def test_combine_moves_lines_and_cancels_the_other(api, catalog):
    keep = create(api, payments=[])["id"]
    gone = create(api, externalId="shop-2", payments=[])["id"]
    result = api.post(
        "orders/combine", {"order": {"id": gone}, "resultOrder": {"id": keep}, "technique": "summ"}
    )
    assert result.status == 200, result.body
    assert OrderItem.objects.filter(order_id=keep).count() == 4
    assert Order.objects.get(pk=gone).status.group.code == "cancel"
    bad = api.post("orders/combine", {"order": {"id": gone}, "resultOrder": {"id": keep}, "technique": "x"})
    assert bad.status == 400


def test_delivery_tracking_stores_track_and_status(api, catalog):
    create(api, delivery={"code": "courier", "data": {"externalId": "SHIP-1"}})
    result = api.post(
        "delivery/generic/cdek/tracking",
        {
            "statusUpdate": [
                {
                    "deliveryId": "SHIP-1",
                    "trackNumber": "TRK42",
                    "history": [
                        {"code": "delivered", "updatedAt": "2031-05-05T12:00:00+03:00"},
                        {"code": "in-transit", "updatedAt": "2031-05-04T12:00:00+03:00"},
                    ],
                },
                {"deliveryId": "SOMEONE-ELSES", "trackNumber": "X"},
            ]
        },
    )
    assert result.status == 200 and result["notFoundDeliveryIds"] == ["SOMEONE-ELSES"]
    order = Order.objects.get()
    assert (order.track_number, order.delivery_status) == ("TRK42", "delivered")
    data = api.get("orders/shop-1", {"site": "shop"})["order"]["delivery"]["data"]
    assert data == {"externalId": "SHIP-1", "trackNumber": "TRK42", "status": "delivered"}


def test_shop_number_date_source_custom_fields_and_v4_payment_fields(api, catalog):
    CustomField.objects.create(site=catalog.site, entity="order", code="gift", name="Gift", type="boolean")
    result = create(
        api,
        number="WOO-77",
        createdAt="2024-02-03 04:05:06",
        source={"source": "google", "medium": "cpc"},
        customFields={"gift": "1"},
        payments=None,
        paymentType="cash",
        paymentStatus="paid",
        orderMethod="phone",
        managerId=catalog.alice.pk,
        status="availability-confirmed",
    )
    assert result.status == 201, result.body
    order = result["order"]
    assert order["number"] == "WOO-77" and order["createdAt"] == "2024-02-03 04:05:06"
    assert order["source"] == {"source": "google", "medium": "cpc"} and order["customFields"] == {
        "gift": True
    }
    assert order["orderMethod"] == "phone" and order["status"] == "availability-confirmed"
    [payment] = order["payments"].values()  # the v4 fields make one payment of the whole order
    assert (payment["type"], payment["status"], payment["amount"]) == ("cash", "paid", order["totalSumm"])
    assert create(api, externalId="shop-2", number="WOO-77").body["errorMsg"] == "Order already exists."


@pytest.mark.parametrize(
    "changes",
    [
        {"items": "tea"},
        {"items": [{"offer": ["x"]}]},
        {"items": [{"offer": {"id": "1e400"}}]},
        {"items": [{"offer": {"externalId": {"a": 1}}}]},
        {"items": [{"offer": {"id": 1}, "quantity": "1e400"}]},
        {"items": [{"offer": {"id": 1}, "externalIds": "x"}]},
        {"delivery": ["courier"]},
        {"delivery": {"time": {"from": "25:99"}}},
        {"delivery": {"date": "2020-13-45", "address": "text"}},
        {"payments": {"0": "cash"}},
        {"payments": [{"amount": "x", "paidAt": "yesterday"}]},
        {"customer": "someone"},
        {"customer": {"id": 2**70}},
        {"customer": {"browserId": "b-1"}},
        {"createdAt": "2020-02-30"},
        {"managerId": "abc"},
        {"externalId": {"x": 1}},
        {"email": "not-an-email"},
        {"phone": "12"},
        {"customFields": {"nope": 1}},
        {"discountManualPercent": 150},
        {"source": "google"},
        {"orderType": ["a"]},
    ],
)
def test_bad_input_is_a_400_never_a_500(api, catalog, changes):
    result = create(api, **changes)
    assert result.status == 400, result.body
    assert result["success"] is False and result["errorMsg"] and result.body.get("errors")
    assert not Order.objects.exists()
    assert create(api).status == 201
    before = api.get("orders/shop-1", {"site": "shop"})["order"]
    edited = api.post("orders/shop-1/edit", {"site": "shop", "order": changes})
    assert edited.status == 400, edited.body
    assert api.get("orders/shop-1", {"site": "shop"})["order"] == before


def test_hot_paths_take_a_fixed_number_of_queries(api, catalog):
    """orders/create, the list and the history feed: the query count does not grow with the data."""
    create(api, externalId="warm-up")

    def queries(call):
        with CaptureQueriesContext(connection) as captured:
            result = call()
        assert result.status < 300, result.body
        return len(captured)

    one_line = queries(lambda: create(api, externalId="a", items=[{"offer": {"id": catalog.tea.pk}}]))
    three_lines = queries(lambda: create(api, externalId="b", items=[{"offer": {"id": catalog.tea.pk}}] * 3))
    assert one_line == three_lines <= 36
    listing, history = queries(lambda: api.get("orders")), queries(lambda: api.get("orders/history"))
    for n in range(4):
        create(api, externalId=f"more-{n}")
    assert queries(lambda: api.get("orders")) == listing
    assert queries(lambda: api.get("orders/history", {"limit": 100})) == history


def test_a_line_with_an_unknown_external_id_and_a_name_brings_its_offer_into_the_catalog(api, catalog):
    """A shop connects its plugin before Lavka has its catalog: the order is taken, and the next order
    and the stock upload bind to the same offer."""
    line = {
        "offer": {"externalId": "woo-77"},
        "productName": "Да Хун Пао",
        "initialPrice": 990,
        "quantity": 2,
    }
    first = api.post("orders/create", {"site": "shop", "order": {"firstName": "A", "items": [line]}})
    assert first.status == 201, first.body
    offer = Offer.objects.get(external_id="woo-77")
    assert (offer.name, offer.price, offer.product.site.code) == ("Да Хун Пао", 990, "shop")
    assert first["order"]["items"][0]["offer"]["externalId"] == "woo-77"
    again = api.post("orders/create", {"site": "shop", "order": {"firstName": "B", "items": [line]}})
    assert again.status == 201 and Offer.objects.filter(external_id="woo-77").count() == 1
    stock = api.post(
        "store/inventories/upload",
        {"site": "shop", "offers": [{"externalId": "woo-77", "stores": [{"code": "main", "available": 5}]}]},
    )
    assert stock.status == 200 and stock["processedOffersCount"] == 1, stock.body
    # Without a name there is nothing to make an offer from: the line is refused, naming the field.
    nameless = api.post(
        "orders/create", {"site": "shop", "order": {"items": [{"offer": {"externalId": "woo-78"}}]}}
    )
    assert nameless.status == 400 and "items[0].offer.externalId" in nameless["errors"]
    assert not Offer.objects.filter(external_id="woo-78").exists()
