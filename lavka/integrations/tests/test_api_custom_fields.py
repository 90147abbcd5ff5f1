"""Custom fields and dictionaries (§2.9): account-wide in the API, one row per site in Lavka."""

import pytest

from lavka.core.models import CustomDictionary, CustomField
from lavka.core.validation import clean_custom_fields

pytestmark = pytest.mark.django_db

FIELD = {"code": "gift", "name": "Подарок", "type": "boolean", "inFilter": True, "ordering": 5}


def test_create_get_list_edit(api, shop):
    created = api.post("custom-fields/order/create", {"customField": FIELD})
    assert created.status == 201 and created.body == {"success": True, "code": "gift"}
    # One field for the API, a row on each site for Lavka, where orders can use it at once.
    assert CustomField.objects.filter(code="gift", entity="order").count() == 2
    assert clean_custom_fields(shop.other_site, "order", {"gift": "1"}) == {"gift": True}

    field = api.get("custom-fields/order/gift")["customField"]
    assert field == {
        "code": "gift",
        "name": "Подарок",
        "entity": "order",
        "type": "boolean",
        "required": False,
        "inFilter": True,
        "inList": False,
        "inGroupActions": False,
        "ordering": 5,
        "displayArea": "customer",
        "viewMode": "editable",
        "viewModeMobile": "editable",
    }
    listed = api.get("custom-fields", {"filter[entity]": "order", "limit": 250})
    assert [f["code"] for f in listed["customFields"]] == ["gift"]
    assert listed["pagination"] == {"limit": 250, "totalCount": 1, "currentPage": 1, "totalPageCount": 1}

    edited = api.post(
        "custom-fields/order/gift/edit", {"customField": {"name": "Упаковка", "required": True}}
    )
    assert edited.status == 200 and edited.body == {"success": True, "code": "gift"}
    assert set(CustomField.objects.filter(code="gift").values_list("name", "required")) == {
        ("Упаковка", True)
    }


def test_list_filters(api):
    api.post("custom-fields/order/create", {"customField": FIELD})
    api.post(
        "custom-fields/customer/create", {"customField": {"code": "nps", "name": "NPS", "type": "integer"}}
    )
    assert [f["code"] for f in api.get("custom-fields")["customFields"]] == ["gift", "nps"]
    assert [f["code"] for f in api.get("custom-fields", {"filter[entity]": "customer"})["customFields"]] == [
        "nps"
    ]
    assert [f["code"] for f in api.get("custom-fields", {"filter[type][]": "boolean"})["customFields"]] == [
        "gift"
    ]
    assert api.get("custom-fields", {"filter[name]": "NP"})["customFields"][0]["code"] == "nps"
    assert api.get("custom-fields", {"filter": "None"}).status == 200


def test_a_site_limited_key_adds_the_field_to_its_sites(make_api, shop):
    client = make_api(scopes=["custom_fields_read", "custom_fields_write"], sites=["shop"])
    assert client.post("custom-fields/customer/create", {"customField": FIELD}).status == 201
    assert list(CustomField.objects.values_list("site__code", flat=True)) == ["shop"]


def test_validation(api):
    assert api.post("custom-fields/order/create", {"customField": FIELD}).status == 201
    duplicate = api.post("custom-fields/order/create", {"customField": FIELD})
    assert duplicate.status == 400 and duplicate["errors"] == {
        "customField.code": "A custom field with this code already exists."
    }
    cases = [
        ({**FIELD, "code": "x", "type": "colour"}, "customField.type"),
        ({**FIELD, "code": ""}, "customField.code"),
        ({**FIELD, "code": "bad code"}, "customField.code"),
        ({**FIELD, "code": "x", "name": ""}, "customField.name"),
        ({"code": "x", "name": "X"}, "customField.type"),
        ({**FIELD, "code": "x", "type": "dictionary", "dictionary": "none"}, "customField.dictionary"),
        ({**FIELD, "code": "x", "type": "dictionary"}, "customField.type"),
        ({**FIELD, "code": "x", "displayArea": "sidebar"}, "customField.displayArea"),
    ]
    for field, key in cases:
        result = api.post("custom-fields/order/create", {"customField": field})
        assert result.status == 400 and result["errorMsg"] == "Errors in the entity format", field
        assert key in result["errors"], (field, result.body)
    assert api.post("custom-fields/orderz/create", {"customField": FIELD}).status == 400
    changed = api.post("custom-fields/order/gift/edit", {"customField": {"type": "string"}})
    assert changed.status == 400 and "customField.type" in changed["errors"]
    assert api.post("custom-fields/order/nope/edit", {"customField": {"name": "x"}}).status == 404
    assert api.get("custom-fields/order/nope").status == 404
    assert api.get("custom-fields/orderz/gift").status == 404
    assert set(CustomField.objects.values_list("code", flat=True)) == {"gift"}


