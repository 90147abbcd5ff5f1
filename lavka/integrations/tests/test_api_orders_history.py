"""`orders/history` (§2.2.7): every change once, in id order, in retailCRM's record shape."""

import pytest

from lavka.core.models import CustomField, HistoryRecord
from lavka.orders import actions
from lavka.orders.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture
def changed_order(api, shop):
    """An order made through the API and then changed through the API and in the UI."""
    CustomField.objects.create(site=shop.site, entity="order", code="wrap", name="Wrap", type="boolean")
    created = api.post(
        "orders/create",
        {
            "site": "shop",
            "order": {
                "externalId": "h-1",
                "firstName": "Анна",
                "items": [{"offer": {"id": shop.tea.pk}, "quantity": 1}],
                "payments": [{"type": "cash", "amount": 100}],
            },
        },
    )
    assert created.status == 201, created.body
    order_id = created["id"]
    edits = [
        {"managerId": shop.alice.pk, "customFields": {"wrap": True}},
        {
            "items": [
                {"id": created["order"]["items"][0]["id"], "quantity": 3},
                {"offer": {"id": shop.cup.pk}},
            ]
        },
        {"status": "availability-confirmed"},
    ]
    for edit in edits:
        assert api.post(f"orders/{order_id}/edit", {"by": "id", "order": edit}).status == 200
    for n in range(6):  # enough changes for several pages of 20
        assert (
            api.post(f"orders/{order_id}/edit", {"by": "id", "order": {"managerComment": f"#{n}"}}).status
            == 200
        )
    payment_id = int(next(iter(api.get("orders/h-1", {"site": "shop"})["order"]["payments"])))
    assert (
        api.post(f"orders/payments/{payment_id}/edit", {"by": "id", "payment": {"status": "paid"}}).status
        == 200
    )
    order = Order.objects.get(pk=order_id)
    actions.change_status(order, "send-to-assembling", actor=shop.actor(shop.bob))
    # Gone since: the payment, and the tea line whose quantity changed above.
    assert api.post(f"orders/payments/{payment_id}/delete").status == 200
    items = api.get("orders/h-1", {"site": "shop"})["order"]["items"]
    cup_only = {"items": [{"id": i["id"]} for i in items if i["offer"]["id"] == shop.cup.pk]}
    assert api.post(f"orders/{order_id}/edit", {"by": "id", "order": cup_only}).status == 200
    return order


def read_all(client, limit=20, **flt):
    """Read the feed as the plugins do: move sinceId on, never send `page`."""
    since, seen = 0, []
    while True:
        params = {"filter[sinceId]": since, "limit": limit, **{f"filter[{k}]": v for k, v in flt.items()}}
        result = client.get("orders/history", params)
        assert result.status == 200, result.body
        if not result["history"]:
            assert result["pagination"]["totalPageCount"] == 0
            return seen
        assert result["pagination"]["currentPage"] == 1
        seen += result["history"]
        since = result["history"][-1]["id"]


def test_moving_since_id_returns_every_change_once_in_order(api, changed_order):
    records = read_all(api, limit=20)
    ids = [r["id"] for r in records]
    expected = list(HistoryRecord.objects.filter(entity="order").order_by("id").values_list("id", flat=True))
    assert ids == expected and len(set(ids)) == len(ids) > 20
    # Read again from the middle: the same records again, no more, no fewer.
    middle = ids[len(ids) // 2]
    again = api.get("orders/history", {"filter[sinceId]": middle, "limit": 100})["history"]
    assert [r["id"] for r in again] == [i for i in ids if i > middle]
    assert api.get("orders/history", {"filter[sinceId]": ids[-1]})["history"] == []


def test_since_id_with_page_is_refused(api, changed_order):
    result = api.get("orders/history", {"filter[sinceId]": 1, "page": 2})
    assert result.status == 400 and result["errorMsg"] == "Errors in the input parameters"
    assert api.get("orders/history", {"filter[sinceId]": "x"}).status == 400


def test_record_shapes(api, changed_order, shop):
    records = read_all(api, limit=100)
    by_field = {}
    for record in records:
        by_field.setdefault(record["field"], []).append(record)
    created = by_field["status"][0]
    assert (
        created["created"] is True and created["oldValue"] is None and created["newValue"] == {"code": "new"}
    )
    assert created["source"] == "api" and created["apiKey"] == {"current": True}
    assert created["order"]["externalId"] == "h-1" and created["order"]["items"]  # the full order
    moved = by_field["status"][1]
    assert "created" not in moved and (moved["oldValue"], moved["newValue"]) == (
        {"code": "new"},
        {"code": "availability-confirmed"},
    )
    assert moved["order"] == {
        "id": changed_order.pk,
        "externalId": "h-1",
        "managerId": shop.alice.pk,
        "site": "shop",
        "status": "send-to-assembling",
    }
    by_user = by_field["status"][2]
    assert by_user["source"] == "user" and by_user["user"] == {"id": shop.bob.pk} and "apiKey" not in by_user
    assert by_field["manager"][0]["newValue"] == {"id": shop.alice.pk}
    assert by_field["custom_wrap"][0]["newValue"] is True
    added = [r for r in by_field["order_product"] if r["oldValue"] is None and "created" not in r]
    assert [r["item"]["offer"]["id"] for r in added] == [shop.cup.pk]
    assert added[0]["newValue"] == {"id": added[0]["item"]["id"], "offer": added[0]["item"]["offer"]}
    quantity = by_field["order_product.quantity"][0]
    assert (quantity["oldValue"], quantity["newValue"]) == (1, 3) and quantity["item"]["offer"][
        "id"
    ] == shop.tea.pk
    paid = by_field["payments.status"][0]
    assert paid["newValue"] == {"code": "paid"} and paid["payment"] == {"id": paid["payment"]["id"]}
    removed_payment = by_field["payments"][-1]
    assert removed_payment["newValue"] is None and removed_payment["payment"]["type"] == "cash"
    [removed_line] = [r for r in by_field["order_product"] if r["newValue"] is None]
    assert removed_line["oldValue"]["offer"]["id"] == removed_line["item"]["offer"]["id"] == shop.tea.pk


def test_api_key_current_is_per_reading_key(api, changed_order, make_api):
    other = make_api(name="another")
    mine = [r for r in read_all(api) if r["source"] == "api"]
    theirs = [r for r in read_all(other) if r["source"] == "api"]
    assert mine and all(r["apiKey"] == {"current": True} for r in mine)
    assert [r["id"] for r in theirs] == [r["id"] for r in mine]
    assert all(r["apiKey"] == {"current": False} for r in theirs)


def test_filters_by_order_and_by_the_keys_sites(api, changed_order, shop, make_api):
    api.post("orders/create", {"site": "shop", "order": {"externalId": "h-2", "firstName": "Б"}})
    first = {r["order"]["id"] for r in read_all(api, orderId=changed_order.pk)}
    assert first == {changed_order.pk}
    assert {r["order"]["id"] for r in read_all(api, orderExternalId="h-2")} == {
        Order.objects.get(external_id="h-2").pk
    }
    assert read_all(make_api(sites=["other"])) == []
    assert len(read_all(make_api(sites=["shop"]))) == HistoryRecord.objects.filter(entity="order").count()
