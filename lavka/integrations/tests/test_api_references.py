"""Reference books (§2.4): the keyed-or-list shape per book, upsert by code, validation, scopes."""

import pytest

from lavka.catalog.models import PriceType
from lavka.core.models import Site
from lavka.inventory.models import Warehouse
from lavka.orders.models import DeliveryType, OrderType, Status

pytestmark = pytest.mark.django_db

KEYED, LIST = dict, list
BOOKS = [
    ("statuses", "statuses", KEYED),
    ("status-groups", "statusGroups", KEYED),
    ("order-types", "orderTypes", KEYED),
    ("order-methods", "orderMethods", KEYED),
    ("delivery-types", "deliveryTypes", KEYED),
    ("delivery-services", "deliveryServices", KEYED),
    ("payment-types", "paymentTypes", KEYED),
    ("payment-statuses", "paymentStatuses", KEYED),
    ("product-statuses", "productStatuses", KEYED),
    ("sites", "sites", KEYED),
    ("units", "units", KEYED),
    ("stores", "stores", LIST),
    ("price-types", "priceTypes", LIST),
    ("countries", "countriesIso", LIST),
    ("couriers", "couriers", LIST),
    ("legal-entities", "legalEntities", LIST),
    ("currencies", "currencies", LIST),
    ("mg-channels", "mgChannels", LIST),
]


@pytest.mark.parametrize(("book", "key", "shape"), BOOKS)
def test_each_book_has_its_payload_key_and_shape(api, book, key, shape):
    result = api.get(f"reference/{book}")
    assert result.status == 200 and result["success"] is True
    assert isinstance(result[key], shape)
    if shape is KEYED:
        # Keyed by code: every entry's own code is its key.
        assert all(code == entry["code"] for code, entry in result[key].items())


def test_keyed_books_carry_the_spec_fields(api):
    statuses = api.get("reference/statuses")["statuses"]
    assert statuses["new"] == {"name": "Новый", "code": "new", "active": True, "ordering": 0, "group": "new"}
    groups = api.get("reference/status-groups")["statusGroups"]
    assert "complete" in groups["complete"]["statuses"] and groups["new"]["process"] is True
    assert groups["cancel"]["process"] is False
    delivery = api.get("reference/delivery-types")["deliveryTypes"]["courier"]
    assert delivery["defaultCost"] == 300 and "cash" in delivery["paymentTypes"]
    assert {"code": "cash", "cod": False} in delivery["deliveryPaymentTypes"]
    payment = api.get("reference/payment-types")["paymentTypes"]["cash"]
    assert "courier" in payment["deliveryTypes"] and "paid" in payment["paymentStatuses"]
    assert api.get("reference/payment-statuses")["paymentStatuses"]["paid"]["paymentComplete"] is True
    assert api.get("reference/order-methods")["orderMethods"]["phone"]["defaultForCrm"] is True
    assert api.get("reference/countries")["countriesIso"] == ["RU"]
    currencies = api.get("reference/currencies")["currencies"]
    assert currencies == [{"id": 1, "code": "RUB", "isBase": True, "isAutoConvert": False}]
    price_types = api.get("reference/price-types")["priceTypes"]
    assert [(t["code"], t["default"]) for t in price_types] == [("base", True)]
    assert api.get("reference/stores")["stores"][0]["code"] == "main"


def test_a_key_sees_only_its_sites(make_api):
    client = make_api(scopes=["reference_read"], sites=["shop"])
    assert list(client.get("reference/sites")["sites"]) == ["shop"]


def test_status_upsert_creates_then_updates(api):
    created = api.post(
        "reference/statuses/packed/edit", {"status": {"name": "Упакован", "group": "assembling"}}
    )
    assert created.status == 201 and created.body == {"success": True}
    status = Status.objects.get(code="packed")
    assert status.group.code == "assembling" and status.name == "Упакован"
    updated = api.post("reference/statuses/packed/edit", {"status": {"name": "Собран", "active": "0"}})
    assert updated.status == 200
    status.refresh_from_db()
    assert status.name == "Собран" and status.is_active is False and status.group.code == "assembling"
    assert api.get("reference/statuses")["statuses"]["packed"]["active"] is False


def test_a_new_status_needs_a_known_group(api):
    missing = api.post("reference/statuses/packed/edit", {"status": {"name": "Упакован"}})
    assert missing.status == 400 and missing["errorMsg"] == "Errors in the entity format"
    assert "status.group" in missing["errors"]
    unknown = api.post("reference/statuses/packed/edit", {"status": {"name": "x", "group": "nope"}})
    assert unknown.status == 400 and unknown["errors"] == {"status.group": "Status group 'nope' not found."}
    assert not Status.objects.filter(code="packed").exists()


def test_entity_values_are_checked_and_named(api):
    result = api.post(
        "reference/order-types/b2b/edit",
        {"orderType": {"name": "x" * 300, "active": "maybe", "ordering": -1}},
    )
    assert result.status == 400
    assert set(result["errors"]) == {"orderType.name", "orderType.active", "orderType.ordering"}
    blank = api.post("reference/order-types/b2b/edit", {"orderType": {"active": True}})
    assert blank.status == 400 and "orderType.name" in blank["errors"]
    bad_code = api.post("reference/order-types/with space/edit", {"orderType": {"name": "B2B"}})
    assert bad_code.status == 400 and "orderType.code" in bad_code["errors"]
    nul = api.post("reference/order-types/a%00b/edit", {"orderType": {"name": "B2B"}})
    # A NUL in the path is refused before any endpoint runs.
    assert nul.status == 400 and nul["errors"] == {"children[path]": "This value contains a NUL character."}
    missing = api.post("reference/order-types/b2b/edit", {})
    assert missing.status == 400 and missing["errorMsg"] == "Parameter 'orderType' is missing"
    assert not OrderType.objects.filter(code="b2b").exists()


