"""Details of the retailCRM v5 shapes that store plugins read (§1.5, §1.12, §2.2.7, §2.3)."""

import pytest

from lavka.orders.models import Payment

pytestmark = pytest.mark.django_db


def _order(api, shop, **fields):
    order = {"firstName": "Анна", "items": [{"offer": {"id": shop.tea.pk}}], **fields}
    result = api.post("orders/create", {"site": "shop", "order": order})
    assert result.status == 201, result.body
    return result


def _last_records(api, path, since, **flt):
    body = api.get(
        path, {"filter[sinceId]": since, **{f"filter[{k}]": v for k, v in flt.items()}, "limit": 100}
    )
    assert body.status == 200, body.body
    return body["history"]


def test_an_order_without_an_address_has_no_empty_address_object(api, shop):
    order = _order(api, shop, externalId="no-address")["order"]
    assert "address" not in order["delivery"]
    got = api.get("orders/no-address", {"site": "shop"})["order"]
    assert "address" not in got["delivery"]
    with_address = _order(api, shop, externalId="with-address", delivery={"address": {"city": "Омск"}})
    assert with_address["order"]["delivery"]["address"] == {"city": "Омск", "text": "Омск"}


def test_order_history_names_the_customer_and_shows_no_value_as_null(api, shop):
    customer = api.post(
        "customers/create", {"site": "shop", "customer": {"externalId": "c-7", "firstName": "Ия"}}
    )
    assert customer.status == 201, customer.body
    created = _order(api, shop, externalId="h-null", customer={"externalId": "c-7"})
    since = max(r["id"] for r in _last_records(api, "orders/history", 0, orderId=created["id"]))
    creation = _last_records(api, "orders/history", 0, orderId=created["id"])
    link = next(r for r in creation if r["field"] == "customer")
    assert link["newValue"] == {"id": customer["id"], "externalId": "c-7", "site": "shop"}
    edit = {"order": {"delivery": {"address": {"text": "Омск, Ленина 1"}}}, "site": "shop"}
    assert api.post("orders/h-null/edit", edit).status == 200
    [address] = [
        r for r in _last_records(api, "orders/history", since) if r["field"] == "delivery_address.text"
    ]
    assert address["oldValue"] is None and address["newValue"] == "Омск, Ленина 1"


def test_customer_history_shows_no_value_as_null(api, shop):
    assert api.post("customers/create", {"site": "shop", "customer": {"externalId": "c-1"}}).status == 201
    since = max(r["id"] for r in _last_records(api, "customers/history", 0))
    edit = {"site": "shop", "customer": {"lastName": "Смирнова", "managerId": shop.alice.pk}}
    assert api.post("customers/c-1/edit", edit).status == 200
    records = {r["field"]: r for r in _last_records(api, "customers/history", since)}
    assert records["last_name"]["oldValue"] is None and records["last_name"]["newValue"] == "Смирнова"
    assert records["manager"]["newValue"] == {"id": shop.alice.pk}


def test_a_payment_external_id_on_two_sites_needs_the_site(api, shop):
    _order(api, shop, externalId="o-shop", payments=[{"type": "cash", "amount": 1, "externalId": "pay-9"}])
    other = {"firstName": "Олег", "items": [{"offer": {"id": shop.foreign_offer.pk}}]}
    other["payments"] = [{"type": "cash", "amount": 2, "externalId": "pay-9"}]
    assert api.post("orders/create", {"site": "other", "order": other}).status == 201
    edit = {"payment": {"amount": 5}}
    ambiguous = api.post("orders/payments/pay-9/edit", edit)
    assert ambiguous.status == 400 and ambiguous["errorMsg"] == "Parameter 'site' is missing"
    assert api.post("orders/payments/pay-9/edit", {**edit, "site": "other"}).status == 200
    amounts = dict(Payment.objects.values_list("order__site__code", "amount"))
    assert amounts == {"shop": 1, "other": 5}
    assert api.post("orders/payments/nope/edit", {**edit, "site": "shop"})["errorMsg"] == "Payment not found"
