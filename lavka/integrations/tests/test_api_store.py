"""Store (§2.5): stock uploads into the ledger, inventories, prices, products and offers."""

from decimal import Decimal

import pytest

from lavka.catalog.models import OfferPrice, PriceType
from lavka.core.models import OutboxEvent
from lavka.inventory.models import StockLevel, StockMovement, Warehouse

pytestmark = pytest.mark.django_db


@pytest.fixture
def bound(shop):
    """The shop's offers with the IDs a store module binds them by."""
    shop.tea.external_id, shop.tea.xml_id = "tea-1", "x-tea"
    shop.tea.save()
    shop.cup.external_id = "cup-1"
    shop.cup.save()
    shop.foreign_offer.external_id = "tea-1"  # the same externalId on the other site
    shop.foreign_offer.save()
    return shop


def upload(api, offers, **extra):
    return api.post("store/inventories/upload", {"offers": offers, **extra})


def test_upload_sets_stock_through_movements(api, bound):
    first = upload(
        api,
        [
            {"externalId": "tea-1", "stores": [{"code": "main", "available": 7, "purchasePrice": 210}]},
            {"id": bound.cup.pk, "stores": [{"code": "main", "available": "3"}]},
        ],
        site="shop",
    )
    assert first.status == 200 and first.body == {
        "success": True,
        "processedOffersCount": 2,
        "notFoundOffers": [],
    }
    level = StockLevel.objects.get(offer=bound.tea, warehouse__code="main")
    assert level.quantity == 7 and level.purchase_price == 210
    bound.tea.refresh_from_db()
    assert bound.tea.purchase_price == 210  # order lines copy it

    assert (
        upload(api, [{"xmlId": "x-tea", "stores": [{"code": "main", "available": 4}]}], site="shop").status
        == 200
    )
    assert (
        upload(api, [{"xmlId": "x-tea", "stores": [{"code": "main", "available": 4}]}], site="shop").status
        == 200
    )
    moves = list(
        StockMovement.objects.filter(offer=bound.tea).values_list("delta", "quantity_after", "source")
    )
    assert moves == [
        (Decimal(7), Decimal(7), "api"),
        (Decimal(-3), Decimal(4), "api"),
    ]  # the repeat moved nothing
    assert StockLevel.objects.get(offer=bound.tea).quantity == sum(m[0] for m in moves)
    assert OutboxEvent.objects.filter(type="inventory.stock_changed").count() == 3


def test_unknown_offers_are_reported_not_failed(api, bound):
    result = upload(
        api,
        [
            {"externalId": "nope", "stores": [{"code": "main", "available": 1}]},
            {"id": 999999, "stores": [{"code": "main", "available": 1}]},
            {"externalId": "tea-1", "stores": [{"code": "main", "available": 2}]},
        ],
    )
    # Without a site, `tea-1` names offers on two sites, so it names none.
    assert result.status == 200 and result["processedOffersCount"] == 0
    assert result["notFoundOffers"] == [{"externalId": "nope"}, {"id": 999999}, {"externalId": "tea-1"}]
    assert not StockMovement.objects.exists()


def test_a_bad_item_writes_nothing(api, bound):
    Warehouse.objects.create(code="shelf", name="Полка")
    for stores, field in [
        ([{"code": "cellar", "available": 1}], "offers[1].stores[0].code"),
        ([{"code": "main", "available": -1}], "offers[1].stores[0].available"),
        ([{"code": "main", "available": "lots"}], "offers[1].stores[0].available"),
        ([{"code": "main"}], "offers[1].stores[0].available"),
        ([{"code": "shelf", "available": "1.5"}], "offers[1].stores"),  # whole units only
        ("many", "offers[1].stores"),
    ]:
        result = upload(
            api,
            [
                {"externalId": "tea-1", "stores": [{"code": "main", "available": 5}]},
                {"externalId": "cup-1", "stores": stores},
            ],
            site="shop",
        )
        assert result.status == 400 and result["errorMsg"] == "Errors in the entity format"
        assert list(result["errors"]) == [field]
    assert not StockMovement.objects.exists() and not StockLevel.objects.exists()