def test_dictionaries(api):
    dictionary = {
        "code": "colours",
        "name": "Цвета",
        "elements": [{"code": "red", "name": "Красный"}, {"code": "green", "name": "Зелёный", "ordering": 1}],
    }
    created = api.post("custom-fields/dictionaries/create", {"customDictionary": dictionary})
    assert created.status == 201 and created["code"] == "colours"
    got = api.get("custom-fields/dictionaries/colours")["customDictionary"]
    assert got["elements"] == [
        {"code": "green", "name": "Зелёный", "ordering": 1},
        {"code": "red", "name": "Красный", "ordering": 10},
    ]
    listed = api.get("custom-fields/dictionaries")
    assert [d["code"] for d in listed["customDictionaries"]] == ["colours"] and listed["pagination"][
        "totalCount"
    ] == 1

    edited = api.post(
        "custom-fields/dictionaries/colours/edit",
        {"customDictionary": {"elements": [{"code": "blue", "name": "Синий"}]}},
    )
    assert edited.status == 200 and edited["code"] == "colours"
    assert CustomDictionary.objects.get().codes() == {"blue"}

    field = {"code": "colour", "name": "Цвет", "type": "dictionary", "dictionary": "colours"}
    assert api.post("custom-fields/customer/create", {"customField": field}).status == 201
    assert api.get("custom-fields/customer/colour")["customField"]["dictionary"] == "colours"


def test_dictionary_validation(api):
    base = {"code": "sizes", "name": "Размеры"}
    for dictionary, key in [
        (
            {**base, "elements": [{"code": "s", "name": "S"}, {"code": "s", "name": "S2"}]},
            "customDictionary.elements[1].code",
        ),
        ({**base, "elements": [{"code": "s"}]}, "customDictionary.elements[0].name"),
        ({**base, "elements": "s,m"}, "customDictionary.elements"),
        (
            {**base, "elements": [{"code": "s", "name": "S", "ordering": "first"}]},
            "customDictionary.elements",
        ),
        ({**base, "code": "no way"}, "customDictionary.code"),
        ({"name": "x"}, "customDictionary.code"),
    ]:
        result = api.post("custom-fields/dictionaries/create", {"customDictionary": dictionary})
        assert result.status == 400 and key in result["errors"], (dictionary, result.body)
    assert not CustomDictionary.objects.exists()
    assert api.post("custom-fields/dictionaries/create", {"customDictionary": base}).status == 201
    again = api.post("custom-fields/dictionaries/create", {"customDictionary": base})
    assert again.status == 400 and "customDictionary.code" in again["errors"]
    assert api.post("custom-fields/dictionaries/nope/edit", {"customDictionary": base}).status == 404
    assert api.get("custom-fields/dictionaries/nope").status == 404


def test_scopes(make_api):
    reader = make_api(scopes=["custom_fields_read"])
    assert reader.get("custom-fields").status == 200
    assert reader.get("custom-fields/dictionaries").status == 200
    assert reader.post("custom-fields/order/create", {"customField": FIELD}).status == 403
    assert reader.post("custom-fields/dictionaries/create", {"customDictionary": {"code": "a"}}).status == 403
    assert make_api(name="x", scopes=["order_read"]).get("custom-fields").status == 403
