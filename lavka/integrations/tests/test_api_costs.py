"""API v5 costs (§2.10) and the cost group / cost item reference books (§2.4)."""

import pytest

from lavka.analytics.models import Cost
from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.actions import CustomerData
from lavka.orders.actions import ItemData, OrderData, create_order

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


@pytest.fixture
def items(api):
    assert api.post("reference/cost-groups/ads/edit", {"costGroup": {"name": "Реклама"}}).status == 201
    assert (
        api.post("reference/cost-items/direct/edit", {"costItem": {"name": "Директ", "group": "ads"}}).status
        == 201
    )
    assert (
        api.post("reference/cost-items/vk/edit", {"costItem": {"name": "VK", "group": "ads"}}).status == 201
    )


def new_cost(client, **fields):
    cost = {"dateFrom": "2030-01-01", "dateTo": "2030-01-31", "summ": 100, "costItem": "direct", **fields}
    result = client.post("costs/create", {"cost": cost, "site": fields.pop("site", "shop")})
    assert result.status == 201, result.body
    return result["id"]


def test_reference_books_upsert_by_code(api):
    assert (
        api.post("reference/cost-groups/ads/edit", {"costGroup": {"name": "Реклама", "ordering": 5}}).status
        == 201
    )
    assert api.post("reference/cost-groups/ads/edit", {"costGroup": {"name": "Маркетинг"}}).status == 200
    assert api.get("reference/cost-groups")["costGroups"] == [
        {"code": "ads", "name": "Маркетинг", "ordering": 5, "active": True}
    ]
    created = api.post(
        "reference/cost-items/seo/edit", {"costItem": {"name": "SEO", "group": "ads", "active": 0}}
    )
    assert created.status == 201
    item = api.get("reference/cost-items")["costItems"][0]
    assert item["code"] == "seo" and item["group"] == "ads" and item["active"] is False

    unknown = api.post("reference/cost-items/x/edit", {"costItem": {"name": "X", "group": "nope"}})
    assert unknown.status == 400 and list(unknown.body["errors"]) == ["costItem.group"]
    no_group = api.post("reference/cost-items/y/edit", {"costItem": {"name": "Y"}})
    assert no_group.status == 400 and "costItem.group" in no_group.body["errors"]
    no_name = api.post("reference/cost-groups/z/edit", {"costGroup": {}})
    assert no_name.status == 400 and "costGroup.name" in no_name.body["errors"]


def test_create_and_get(shop, api, items):
    order = create_order(
        shop.site,
        OrderData(new_customer=CustomerData(first_name="Анна"), items=[ItemData(offer_id=shop.tea.pk)]),
        actor=SYSTEM,
    )
    cost_id = new_cost(
        api,
        summ="1500.50",
        comment="январь",
        order={"number": order.number},
        source={"source": "yandex", "medium": "cpc", "campaign": "tea"},
    )
    cost = api.get(f"costs/{cost_id}")["cost"]
    assert cost["dateFrom"] == "2030-01-01" and cost["dateTo"] == "2030-01-31"
    assert cost["summ"] == 1500.5 and cost["costItem"] == "direct" and cost["comment"] == "январь"
    assert cost["order"] == {"id": order.pk, "number": order.number}
    assert cost["sites"] == ["shop"] and cost["createdAt"]
    assert cost["source"] == {"source": "yandex", "medium": "cpc", "campaign": "tea"}
    assert Cost.objects.get().created_by_api_key == api.key
    assert HistoryRecord.objects.filter(entity="cost", entity_id=cost_id, created=True).exists()
    assert OutboxEvent.objects.filter(type="analytics.cost_created").count() == 1


def test_create_validation(shop, api, items):
    unknown = api.post(
        "costs/create",
        {"cost": {"dateFrom": "2030-01-01", "dateTo": "2030-01-02", "summ": 1, "costItem": "tv"}},
    )
    assert unknown.status == 400
    assert unknown.body["errors"] == {"cost.costItem": "Cost item with code 'tv' not found."}
    backwards = api.post(
        "costs/create",
        {"cost": {"dateFrom": "2030-02-01", "dateTo": "2030-01-01", "summ": 1, "costItem": "vk"}},
    )
    assert backwards.status == 400 and "cost.dateTo" in backwards.body["errors"]
    negative = api.post(
        "costs/create",
        {"cost": {"dateFrom": "2030-01-01", "dateTo": "2030-01-01", "summ": -5, "costItem": "vk"}},
    )
    assert negative.status == 400 and "cost.summ" in negative.body["errors"]
    assert not Cost.objects.exists()