def test_upload_input_checks(api, bound):
    assert api.post("store/inventories/upload", {}).body["errorMsg"] == "Parameter 'offers' is missing"
    assert api.post("store/inventories/upload", {"offers": {"a": 1}}).status == 400
    assert upload(api, ["x"]).status == 400
    too_many = upload(api, [{"id": 1, "stores": []}] * 251)
    assert too_many.status == 400 and "offers" in too_many["errors"]


def test_a_site_limited_key_cannot_touch_other_sites(make_api, bound):
    client = make_api(scopes=["store_read", "store_write"], sites=["shop"])
    result = upload(client, [{"id": bound.foreign_offer.pk, "stores": [{"code": "main", "available": 1}]}])
    assert result["notFoundOffers"] == [{"id": bound.foreign_offer.pk}]
    denied = upload(client, [{"id": bound.tea.pk, "stores": []}], site="other")
    assert denied.status == 403
    assert client.get("store/inventories", {"filter[sites][]": "other"}).status == 403
    listed = client.get("store/inventories")["offers"]
    assert {o["id"] for o in listed} == {bound.tea.pk, bound.cup.pk}


def test_inventories_list(api, bound):
    second = Warehouse.objects.create(code="second", name="Второй")
    upload(
        api,
        [
            {
                "id": bound.tea.pk,
                "stores": [{"code": "main", "available": 7}, {"code": second.code, "available": 2}],
            }
        ],
    )
    plain = api.get("store/inventories", {"filter[offerExternalId]": "tea-1", "limit": 250})
    assert plain["pagination"]["limit"] == 250
    by_id = {o["id"]: o for o in plain["offers"]}
    assert by_id[bound.tea.pk] == {
        "id": bound.tea.pk,
        "externalId": "tea-1",
        "xmlId": "x-tea",
        "site": "shop",
        "purchasePrice": 200,
        "quantity": 9,
    }
    assert by_id[bound.foreign_offer.pk]["quantity"] == 0
    detailed = api.get("store/inventories", [("filter[ids][]", bound.tea.pk), ("filter[details]", "1")])
    assert detailed["offers"][0]["stores"] == [
        {"store": "main", "quantity": 7},
        {"store": "second", "quantity": 2},
    ]
    for bad_filter in ({"filter[ids][]": "x"}, {"filter[offerExternalId]": "a\x00"}):
        bad = api.get("store/inventories", bad_filter)
        assert bad.status == 400 and bad["errorMsg"] == "Errors in the input parameters"


def test_prices_upload(api, bound):
    api.post("reference/price-types/sale/edit", {"priceType": {"name": "Распродажа"}})
    result = api.post(
        "store/prices/upload",
        {
            "prices": [
                {
                    "externalId": "tea-1",
                    "site": "shop",
                    "prices": [{"code": "base", "price": 470}, {"code": "sale", "price": "399.90"}],
                },
                {"xmlId": "nope", "site": "shop", "prices": [{"code": "base", "price": 1}]},
            ]
        },
    )
    assert result.status == 200
    assert result.body == {"success": True, "processedOffersCount": 1, "notFoundOffers": [{"xmlId": "nope"}]}
    bound.tea.refresh_from_db()
    assert bound.tea.price == 470
    assert OfferPrice.objects.get(offer=bound.tea, price_type__code="sale").price == Decimal("399.90")
    removed = api.post(
        "store/prices/upload",
        {"prices": [{"id": bound.tea.pk, "prices": [{"code": "sale", "remove": True}]}]},
    )
    assert removed["processedOffersCount"] == 1 and not OfferPrice.objects.exists()


