"""API v5 customers (§2.3, §3.4): what the store plugins and the official clients do with them."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from lavka.core.models import CustomField, HistoryRecord
from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Consent, Customer
from lavka.integrations.api_v5.endpoints.customers import (
    customer_json,
    customer_prefetch,
    customers_json,
    customers_queryset,
)
from lavka.integrations.testing import api_client

pytestmark = pytest.mark.django_db

IVAN = {
    "externalId": 101,
    "firstName": "Иван",
    "lastName": "Петров",
    "email": "Ivan@Example.com",
    "phones": [{"number": "+7 (912) 345-67-89"}],
    "address": {"index": "101000", "countryIso": "ru", "city": "Москва", "text": "Москва, Тверская 1"},
    "birthday": "1990-05-17",
    "sex": "male",
    "vip": True,
    "tags": ["опт", {"name": "b2b"}],
    "source": {"source": "google", "medium": "cpc"},
    "createdAt": "2024-01-02 03:04:05",
}


def create(api, customer=IVAN, site="shop"):
    result = api.post("customers/create", {"customer": customer, "site": site})
    assert result.status == 201, result.body
    return result["id"]


def no_nulls(value):
    if isinstance(value, dict):
        return all(v is not None and no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nulls(v) for v in value)
    return True


def test_create_then_get_by_external_id_and_by_id(api, shop):
    customer_id = create(api)
    by_external = api.get("customers/101", {"site": "shop"})
    assert by_external.status == 200
    customer = by_external["customer"]
    assert customer == api.get(f"customers/{customer_id}", {"by": "id"})["customer"]
    assert customer["id"] == customer_id and customer["externalId"] == "101"
    assert customer["type"] == "customer" and customer["site"] == "shop"
    assert customer["phones"] == [{"number": "+79123456789"}]
    assert customer["email"] == "Ivan@example.com"
    assert customer["address"]["countryIso"] == "RU" and customer["address"]["city"] == "Москва"
    assert customer["birthday"] == "1990-05-17" and customer["sex"] == "male" and customer["vip"] is True
    assert sorted(t["name"] for t in customer["tags"]) == ["b2b", "опт"]
    assert set(customer["tags"][0]) == {"name", "color", "attached"}
    assert customer["customFields"] == [] and customer["source"] == {"source": "google", "medium": "cpc"}
    assert customer["createdAt"] == "2024-01-02 03:04:05"
    assert customer["isContact"] is False
    assert "patronymic" not in customer and "managerId" not in customer and no_nulls(customer)


def test_unknown_customer_is_404_and_a_foreign_site_is_403(api, shop, make_api):
    create(api, {"externalId": "own", "firstName": "A"})
    other_id = create(api, {"externalId": "theirs", "firstName": "B"}, site="other")
    assert api.get("customers/nobody", {"site": "shop"}).status == 404
    assert api.get("customers/x1", {"by": "id"}).status == 404
    limited = make_api(name="shop only", sites=["shop"])
    assert limited.get("customers/own").status == 200  # the key's one site is implied
    assert limited.get(f"customers/{other_id}", {"by": "id"}).body == {
        "success": False,
        "errorMsg": "Access denied.",
    }
    assert limited.get("customers/theirs", {"site": "other"}).status == 403
    assert limited.post(f"customers/{other_id}/edit", {"by": "id", "customer": {"vip": True}}).status == 403
    listed = limited.get("customers")["customers"]
    assert [c["externalId"] for c in listed] == ["own"]


def test_duplicate_external_id_is_refused_per_site(api, shop):
    create(api)
    again = api.post("customers/create", {"customer": IVAN, "site": "shop"})
    assert again.status == 400 and again["errorMsg"] == "Customer already exists."
    assert again["errors"] == {"customer.externalId": "Customer already exists."}
    assert Customer.objects.filter(site=shop.site).count() == 1
    create(api, site="other")  # the same externalId on another site is another customer


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_external_id_make_one_customer(shop, settings):
    settings.LAVKA_API_RATE_LIMIT = 0
    client = api_client()
    statuses = []

    def post():
        statuses.append(
            client.post("customers/create", {"customer": {"externalId": "race"}, "site": "shop"}).status
        )
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [400] * 5
    assert Customer.objects.filter(external_id="race").count() == 1


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        ({"email": "ivan@"}, "customer.email"),
        ({"phones": [{"number": "12"}]}, "customer.phones"),
        ({"phones": "+79123456789"}, "customer.phones"),
        ({"birthday": "17.05.1990"}, "customer.birthday"),
        ({"sex": "robot"}, "customer.sex"),
        ({"firstName": {"a": 1}}, "customer.firstName"),
        ({"vip": "maybe"}, "customer.vip"),
        ({"managerId": 999999}, "customer.managerId"),
        ({"customFields": {"nope": 1}}, "customer.customFields.nope"),
        ({"address": {"countryIso": "Russia"}}, "customer.address.countryIso"),
        ({"createdAt": "yesterday"}, "customer.createdAt"),
    ],
)
def test_invalid_fields_are_named(api, shop, customer, field):
    result = api.post("customers/create", {"customer": customer, "site": "shop"})
    assert result.status == 400, result.body
    assert result["errorMsg"] == "Errors in the entity format"
    assert field in result["errors"]
    assert not Customer.objects.exists()


def test_create_needs_the_entity_and_a_site(api, shop):
    assert api.post("customers/create", {"site": "shop"})["errorMsg"] == "Parameter 'customer' is missing"
    no_site = api.post("customers/create", {"customer": {"firstName": "A"}})
    assert no_site.status == 400 and no_site["errorMsg"] == "Parameter 'site' is missing"
    assert api.post("customers/create", {"customer": "[1]", "site": "shop"}).status == 400


def test_edit_changes_only_what_is_sent(api, shop):
    CustomField.objects.create(site=shop.site, entity="customer", code="nps", name="NPS", type="integer")
    customer_id = create(api, {**IVAN, "customFields": {"nps": 7}})
    edited = api.post(
        "customers/101/edit",
        {
            "site": "shop",
            "customer": {
                "lastName": "Сидоров",
                "phones": [{"number": "8 903 111-22-33"}, {"number": "+7 903 111 22 33"}],
                "addTags": ["new"],
                "removeTags": ["опт"],
                "address": {"flat": "5"},
                "managerId": shop.alice.pk,
            },
        },
    )
    assert edited.status == 200 and edited.body == {"success": True, "id": customer_id}
    customer = api.get("customers/101", {"site": "shop"})["customer"]
    assert customer["lastName"] == "Сидоров" and customer["firstName"] == "Иван"
    assert customer["phones"] == [{"number": "+79031112233"}]
    assert sorted(t["name"] for t in customer["tags"]) == ["b2b", "new"]
    assert customer["address"]["flat"] == "5" and customer["address"]["city"] == "Москва"
    assert customer["managerId"] == shop.alice.pk and customer["customFields"] == {"nps": 7}
    api.post(f"customers/{customer_id}/edit", {"by": "id", "customer": {"tags": [], "managerId": None}})
    customer = api.get("customers/101", {"site": "shop"})["customer"]
    assert customer["tags"] == [] and "managerId" not in customer
    assert api.post("customers/nobody/edit", {"site": "shop", "customer": {}}).status == 404


def test_list_finds_a_phone_in_another_format_name_and_email(api, shop):
    ivan = create(api)
    create(api, {"externalId": "2", "firstName": "Мария", "phones": [{"number": "+79031112233"}]})
    create(
        api, {"externalId": "3", "firstName": "Иван", "phones": [{"number": "+79123456789"}]}, site="other"
    )

    def ids(**flt):
        params = {f"filter[{k}]" + ("[]" if isinstance(v, list) else ""): v for k, v in flt.items()}
        result = api.get("customers", params)
        assert result.status == 200, result.body
        return [c["id"] for c in result["customers"]]

    assert ids(name="8 (912) 345-67-89", sites=["shop"]) == [ivan]
    assert ids(name="9123456789", sites=["shop"]) == [ivan]
    assert ids(name="Петров Иван") == [ivan]
    assert ids(email="ivan@EXAMPLE.com") == [ivan]
    assert ids(externalIds=["101"], sites=["shop"]) == [ivan]
    assert ids(vip=1) == [ivan] and len(ids(vip=0)) == 2
    assert ids(tags=["b2b"]) == [ivan]
    assert ids(dateFrom="2024-01-02", dateTo="2024-01-02") == [ivan]
    assert ids(minOrdersCount=1) == []
    assert len(ids(unknownFilter="x")) == 3
    listing = api.get("customers", {"limit": 20})
    assert listing["pagination"] == {"limit": 20, "totalCount": 3, "currentPage": 1, "totalPageCount": 1}
    bad = api.get("customers", {"filter[ids][]": "abc"})
    assert bad.status == 400 and bad["errorMsg"] == "Errors in the input parameters"
    assert api.get("customers", {"filter[dateFrom]": "soon"}).status == 400


def test_list_queries_do_not_grow_with_the_page(api, shop, django_assert_max_num_queries):
    for n in range(15):
        create(api, {"externalId": f"c{n}", "phones": [{"number": f"+7912345670{n % 10}"}], "tags": ["t"]})
    with django_assert_max_num_queries(12):
        assert len(api.get("customers", {"limit": 20})["customers"]) == 15


def test_customer_json_reads_only_prefetched_data(shop, django_assert_num_queries):
    create_customer(
        shop.site,
        CustomerData(first_name="A", phones=["+79123456789"], tags=["x"]),
        actor=shop.actor(shop.admin),
    )
    customer = Customer.objects.select_related("site").prefetch_related(*customer_prefetch()).get()
    with django_assert_num_queries(0):
        assert customer_json(customer)["phones"] == [{"number": "+79123456789"}]


def test_rows_and_instances_show_a_customer_alike(api, shop):
    """Lists and history pages build customers from plain rows; they must match the instance form."""
    ids = [
        create(api),
        create(
            api,
            {
                "externalId": "two",
                "phones": [{"number": "+79120000002"}, {"number": "+79120000001"}],
                "tags": ["zeta", "alpha"],
                "subscribed": False,
                "customFields": {},
            },
        ),
        create(api, {"firstName": "Bare"}),
    ]
    assert (
        api.post("customers/two/edit", {"customer": {"address": {"city": "Тула"}}, "site": "shop"}).status
        == 200
    )
    instances = {c.pk: customer_json(c) for c in customers_queryset().filter(pk__in=ids)}
    rows = customers_json(ids, contact_flag=True)
    assert rows == instances
    assert rows[ids[1]]["phones"] == [{"number": "+79120000002"}, {"number": "+79120000001"}]
    assert [t["name"] for t in rows[ids[1]]["tags"]] == ["alpha", "zeta"]
    assert rows[ids[1]]["subscribed"] is False and "emailMarketingUnsubscribedAt" in rows[ids[1]]
    assert rows[ids[0]]["address"]["city"] == "Москва" and rows[ids[0]]["totalSumm"] == 0


def test_upload_reports_the_bad_item_with_460(api, shop):
    result = api.post(
        "customers/upload",
        {
            "site": "shop",
            "customers": [
                {"externalId": "u1", "firstName": "Ok"},
                {"externalId": "u2", "email": "broken@", "phones": [{"number": "+79123456789"}]},
                {"externalId": "u3", "firstName": "Also ok"},
            ],
        },
    )
    assert result.status == 460 and result["success"] is False
    assert result["errorMsg"] == "Customers are loaded with errors"
    assert [c["externalId"] for c in result["uploadedCustomers"]] == ["u1", "u3"]
    assert result["failedCustomers"] == [{"externalId": "u2"}]
    assert "customers[1].email" in result["errors"]
    assert not Customer.objects.filter(external_id="u2").exists()
    assert not Customer.objects.filter(phones__number="+79123456789").exists()  # nothing half-written
    good = api.post("customers/upload", {"site": "shop", "customers": [{"externalId": "u4"}]})
    assert good.status == 201 and good["failedCustomers"] == []
    too_many = api.post("customers/upload", {"site": "shop", "customers": [{}] * 51})
    assert too_many.status == 400


def test_fix_external_ids_is_all_or_nothing(api, shop):
    first = create(api, {"firstName": "A"})
    second = create(api, {"firstName": "B"})
    taken = create(api, {"firstName": "C", "externalId": "taken"})
    ok = api.post("customers/fix-external-ids", {"customers": [{"id": first, "externalId": 501}]})
    assert ok.body == {"success": True}
    assert Customer.objects.get(pk=first).external_id == "501"
    clash = api.post(
        "customers/fix-external-ids",
        {"customers": [{"id": second, "externalId": "502"}, {"id": first, "externalId": "taken"}]},
    )
    assert clash.status == 400 and "customers[1].externalId" in clash["errors"]
    assert Customer.objects.get(pk=second).external_id is None
    assert Customer.objects.get(pk=taken).external_id == "taken"
    missing = api.post("customers/fix-external-ids", {"customers": [{"id": 10**9, "externalId": "x"}]})
    assert missing.status == 400


def test_combine_merges_into_the_result_customer(api, shop):
    survivor = create(api, {"externalId": "s", "firstName": "Ольга"})
    duplicate = create(
        api, {"externalId": "d", "email": "olga@example.ru", "phones": [{"number": "+79031112233"}]}
    )
    result = api.post(
        "customers/combine", {"customers": [{"id": duplicate}], "resultCustomer": {"id": survivor}}
    )
    assert result.body == {"success": True}
    merged = api.get("customers/s", {"site": "shop"})["customer"]
    assert merged["email"] == "olga@example.ru" and merged["phones"] == [{"number": "+79031112233"}]
    assert api.get("customers/d", {"site": "shop"}).status == 404
    again = api.post(
        "customers/combine", {"customers": [{"id": duplicate}], "resultCustomer": {"id": survivor}}
    )
    assert again.status == 400


def test_notes_create_list_delete(api, shop):
    customer_id = create(api)
    created = api.post(
        "customers/notes/create",
        {
            "site": "shop",
            "note": {"text": "Звонить после 18", "managerId": shop.bob.pk, "customer": {"externalId": 101}},
        },
    )
    assert created.status == 201
    notes = api.get("customers/notes", {"filter[customerIds][]": customer_id})
    assert notes["notes"] == [
        {
            "id": created["id"],
            "text": "Звонить после 18",
            "createdAt": notes["notes"][0]["createdAt"],
            "managerId": shop.bob.pk,
            "customer": {"id": customer_id, "externalId": "101", "site": "shop", "type": "customer"},
        }
    ]
    assert api.get("customers/notes", {"filter[text]": "nothing"})["notes"] == []
    unknown = api.post("customers/notes/create", {"note": {"text": "x", "customer": {"id": 10**9}}})
    assert unknown.status == 400 and "note.customer" in unknown["errors"]
    empty = api.post("customers/notes/create", {"note": {"text": "", "customer": {"id": customer_id}}})
    assert empty.status == 400
    assert api.post(f"customers/notes/{created['id']}/delete").body == {"success": True}
    assert api.get("customers/notes")["notes"] == []
    assert api.post(f"customers/notes/{created['id']}/delete").status == 404
    fields = list(
        HistoryRecord.objects.filter(entity="customer", field="note").values_list("new_value", flat=True)
    )
    assert fields == ["Звонить после 18", None]


def test_subscriptions_become_consent(api, shop):
    customer_id = create(api)
    result = api.post(
        "customers/101/subscriptions",
        {"site": "shop", "subscriptions": [{"channel": "email", "subscription": "news", "active": False}]},
    )
    assert result.body == {"success": True}
    consent = Consent.objects.get(customer_id=customer_id, channel="email", purpose="marketing")
    assert consent.granted is False and consent.source == "api"
    customer = api.get("customers/101", {"site": "shop"})["customer"]
    assert customer["subscribed"] is False and "emailMarketingUnsubscribedAt" in customer
    bad = api.post("customers/101/subscriptions", {"site": "shop", "subscriptions": [{"channel": "pigeon"}]})
    assert bad.status == 400 and "subscriptions[0].channel" in bad["errors"]


def test_history_by_moving_since_id_gives_every_change_once_in_order(api, shop, make_api):
    other_key = make_api(name="another")
    first = create(api)
    api.post("customers/101/edit", {"site": "shop", "customer": {"firstName": "Ваня", "phones": []}})
    other_key.post("customers/101/edit", {"site": "shop", "customer": {"managerId": shop.alice.pk}})
    create(api, {"externalId": "second", "firstName": "Пётр"}, site="other")

    seen, since = [], 0
    while True:
        page = api.get("customers/history", {"filter[sinceId]": since, "limit": 20})
        assert page.status == 200 and "generatedAt" in page.body
        seen += page["history"]
        if not page["history"]:
            break
        since = page["history"][-1]["id"]
    ids = [r["id"] for r in seen]
    assert ids == sorted(set(ids))
    assert ids == list(HistoryRecord.objects.filter(entity="customer").values_list("id", flat=True))

    creation = next(r for r in seen if r["field"] == "id")
    assert creation["created"] is True and creation["oldValue"] is None and creation["newValue"] == first
    assert creation["customer"]["externalId"] == "101" and creation["customer"]["type"] == "customer"
    assert creation["apiKey"] == {"current": True}
    renamed = next(r for r in seen if r["field"] == "first_name" and not r.get("created"))
    assert (renamed["oldValue"], renamed["newValue"]) == ("Иван", "Ваня")
    assert renamed["customer"] == {"id": first, "externalId": "101", "site": "shop"}
    assert "created" not in renamed and "user" not in renamed
    removed_phone = next(r for r in seen if r["field"] == "phones" and r["newValue"] is None)
    assert removed_phone["oldValue"] == "+79123456789"
    manager = next(r for r in seen if r["field"] == "manager")
    assert manager["newValue"] == {"id": shop.alice.pk} and manager["apiKey"] == {"current": False}
    address = next(r for r in seen if r["field"] == "address.city")
    assert address["newValue"] == "Москва" and address["address"]["isMain"] is True
    assert any(r["field"] == "address.country" for r in seen)

    one = api.get("customers/history", {"filter[customerExternalId]": "second"})["history"]
    assert one and {r["customer"]["id"] for r in one} == {Customer.objects.get(external_id="second").pk}
    mixed = api.get("customers/history", {"filter[sinceId]": 1, "page": 2})
    assert mixed.status == 400
    limited = make_api(name="shop only", sites=["shop"])
    assert {r["customer"]["site"] for r in limited.get("customers/history", {"limit": 100})["history"]} == {
        "shop"
    }


def test_api_changes_carry_the_key_as_actor(api, shop):
    create(api)
    record = HistoryRecord.objects.filter(entity="customer", field="id").get()
    assert record.source == "api" and record.actor_ref == str(api.key.pk)


ODD_VALUES = ["x", -1, 10**30, True, [None, "+7"], {"a": [1]}, "\x00"]
ODD_POSTS = [
    ("customers/create", "customer"),
    ("customers/101/edit", "customer"),
    ("customers/upload", "customers"),
    ("customers/fix-external-ids", "customers"),
    ("customers/combine", "customers"),
    ("customers/notes/create", "note"),
    ("customers/101/subscriptions", "subscriptions"),
    ("customers-corporate/create", "customerCorporate"),
    ("customers-corporate/acme/edit", "customerCorporate"),
    ("customers-corporate/upload", "customersCorporate"),
    ("customers-corporate/acme/addresses/create", "address"),
    ("customers-corporate/acme/companies/create", "company"),
    ("customers-corporate/acme/contacts/create", "contact"),
    ("customers-corporate/acme/contacts/101/edit", "contact"),
]
FIELDS = [
    "externalId",
    "phones",
    "address",
    "tags",
    "addTags",
    "customFields",
    "managerId",
    "createdAt",
    "email",
    "source",
    "birthday",
    "customer",
    "companies",
    "addresses",
    "customerContacts",
    "contragent",
    "id",
    "channel",
    "active",
    "text",
    "isMain",
    "subscribed",
    "emailMarketingUnsubscribedAt",
]


def test_odd_input_never_fails_the_server(api, shop):
    """Every write endpoint with fields of the wrong kind, and every list filter with odd values: no 5xx."""
    create(api)
    api.post("customers-corporate/create", {"site": "shop", "customerCorporate": {"externalId": "acme"}})
    for path, entity in ODD_POSTS:
        for value in ODD_VALUES:
            every_field = {name: value for name in FIELDS}
            for body in (value, every_field, [every_field]):
                result = api.post(path, {"site": "shop", entity: body})
                assert result.status < 500, (path, body, result.body)
                assert result.status in (200, 201, 460) or result["errorMsg"], (path, body)
    filters = (
        "ids",
        "name",
        "email",
        "sites",
        "managers",
        "tags",
        "vip",
        "dateFrom",
        "minTotalSumm",
        "sinceId",
    )
    filters += ("customerId", "customerExternalId", "createdAtFrom", "contactIds", "nickName", "companyName")
    for path in (
        "customers",
        "customers/history",
        "customers/notes",
        "customers-corporate",
        "customers-corporate/history",
        "customers-corporate/acme/contacts",
        "customers/101",
    ):
        for value in ("x", "-5", "9" * 30, "\x00"):
            params = {f"filter[{name}]": value for name in filters} | {"site": "shop", "by": value}
            assert api.get(path, params).status < 500, (path, value)