def test_edit_and_delete_one(shop, api, items):
    cost_id = new_cost(api)
    edited = api.post(f"costs/{cost_id}/edit", {"cost": {"id": cost_id, "summ": 250, "costItem": "vk"}})
    assert edited.status == 200 and edited.body == {"success": True, "id": cost_id}
    cost = api.get(f"costs/{cost_id}")["cost"]
    assert cost["summ"] == 250 and cost["costItem"] == "vk" and cost["dateFrom"] == "2030-01-01"
    assert OutboxEvent.objects.get(type="analytics.cost_updated").payload["fields"] == ["cost_item", "summ"]
    assert api.post(f"costs/{cost_id}/delete").body == {"success": True}
    assert api.get(f"costs/{cost_id}").status == 404
    assert HistoryRecord.objects.filter(entity="cost", entity_id=cost_id, field="deleted").exists()


def test_list_filters(shop, api, items):
    small = new_cost(api, summ=10, costItem="vk")
    big = new_cost(api, summ=1000, dateFrom="2030-02-01", dateTo="2030-02-28")
    elsewhere = new_cost(api, summ=50, site="other")

    def ids(params):
        result = api.get("costs", params)
        assert result.status == 200, result.body
        return [c["id"] for c in result["costs"]]

    assert ids({}) == [big, elsewhere, small]
    assert ids({"filter[costItems][]": ["vk"]}) == [small]
    assert ids({"filter[minSumm]": "50"}) == [big, elsewhere]
    assert ids({"filter[sites][]": ["other"]}) == [elsewhere]
    assert ids({"filter[dateFrom]": "2030-02-01"}) == [big]
    assert ids({"filter[costGroups][]": ["ads"], "filter[maxSumm]": "10"}) == [small]
    assert api.get("costs", {"filter[minSumm]": "lots"}).status == 400


def test_delete_many_takes_json_or_form_ids(shop, api, items):
    a, b, c = new_cost(api), new_cost(api), new_cost(api)
    result = api.post("costs/delete", {"ids": [a, b, 999999]})
    assert result.body == {"success": True, "count": 2, "notRemovedIds": [999999]}
    # The PHP client sends a form array.
    response = api.client.post("/api/v5/costs/delete", {"ids[0]": str(c)}, HTTP_X_API_KEY=api.raw_key)
    assert response.json() == {"success": True, "count": 1, "notRemovedIds": []}
    assert not Cost.objects.exists()
    assert api.post("costs/delete", {}).body["errorMsg"] == "Parameter 'ids' is missing"
    assert api.post("costs/delete", {"ids": '[1, "x"]'}).status == 400


def test_upload_is_all_or_nothing(shop, api, items):
    good = {"dateFrom": "2030-01-01", "dateTo": "2030-01-31", "summ": 5, "costItem": "vk"}
    result = api.post("costs/upload", {"costs": [good, {**good, "summ": 7}]})
    assert result.status == 201
    assert result["uploadedCosts"] == sorted(Cost.objects.values_list("id", flat=True))
    bad = api.post("costs/upload", {"costs": [good, {**good, "costItem": "tv"}, "junk"]})
    assert bad.status == 400 and set(bad.body["errors"]) == {"costs[1].costItem", "costs[2]"}
    assert Cost.objects.count() == 2


def test_scopes(shop, make_api, api, items):
    reader = make_api(name="reader", scopes=["cost_read"])
    cost = {"dateFrom": "2030-01-01", "dateTo": "2030-01-01", "summ": 1, "costItem": "vk"}
    assert reader.post("costs/create", {"cost": cost, "site": "shop"}).status == 403
    assert reader.get("reference/cost-items").status == 403
    assert (
        make_api(name="refs", scopes=["reference_read"])
        .post("reference/cost-groups/g/edit", {"costGroup": {"name": "G"}})
        .status
        == 403
    )


def test_site_limited_key(shop, api, make_api, items):
    own = new_cost(api)
    foreign = new_cost(api, site="other")
    shared = new_cost(api, sites=["shop", "other"])
    limited = make_api(name="shop only", sites=["shop"])
    assert [c["id"] for c in limited.get("costs")["costs"]] == [own]
    assert limited.get(f"costs/{foreign}").status == 403
    assert limited.get(f"costs/{shared}").status == 403
    assert limited.post(f"costs/{foreign}/edit", {"cost": {"summ": 1}}).status == 403
    assert limited.post("costs/delete", {"ids": [own, foreign]}).body["notRemovedIds"] == [foreign]
    cost = {"dateFrom": "2030-01-01", "dateTo": "2030-01-01", "summ": 1, "costItem": "vk", "sites": ["other"]}
    assert limited.post("costs/create", {"cost": cost}).status == 403
    # Without sites, the key's own site.
    created = limited.post("costs/create", {"cost": {**cost, "sites": None}})
    assert api.get(f"costs/{created['id']}")["cost"]["sites"] == ["shop"]
