"""Abandoned carts over API v5: `customer-interaction/{site}/cart/...` (retailcrm-api-v5.md §2.13)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import retailcrm
from django.test import Client
from django.utils import timezone

from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.models import Customer
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.tracking.models import Cart

pytestmark = pytest.mark.django_db

SET = "customer-interaction/shop/cart/set"
CLEAR = "customer-interaction/shop/cart/clear"


@pytest.fixture
def buyer(shop):
    shop.tea.external_id, shop.tea.xml_id = "tea-1", "PU-XML"
    shop.tea.save()
    return Customer.objects.create(site=shop.site, external_id="c-7", created_at=timezone.now())


def cart_set(api, cart: dict, path: str = SET, **extra):
    return api.post(path, {"cart": cart, **extra})


def test_set_get_replace_and_clear(api, shop, buyer):
    sent = {
        "customer": {"externalId": "c-7"},
        "externalId": "c-7_abc",
        "currency": "eur",
        "link": "https://shop.example/cart?restore=1",
        "droppedAt": "2024-05-08 15:10:30-05:00",
        "items": [
            {"offer": {"externalId": "tea-1"}, "quantity": 2, "price": 24.999},
            {"offer": {"id": shop.cup.pk}, "quantity": "1.5"},
        ],
    }
    assert cart_set(api, sent).body == {"success": True}

    got = api.get("customer-interaction/shop/cart/c-7")
    assert got.status == 200
    cart = got["cart"]
    assert cart["externalId"] == "c-7_abc" and cart["currency"] == "EUR"
    assert cart["link"] == "https://shop.example/cart?restore=1"
    # 20:10:30 UTC, shown with the account zone's offset (Y-m-d H:i:sP).
    stored = Cart.objects.get()
    assert stored.dropped_at == datetime.datetime(2024, 5, 8, 20, 10, 30, tzinfo=datetime.UTC)
    assert cart["droppedAt"] == timezone.localtime(stored.dropped_at).isoformat(sep=" ")
    assert cart["customer"] == {"id": buyer.pk, "externalId": "c-7"}
    assert [(i["offer"]["id"], i["quantity"], i["price"]) for i in cart["items"]] == [
        (shop.tea.pk, 2, 25),  # the float price is rounded to the cent
        (shop.cup.pk, 1.5, 333.33),  # no price: the catalog's
    ]
    assert cart["items"][0]["offer"]["xmlId"] == "PU-XML" and "clearedAt" not in cart
    assert api.get(f"customer-interaction/shop/cart/{buyer.pk}", {"by": "id"})["cart"] == cart

    # A second set replaces the lines and keeps the external id it does not send (WooCommerce).
    again = cart_set(
        api, {"customer": {"id": buyer.pk}, "items": [{"offer": {"xmlId": "PU-XML"}, "quantity": 5}]}
    )
    assert again.status == 200
    cart = api.get("customer-interaction/shop/cart/c-7")["cart"]
    assert [(i["offer"]["id"], i["quantity"], i["price"]) for i in cart["items"]] == [(shop.tea.pk, 5, 450)]
    assert cart["externalId"] == "c-7_abc"
    assert Cart.objects.count() == 1

    # Bought: the clear names the order the cart became.
    order = create_order(
        shop.site,
        OrderData(customer=buyer, items=[ItemData(offer_id=shop.tea.pk, quantity=5)]),
        actor=Actor.system("tests"),
    )
    cleared = api.post(
        CLEAR,
        {
            "cart": {
                "customer": {"externalId": "c-7"},
                "clearedAt": "2024-05-09 10:00:00+00:00",
                "order": {"number": order.number},
            }
        },
    )
    assert cleared.body == {"success": True}
    cart = api.get("customer-interaction/shop/cart/c-7")["cart"]
    assert cart["items"] == [] and cart["clearedAt"].startswith("2024-05-09")
    assert cart["order"] == {"id": order.pk, "number": order.number}

    records = HistoryRecord.objects.filter(entity="cart", entity_id=stored.pk)
    assert {"id", "items", "external_id", "currency", "dropped_at"} <= set(
        records.filter(created=True).values_list("field", flat=True)
    )
    assert records.filter(field="cleared_at", created=False).exists()
    types = list(OutboxEvent.objects.order_by("id").values_list("type", flat=True))
    assert types.count("tracking.cart_updated") == 2 and types[-1] == "tracking.cart_cleared"


def test_get_unknown_customer_or_no_cart_is_not_found(api, buyer):
    assert api.get("customer-interaction/shop/cart/nobody").body == {
        "success": False,
        "errorMsg": "Not found",
    }
    assert api.get("customer-interaction/shop/cart/c-7").status == 404  # known customer, no cart yet
    assert api.get("customer-interaction/shop/cart/abc", {"by": "id"}).status == 404
    assert api.get("customer-interaction/shop/cart/c-7", {"by": "email"}).status == 400


def test_site_by_id_and_restricted_key(api, make_api, shop, buyer):
    item = {"offer": {"id": shop.tea.pk}, "quantity": 1}
    path = f"customer-interaction/{shop.site.pk}/cart/set"
    assert (
        cart_set(api, {"customer": {"externalId": "c-7"}, "items": [item]}, path, siteBy="id").status == 200
    )
    got = api.get(f"customer-interaction/{shop.site.pk}/cart/c-7", {"siteBy": "id"})
    assert got.status == 200 and got["cart"]["currency"] == shop.site.currency
    assert api.get("customer-interaction/shop/cart/c-7", {"siteBy": "uuid"}).status == 400
    assert api.get("customer-interaction/999999/cart/c-7", {"siteBy": "id"}).status == 400

    other_only = make_api(sites=["other"])
    denied = other_only.get("customer-interaction/shop/cart/c-7")
    assert denied.status == 403 and denied["errorMsg"] == "Access denied."
    assert cart_set(other_only, {"customer": {"externalId": "c-7"}}).status == 403
    assert other_only.post(CLEAR, {"cart": {"customer": {"externalId": "c-7"}}}).status == 403

    reader = make_api(scopes=["customer_read"], sites=["shop"])
    assert reader.get("customer-interaction/shop/cart/c-7").status == 200
    assert cart_set(reader, {"customer": {"externalId": "c-7"}}).status == 403
    assert make_api(scopes=["order_read"]).get("customer-interaction/shop/cart/c-7").status == 403


@pytest.mark.parametrize(
    ("cart", "field", "message"),
    [
        (
            {"customer": {"externalId": "ghost"}},
            "cart.customer.externalId",
            "Customer with externalId=ghost not found.",
        ),
        ({"customer": {"id": 10**30}}, "cart.customer.id", None),
        ({"customer": {"browserId": "b-1"}}, "cart.customer.browserId", None),
        ({"customer": ["c-7"]}, "cart.customer", None),
        ({"customer": {"externalId": {"$ne": 1}}}, "cart.customer.externalId", None),
        (
            {"items": [{"offer": {"externalId": "nope"}, "quantity": 1}]},
            "cart.items[0].offer.externalId",
            None,
        ),
        ({"items": [{"offer": {"id": 10**30}}]}, "cart.items[0].offer.id", None),
        ({"items": [{"offer": {"xmlId": ["x"]}}]}, "cart.items[0].offer.xmlId", None),
        ({"items": [{"quantity": 1}]}, "cart.items[0].offer", None),
        ({"items": ["tea"]}, "cart.items[0]", None),
        ({"items": "tea"}, "cart.items", None),
        ({"items": [{"offer": {"externalId": "tea-1"}, "quantity": 1e300}]}, "cart.items[0].quantity", None),
        ({"items": [{"offer": {"externalId": "tea-1"}, "quantity": 0}]}, "cart.items[0].quantity", None),
        ({"items": [{"offer": {"externalId": "tea-1"}, "quantity": "NaN"}]}, "cart.items[0].quantity", None),
        ({"items": [{"offer": {"externalId": "tea-1"}, "price": -1}]}, "cart.items[0].price", None),
        ({"items": [{"offer": {"externalId": "tea-1"}, "price": [1]}]}, "cart.items[0].price", None),
        ({"droppedAt": "yesterday"}, "cart.droppedAt", "This value is not a valid datetime."),
        ({"clearedAt": "2024-13-45 10:00:00+00:00"}, "cart.clearedAt", None),
        ({"droppedAt": {"date": "2024-01-01"}}, "cart.droppedAt", None),
        ({"currency": "euro"}, "cart.currency", None),
        ({"currency": "E1R"}, "cart.currency", None),
        ({"link": "x" * 2001}, "cart.link", None),
        ({"externalId": ["a"]}, "cart.externalId", None),
        ({"order": {"id": 123456}}, "cart.order.id", "Order with id=123456 not found."),
        ({"order": "5"}, "cart.order", None),
    ],
)
def test_set_validation_errors(api, shop, buyer, cart, field, message):
    body = {"customer": {"externalId": "c-7"}, **cart}
    result = cart_set(api, body)
    assert result.status == 400, result.body
    assert result["errorMsg"] == "Errors in the entity format"
    assert field in result["errors"], result.body
    if message:
        assert result["errors"][field] == message
    assert not Cart.objects.exists()


def test_foreign_offer_and_odd_envelopes(api, shop, buyer):
    foreign = cart_set(
        api, {"customer": {"externalId": "c-7"}, "items": [{"offer": {"id": shop.foreign_offer.pk}}]}
    )
    assert foreign.status == 400 and "cart.items[0].offer.id" in foreign["errors"]
    missing = api.post(SET, {})
    assert missing.status == 400 and missing["errorMsg"] == "Parameter 'cart' is missing"
    assert api.post(SET, {"cart": "[1, 2]"}).status == 400
    assert api.post(SET, {"cart": "{not json"}).status == 400
    assert api.post(CLEAR, {"cart": {"customer": {"externalId": "c-7"}, "clearedAt": "soon"}}).status == 400
    assert api.post("customer-interaction/nowhere/cart/set", {"cart": {"customer": {"id": 1}}}).status == 400
    # Nothing to clear is not an error: the module may clear a cart it never reported.
    assert api.post(CLEAR, {"cart": {"customer": {"externalId": "c-7"}}}).status == 200
    assert not Cart.objects.exists()


def test_form_array_items(api, shop, buyer):
    """The PHP modules may send the cart as bracketed form fields instead of JSON."""
    fields = {
        "cart[customer][externalId]": "c-7",
        "cart[items][0][offer][externalId]": "tea-1",
        "cart[items][0][quantity]": "3",
        "cart[items][0][price]": "440.5",
    }
    response = Client().post(f"/api/v5/{SET}", fields, HTTP_X_API_KEY=api.raw_key)
    assert response.status_code == 200, response.content
    item = Cart.objects.get().items.get()
    assert (item.offer_id, item.quantity, item.price) == (shop.tea.pk, Decimal("3"), Decimal("440.50"))


def test_official_python_client(api, shop, buyer, monkeypatch):
    """`retailcrm==5.3.0` `customer_interaction_cart*`, its requests routed into the test client."""
    django_client = Client()

    def respond(response):
        return SimpleNamespace(status_code=response.status_code, json=lambda: json.loads(response.content))

    def get(url, headers):
        parts = urlsplit(url)
        path = f"{parts.path}?{parts.query}" if parts.query else parts.path
        return respond(django_client.get(path, HTTP_X_API_KEY=headers["X-API-KEY"]))

    def post(url, data, headers):
        return respond(django_client.post(urlsplit(url).path, data, HTTP_X_API_KEY=headers["X-API-KEY"]))

    monkeypatch.setattr("retailcrm.versions.base.requests", SimpleNamespace(get=get, post=post))
    client = retailcrm.v5("https://lavka.test", api.raw_key)

    cart = {
        "customer": {"id": buyer.pk, "browserId": "b-1", "gaClientId": "ga-1"},
        "externalId": "py-1",
        "droppedAt": "2024-05-08 15:10:30+03:00",
        "items": [{"offer": {"externalId": "tea-1"}, "quantity": 2, "price": 24.99}],
    }
    assert client.customer_interaction_cart_set("shop", cart).is_successful()
    assert client.customer_interaction_cart_set(str(shop.site.pk), cart, siteBy="id").is_successful()
    got = client.customer_interaction_cart("shop", buyer.pk, uid_type="id")
    assert got.get_status_code() == 200
    assert got.get_response()["cart"]["items"][0]["price"] == 24.99
    assert client.customer_interaction_cart("shop", "c-7").get_response()["cart"]["externalId"] == "py-1"

    cleared = client.customer_interaction_cart_clear("shop", {"customer": {"externalId": "c-7"}})
    assert cleared.is_successful()
    assert client.customer_interaction_cart("shop", "c-7").get_response()["cart"]["items"] == []
    assert client.customer_interaction_cart("shop", "ghost").get_error_msg() == "Not found"