def test_default_flags_stay_exclusive(api):
    assert (
        api.post(
            "reference/order-types/b2b/edit", {"orderType": {"name": "B2B", "defaultForApi": True}}
        ).status
        == 201
    )
    assert list(OrderType.objects.filter(default_for_api=True).values_list("code", flat=True)) == ["b2b"]


def test_delivery_type_cost(api):
    assert (
        api.post("reference/delivery-types/courier/edit", {"deliveryType": {"defaultCost": "450.50"}}).status
        == 200
    )
    assert DeliveryType.objects.get(code="courier").default_cost == 450.50
    bad = api.post("reference/delivery-types/courier/edit", {"deliveryType": {"defaultCost": "-1"}})
    assert bad.status == 400 and "deliveryType.defaultCost" in bad["errors"]


def test_site_edit_reads_the_site_object(api):
    result = api.post(
        "reference/sites/shop/edit", {"site": {"code": "shop", "ymlUrl": "https://tea.example/icml.xml"}}
    )
    assert result.status == 200
    site = api.get("reference/sites")["sites"]["shop"]
    assert site["ymlUrl"] == "https://tea.example/icml.xml" and site["name"] == "Чайная лавка"
    created = api.post(
        "reference/sites/third/edit", {"site": {"name": "Третий", "currency": "eur", "countryIso": "de"}}
    )
    assert created.status == 201
    third = Site.objects.get(code="third")
    assert (third.currency, third.country) == ("EUR", "DE")
    bad = api.post("reference/sites/third/edit", {"site": {"url": "not a url"}})
    assert bad.status == 400 and "site.url" in bad["errors"]


def test_site_edit_respects_site_access(make_api):
    client = make_api(scopes=["reference_write"], sites=["shop"])
    assert client.post("reference/sites/shop/edit", {"site": {"name": "Лавка"}}).status == 200
    assert client.post("reference/sites/other/edit", {"site": {"name": "x"}}).status == 403
    assert client.post("reference/sites/new/edit", {"site": {"name": "x"}}).status == 403
    assert not Site.objects.filter(code="new").exists()


def test_store_upsert(api):
    store = {
        "name": "Склад 2",
        "type": "store-type-retail",
        "address": {"text": "Москва"},
        "phone": {"number": "+7"},
    }
    assert api.post("reference/stores/second/edit", {"store": store}).status == 201
    assert api.post("reference/stores/second/edit", {"store": {"inventoryType": "fractional"}}).status == 200
    listed = {s["code"]: s for s in api.get("reference/stores")["stores"]}
    assert listed["second"]["address"] == {"text": "Москва"} and listed["second"]["phone"] == {"number": "+7"}
    assert listed["second"]["inventoryType"] == "fractional"
    bad = api.post("reference/stores/third/edit", {"store": {"name": "x", "type": "cellar", "email": "nope"}})
    assert bad.status == 400 and set(bad["errors"]) == {"store.type"}
    bad_email = api.post("reference/stores/third/edit", {"store": {"name": "x", "email": "nope"}})
    assert bad_email.status == 400 and set(bad_email["errors"]) == {"store.email"}
    assert not Warehouse.objects.filter(code="third").exists()


def test_price_type_upsert_accepts_the_python_clients_field(api):
    assert api.post("reference/price-types/sale/edit", {"priceTypes": {"name": "Распродажа"}}).status == 201
    assert api.post("reference/price-types/sale/edit", {"priceType": {"active": False}}).status == 200
    sale = PriceType.objects.get(code="sale")
    assert sale.name == "Распродажа" and not sale.is_active and not sale.is_default
    moved = api.post("reference/price-types/sale/edit", {"priceType": {"default": True}})
    assert moved.status == 400 and "priceType.default" in moved["errors"]


def test_scopes(make_api):
    reader = make_api(scopes=["reference_read"])
    assert reader.get("reference/statuses").status == 200
    denied = reader.post("reference/statuses/x/edit", {"status": {"name": "x", "group": "new"}})
    assert denied.status == 403 and denied["errorMsg"] == "Access denied."
    assert make_api(name="other", scopes=["order_read"]).get("reference/statuses").status == 403


@pytest.mark.django_db
def test_site_addresses_on_hosts_without_a_domain_are_taken(api):
    """WooCommerce rewrites `ymlUrl` to its own address, which inside Docker is `http://shop/…`."""
    taken = api.post(
        "reference/sites/shop/edit",
        {"site": {"name": "Shop", "url": "http://shop:8080", "ymlUrl": "http://shop/simla.xml"}},
    )
    assert taken.status == 200, taken.body
    site = api.get("reference/sites")["sites"]["shop"]
    assert (site["url"], site["ymlUrl"]) == ("http://shop:8080", "http://shop/simla.xml")
    for bad in ("ftp://shop/feed.xml", "shop/simla.xml", "http:///feed.xml", "http://sh op/x"):
        refused = api.post("reference/sites/shop/edit", {"site": {"ymlUrl": bad}})
        assert refused.status == 400 and "site.ymlUrl" in refused["errors"], (bad, refused.body)