def test_prices_upload_checks_every_entry_first(api, bound):
    for entry, field in [
        ({"code": "wholesale", "price": 1}, "prices[1].prices[0].code"),
        ({"code": "base", "price": "-5"}, "prices[1].prices[0].price"),
        ({"code": "base", "price": "1.001"}, "prices[1].prices[0].price"),
        ({"code": "base", "remove": True}, "prices[1].prices[0].remove"),
    ]:
        result = api.post(
            "store/prices/upload",
            {
                "prices": [
                    {"id": bound.tea.pk, "prices": [{"code": "base", "price": 1}]},
                    {"id": bound.cup.pk, "prices": [entry]},
                ]
            },
        )
        assert result.status == 400 and list(result["errors"]) == [field]
    bound.tea.refresh_from_db()
    assert bound.tea.price == Decimal("450.00")


def test_products_embed_offers_with_prices_and_stock(api, bound):
    PriceType.objects.create(code="sale", name="Распродажа", ordering=5)
    api.post(
        "store/prices/upload", {"prices": [{"id": bound.tea.pk, "prices": [{"code": "sale", "price": 400}]}]}
    )
    upload(api, [{"id": bound.tea.pk, "stores": [{"code": "main", "available": 5}]}])
    result = api.get("store/products", {"filter[offerExternalId]": "tea-1", "filter[sites][]": "shop"})
    assert result.status == 200 and result["pagination"]["totalCount"] == 1
    product = result["products"][0]
    assert product["id"] == bound.tea.product_id and product["quantity"] == 5
    assert product["minPrice"] == product["maxPrice"] == 450
    assert product["groups"] == [{"id": bound.tea.product.category_id}]
    offer = product["offers"][0]
    assert offer["externalId"] == "tea-1" and offer["quantity"] == 5 and offer["price"] == 450
    assert offer["prices"] == [
        {"priceType": "base", "price": 450, "ordering": 0, "currency": "RUB"},
        {"priceType": "sale", "price": 400, "ordering": 5, "currency": "RUB"},
    ]
    by_name = api.get("store/products", {"filter[name]": "Чаш"})["products"]
    assert [p["name"] for p in by_name] == ["Чашка"]


def test_offers_list(api, bound):
    result = api.get("store/offers", [("filter[externalIds][]", "cup-1")])
    assert [(o["id"], o["site"]) for o in result["offers"]] == [(bound.cup.pk, "shop")]


def test_store_scopes(make_api, bound):
    reader = make_api(scopes=["store_read"])
    assert reader.get("store/inventories").status == 200
    assert upload(reader, [{"id": bound.tea.pk, "stores": []}]).status == 403
    assert reader.post("store/prices/upload", {"prices": []}).status == 403
    assert make_api(name="x", scopes=["order_read"]).get("store/products").status == 403


def test_prices_upload_takes_old_woocommerce_batches(api, bound):
    """Woo < 4.6 sends `prices` as one object and the externalId as a number, in chunks of 250."""
    api.post("reference/price-types/woo-promotion-lp/edit", {"priceType": {"name": "Акция"}})
    bound.cup.external_id = "17"
    bound.cup.save()
    chunk = [{"externalId": 17, "site": "shop", "prices": {"code": "woo-promotion-lp", "price": 99.5}}]
    chunk += [
        {"externalId": 1000 + n, "site": "shop", "prices": {"code": "woo-promotion-lp", "price": 1}}
        for n in range(249)
    ]
    result = api.post("store/prices/upload", {"prices": chunk, "site": "shop"})
    assert result.status == 200, result.body
    assert result["processedOffersCount"] == 1 and len(result["notFoundOffers"]) == 249
    assert OfferPrice.objects.get(offer=bound.cup, price_type__code="woo-promotion-lp").price == Decimal(
        "99.5"
    )
    too_many = api.post("store/prices/upload", {"prices": chunk + chunk[:1]})
    assert too_many.status == 400 and "prices" in too_many["errors"]
