"""API v5 corporate customers (§2.3, §3.5): the B2B customer with addresses, companies and contacts."""

from __future__ import annotations

import pytest

from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.models import Company, CorporateAddress, CorporateCustomer

pytestmark = pytest.mark.django_db

ACME = {
    "externalId": "acme",
    "nickName": "ООО Акме",
    "vip": True,
    "tags": [{"name": "опт"}],
    "customFields": {"segment": "horeca"},
    "addresses": [
        {"externalId": "hq", "name": "Офис", "text": "Москва, Тверская 1", "countryIso": "RU"},
        {"name": "Склад", "city": "Подольск"},
    ],
    "companies": [
        {
            "externalId": "acme-llc",
            "name": "ООО «Акме»",
            "brand": "Acme",
            "address": {"externalId": "hq"},
            "contragent": {"contragentType": "legal-entity", "INN": "7701234567", "KPP": "770101001"},
        }
    ],
}


def person(api, external_id="p1", site="shop"):
    result = api.post(
        "customers/create", {"site": site, "customer": {"externalId": external_id, "firstName": "Анна"}}
    )
    assert result.status == 201, result.body
    return result["id"]


def create(api, corporate=ACME, site="shop"):
    result = api.post("customers-corporate/create", {"site": site, "customerCorporate": corporate})
    assert result.status == 201, result.body
    return result["id"]


def get(api, external_id="acme"):
    result = api.get(f"customers-corporate/{external_id}", {"site": "shop"})
    assert result.status == 200, result.body
    return result["customerCorporate"]


def test_create_with_addresses_companies_and_contacts(api, shop):
    anna = person(api)
    corporate_id = create(api, {**ACME, "customerContacts": [{"customer": {"externalId": "p1"}}]})
    corporate = get(api)
    assert corporate["id"] == corporate_id and corporate["type"] == "customer_corporate"
    assert corporate["nickName"] == "ООО Акме" and corporate["site"] == "shop" and corporate["vip"] is True
    assert corporate["tags"][0]["name"] == "опт" and corporate["customFields"] == {"segment": "horeca"}
    hq = CorporateAddress.objects.get(external_id="hq")
    assert corporate["mainAddress"] == {"id": hq.pk, "externalId": "hq", "name": "Офис"}
    assert [a["isMain"] for a in corporate["addresses"]] == [True, False]
    company = corporate["companies"][0]
    assert corporate["mainCompany"] == {"id": company["id"], "externalId": "acme-llc", "name": "ООО «Акме»"}
    assert company["contragent"] == {
        "contragentType": "legal-entity",
        "INN": "7701234567",
        "KPP": "770101001",
    }
    assert company["address"] == {"id": hq.pk, "externalId": "hq", "name": "Офис"} and company["isMain"]
    contact = corporate["mainCustomerContact"]
    assert contact["customer"] == {"id": anna, "externalId": "p1", "site": "shop"} and contact["isMain"]
    assert corporate["customerContacts"] == [contact]
    assert api.get(f"customers/{anna}", {"by": "id"})["customer"]["isContact"] is True
    assert OutboxEvent.objects.filter(type="customers.corporate_created").count() == 1


def test_duplicate_external_id_and_bad_input(api, shop):
    create(api)
    again = api.post("customers-corporate/create", {"site": "shop", "customerCorporate": ACME})
    assert again.status == 400 and again["errorMsg"] == "Customer already exists."
    bad_company = api.post(
        "customers-corporate/create",
        {
            "site": "shop",
            "customerCorporate": {
                "nickName": "X",
                "addresses": [{"countryIso": "Russia"}],
                "companies": [{"name": "Y", "contragent": {"contragentType": "robot"}}],
            },
        },
    )
    assert bad_company.status == 400
    assert set(bad_company["errors"]) == {"customerCorporate.addresses[0].countryIso"}
    no_name = api.post(
        "customers-corporate/create", {"site": "shop", "customerCorporate": {"companies": [{"brand": "Z"}]}}
    )
    assert no_name.status == 400 and "customerCorporate.companies[0].name" in no_name["errors"]
    stranger = person(api, "p9", site="other")
    foreign = api.post(
        "customers-corporate/create",
        {"site": "shop", "customerCorporate": {"customerContacts": [{"customer": {"id": stranger}}]}},
    )
    assert foreign.status == 400 and "customerCorporate.customerContacts[0].customer" in foreign["errors"]
    assert CorporateCustomer.objects.count() == 1


def test_list_filters_and_site_access(api, shop, make_api):
    acme = create(api)
    create(api, {"externalId": "beta", "nickName": "Бета"})
    create(api, {"externalId": "gamma", "nickName": "Гамма"}, site="other")

    def ids(**params):
        result = api.get("customers-corporate", params)
        assert result.status == 200, result.body
        return [c["id"] for c in result["customersCorporate"]]

    assert ids(**{"filter[nickName][]": "ООО Акме"}) == [acme]
    assert ids(**{"filter[companyName]": "Акме"}) == [acme]
    assert ids(**{"filter[contragentInn]": "7701234567"}) == [acme]
    beta = CorporateCustomer.objects.get(external_id="beta").pk
    wanted = {"filter[externalIds][]": ["acme", "beta", "gamma"], "filter[sites][]": "shop"}
    assert ids(**wanted) == [beta, acme]
    assert ids(**{"filter[vip]": 1}) == [acme]
    assert len(ids()) == 3
    assert api.get("customers-corporate", {"filter[ids][]": "x"}).status == 400
    limited = make_api(name="shop only", sites=["shop"])
    assert {c["site"] for c in limited.get("customers-corporate")["customersCorporate"]} == {"shop"}
    assert limited.get("customers-corporate/gamma", {"site": "other"}).status == 403
    gamma = CorporateCustomer.objects.get(external_id="gamma").pk
    assert limited.get(f"customers-corporate/{gamma}", {"by": "id"}).status == 403
    assert (
        limited.post(f"customers-corporate/{gamma}/addresses/create", {"by": "id", "address": {}}).status
        == 403
    )


def test_edit_accepts_both_entity_names(api, shop):
    corporate_id = create(api)
    edited = api.post(
        "customers-corporate/acme/edit",
        {"site": "shop", "customersCorporate": {"nickName": "Акме Групп", "addTags": ["vip-b2b"]}},
    )
    assert edited.body == {"success": True, "id": corporate_id}
    api.post(
        f"customers-corporate/{corporate_id}/edit",
        {"by": "id", "customerCorporate": {"managerId": shop.alice.pk, "customFields": {"extra": 1}}},
    )
    corporate = get(api)
    assert corporate["nickName"] == "Акме Групп" and corporate["managerId"] == shop.alice.pk
    assert sorted(t["name"] for t in corporate["tags"]) == ["vip-b2b", "опт"]
    assert corporate["customFields"] == {"segment": "horeca", "extra": 1}
    assert api.post("customers-corporate/nope/edit", {"site": "shop", "customerCorporate": {}}).status == 404


def test_addresses_list_create_edit(api, shop):
    corporate_id = create(api)
    listed = api.get("customers-corporate/acme/addresses", {"site": "shop"})
    assert [a["name"] for a in listed["addresses"]] == ["Офис", "Склад"]
    assert listed["pagination"]["totalCount"] == 2
    created = api.post(
        f"customers-corporate/{corporate_id}/addresses/create",
        {"by": "id", "address": {"externalId": "shop2", "name": "Магазин", "city": "Тула", "isMain": True}},
    )
    assert created.status == 201
    assert get(api)["mainAddress"]["id"] == created["id"]
    edited = api.post(
        "customers-corporate/acme/addresses/shop2/edit", {"site": "shop", "address": {"street": "Ленина"}}
    )
    assert edited.body == {"success": True, "id": created["id"]}
    by_id = api.post(
        f"customers-corporate/acme/addresses/{created['id']}/edit",
        {"site": "shop", "entityBy": "id", "address": {"flat": "7"}},
    )
    assert by_id.status == 200
    address = CorporateAddress.objects.get(pk=created["id"])
    assert (address.city, address.street, address.flat) == ("Тула", "Ленина", "7")
    duplicate = api.post(
        "customers-corporate/acme/addresses/create", {"site": "shop", "address": {"externalId": "hq"}}
    )
    assert duplicate.status == 400
    assert (
        api.post("customers-corporate/acme/addresses/nope/edit", {"site": "shop", "address": {}}).status
        == 404
    )
    only = api.get("customers-corporate/acme/addresses", {"site": "shop", "filter[ids][]": created["id"]})
    assert [a["id"] for a in only["addresses"]] == [created["id"]]


def test_companies_list_create_edit(api, shop):
    create(api)
    created = api.post(
        "customers-corporate/acme/companies/create",
        {"site": "shop", "company": {"name": "ИП Иванов", "contragent": {"contragentType": "enterpreneur"}}},
    )
    assert created.status == 201
    companies = api.get("customers-corporate/acme/companies", {"site": "shop"})["companies"]
    assert [c["name"] for c in companies] == ["ООО «Акме»", "ИП Иванов"]
    assert companies[1]["customer"]["type"] == "customer_corporate" and companies[1]["customFields"] == []
    edited = api.post(
        f"customers-corporate/acme/companies/{created['id']}/edit",
        {
            "site": "shop",
            "entityBy": "id",
            "company": {
                "isMain": True,
                "contragent": {"INN": "500100732259"},
                "address": {"externalId": "hq"},
            },
        },
    )
    assert edited.body == {"success": True, "id": created["id"]}
    company = Company.objects.get(pk=created["id"])
    assert company.is_main and company.inn == "500100732259" and company.address.external_id == "hq"
    assert get(api)["mainCompany"]["id"] == created["id"]
    bad = api.post(
        "customers-corporate/acme/companies/acme-llc/edit",
        {"site": "shop", "company": {"contragent": {"contragentType": "robot"}, "address": {"id": 10**9}}},
    )
    assert bad.status == 400
    assert set(bad["errors"]) <= {"company.contragent.contragentType", "company.address"}


def test_contacts_list_create_edit(api, shop):
    anna = person(api, "p1")
    boris = person(api, "p2")
    create(api, {**ACME, "customerContacts": [{"customer": {"id": anna}}]})
    company = Company.objects.get(external_id="acme-llc")
    created = api.post(
        "customers-corporate/acme/contacts/create",
        {
            "site": "shop",
            "contact": {"customer": {"externalId": "p2"}, "companies": [{"company": {"id": company.pk}}]},
        },
    )
    assert created.status == 201
    contacts = api.get("customers-corporate/acme/contacts", {"site": "shop"})["contacts"]
    assert [(c["customer"]["id"], c["isMain"]) for c in contacts] == [(anna, True), (boris, False)]
    assert contacts[1]["companies"][0]["company"]["id"] == company.pk
    again = api.post(
        "customers-corporate/acme/contacts/create", {"site": "shop", "contact": {"customer": {"id": boris}}}
    )
    assert again.status == 400
    edited = api.post(
        f"customers-corporate/acme/contacts/{boris}/edit",
        {"site": "shop", "entityBy": "id", "contact": {"isMain": True, "companies": []}},
    )
    assert edited.body == {"success": True, "id": boris}
    main = get(api)["mainCustomerContact"]
    assert main["customer"]["id"] == boris and main["companies"] == []
    by_external = api.post(
        "customers-corporate/acme/contacts/p1/edit",
        {"site": "shop", "contact": {"companies": [{"id": company.pk}]}},
    )
    assert by_external.body == {"success": True, "id": anna}
    only = api.get(
        "customers-corporate/acme/contacts", {"site": "shop", "filter[contactExternalIds][]": "p1"}
    )
    assert [c["customer"]["id"] for c in only["contacts"]] == [anna]


def test_upload_and_fix_external_ids(api, shop):
    result = api.post(
        "customers-corporate/upload",
        {
            "site": "shop",
            "customersCorporate": [{"externalId": "u1", "nickName": "A"}, {"externalId": "u2", "vip": "?"}],
        },
    )
    assert result.status == 460 and result["errorMsg"] == "Customers are loaded with errors"
    assert [c["externalId"] for c in result["uploadedCustomers"]] == ["u1"]
    assert result["failedCustomers"] == [{"externalId": "u2"}]
    assert "customersCorporate[1].vip" in result["errors"]
    fine = api.post("customers-corporate/upload", {"site": "shop", "customersCorporate": [{"nickName": "B"}]})
    assert fine.status == 201
    new_id = fine["uploadedCustomers"][0]["id"]
    fixed = api.post(
        "customers-corporate/fix-external-ids", {"customersCorporate": [{"id": new_id, "externalId": 77}]}
    )
    assert fixed.body == {"success": True}
    assert CorporateCustomer.objects.get(pk=new_id).external_id == "77"
    clash = api.post(
        "customers-corporate/fix-external-ids", {"customersCorporate": [{"id": new_id, "externalId": "u1"}]}
    )
    assert clash.status == 400


def test_history_feed(api, shop, make_api):
    anna = person(api)
    corporate_id = create(api, {**ACME, "customerContacts": [{"customer": {"id": anna}}]})
    company = Company.objects.get(external_id="acme-llc")
    make_api(name="other").post(
        "customers-corporate/acme/companies/acme-llc/edit",
        {"site": "shop", "company": {"contragent": {"INN": "7709999999"}}},
    )
    api.post("customers-corporate/acme/edit", {"site": "shop", "customerCorporate": {"nickName": "Акме 2"}})
    api.post(
        "customers-corporate/acme/contacts/p1/edit",
        {"site": "shop", "contact": {"companies": [{"company": {"externalId": "acme-llc"}}]}},
    )

    seen, since = [], 0
    while True:
        page = api.get("customers-corporate/history", {"filter[sinceId]": since, "limit": 20})
        assert page.status == 200
        if not page["history"]:
            break
        seen += page["history"]
        since = page["history"][-1]["id"]
    ids = [r["id"] for r in seen]
    assert ids == list(HistoryRecord.objects.filter(entity="customer_corporate").values_list("id", flat=True))

    creation = seen[0]
    assert (creation["field"], creation["oldValue"], creation["newValue"]) == ("id", None, corporate_id)
    assert creation["created"] is True and creation["customer"]["type"] == "customer_corporate"
    address = next(r for r in seen if r["field"] == "address")
    assert address["address"]["name"] in ("Офис", "Склад") and address["created"] is True
    assert any(r["field"] == "main_company" and r["newValue"]["id"] == company.pk for r in seen)
    inn = next(r for r in seen if r["field"] == "company.contragent.i_n_n")
    assert (inn["oldValue"], inn["newValue"]) == ("7701234567", "7709999999")
    assert inn["company"]["id"] == company.pk and inn["apiKey"] == {"current": False}
    assert inn["customer"] == {"id": corporate_id, "externalId": "acme", "site": "shop"}
    renamed = next(r for r in seen if r["field"] == "nick_name" and "created" not in r)
    assert renamed["newValue"] == "Акме 2" and renamed["apiKey"] == {"current": True}
    link = next(r for r in seen if r["field"] == "contact.contact_company")
    assert link["company"]["id"] == company.pk and link["customerContact"]["customer"]["id"] == anna
    one = api.get("customers-corporate/history", {"filter[customerExternalId]": "acme", "limit": 100})
    assert len(one["history"]) == len(seen)


def test_notes(api, shop):
    corporate_id = create(api)
    created = api.post(
        "customers-corporate/notes/create",
        {"site": "shop", "note": {"text": "Счёт до 10-го", "customer": {"externalId": "acme"}}},
    )
    assert created.status == 201
    notes = api.get("customers-corporate/notes", {"filter[customerIds][]": corporate_id})["notes"]
    assert notes[0]["customer"] == {
        "id": corporate_id,
        "externalId": "acme",
        "site": "shop",
        "type": "customer_corporate",
    }
    assert api.post(f"customers-corporate/notes/{created['id']}/delete").body == {"success": True}
    assert api.get("customers-corporate/notes")["notes"] == []
    assert api.get("customers/notes")["notes"] == []  # person notes are a separate list


def combine(api, customers, result, name="customers"):
    return api.post("customers-corporate/combine", {name: customers, "resultCustomer": result})


def test_combine_moves_addresses_companies_contacts_and_notes(api, shop):
    anna, boris = person(api), person(api, "p2")
    beta = create(
        api,
        {
            "externalId": "beta",
            "addresses": [{"externalId": "hq", "name": "Бета офис"}],
            "companies": [{"name": "ООО «Бета»"}],
            "customerContacts": [{"customer": {"id": anna}}],
        },
    )
    acme = create(
        api,
        {
            **ACME,
            "customerContacts": [{"customer": {"id": anna}, "isMain": True}, {"customer": {"id": boris}}],
        },
    )
    for corporate, text in (("acme", "Старая заметка"), ("beta", "Новая")):
        note = {"text": text, "customer": {"externalId": corporate}}
        assert api.post("customers-corporate/notes/create", {"site": "shop", "note": note}).status == 201

    result = combine(api, [{"id": acme}], {"id": beta})
    assert result.status == 200 and result.body == {"success": True}

    merged = get(api, "beta")
    assert merged["nickName"] == "ООО Акме"  # blank on the result, so taken over
    assert {a["name"] for a in merged["addresses"]} == {"Бета офис", "Офис", "Склад"}
    assert [a["name"] for a in merged["addresses"] if a["isMain"]] == ["Бета офис"]
    assert merged["mainAddress"]["name"] == "Бета офис"
    # The moved "hq" address lost its externalId: the result already uses it.
    assert [a.get("externalId") for a in merged["addresses"]].count("hq") == 1
    assert {c["name"] for c in merged["companies"]} == {"ООО «Бета»", "ООО «Акме»"}
    assert merged["mainCompany"]["name"] == "ООО «Бета»"
    assert sorted(c["customer"]["id"] for c in merged["customerContacts"]) == [anna, boris]
    assert [c["customer"]["id"] for c in merged["customerContacts"] if c["isMain"]] == [anna]
    notes = api.get("customers-corporate/notes", {"filter[customerIds][]": beta})["notes"]
    assert sorted(n["text"] for n in notes) == ["Новая", "Старая заметка"]

    assert api.get("customers-corporate/acme", {"site": "shop"}).status == 404
    assert api.get(f"customers-corporate/{acme}", {"by": "id"}).status == 404
    assert api.post("customers-corporate/acme/edit", {"site": "shop", "customerCorporate": {}}).status == 404
    assert [c["id"] for c in api.get("customers-corporate")["customersCorporate"]] == [beta]
    assert CorporateCustomer.objects.get(pk=acme).merged_into_id == beta

    records = HistoryRecord.objects.filter(entity="customer_corporate", field__startswith="merged")
    assert {(r.entity_id, r.field) for r in records} == {(acme, "merged_into"), (beta, "merged")}
    assert records.get(field="merged").new_value == [acme]
    feed = api.get("customers-corporate/history", {"filter[customerId]": acme})["history"]
    assert feed[-1]["field"] == "merged_into" and feed[-1]["combinedTo"] == {"id": beta}
    event = OutboxEvent.objects.filter(type="customers.corporate_updated").last()
    assert event.payload["corporate_id"] == beta and event.payload["fields"] == ["merged"]


def test_combine_promotes_a_moved_main_when_the_result_has_none(api, shop):
    beta = create(api, {"externalId": "beta", "nickName": "Бета"})
    acme = create(api)
    result = combine(api, [{"id": acme}], {"id": beta}, name="customersCorporate")
    assert result.status == 200, result.body
    merged = get(api, "beta")
    assert merged["nickName"] == "Бета"  # the result's data wins
    assert merged["mainAddress"]["name"] == "Офис" and merged["mainCompany"]["name"] == "ООО «Акме»"
    assert sum(a["isMain"] for a in merged["addresses"]) == 1


def test_combine_errors(api, shop, make_api):
    acme = create(api)
    beta = create(api, {"externalId": "beta"})
    gamma = create(api, {"externalId": "gamma"}, site="other")

    unknown = combine(api, [{"id": 999999}], {"id": acme})
    assert unknown.status == 404 and unknown["errorMsg"] == "Not found"
    assert combine(api, [{"id": beta}], {"id": 999999}).status == 404
    itself = combine(api, [{"id": acme}], {"id": acme})
    assert itself.status == 400 and "customers" in itself["errors"]
    across = combine(api, [{"id": gamma}], {"id": acme})
    assert across.status == 400 and "customers" in across["errors"]
    assert combine(api, [{"id": "x"}], {"id": acme}).status == 400
    assert combine(api, [], {"id": acme}).status == 400
    assert api.post("customers-corporate/combine", {"resultCustomer": {"id": acme}}).status == 400
    limited = make_api(name="shop only", sites=["shop"])
    assert combine(limited, [{"id": beta}], {"id": gamma}).status == 403
    assert CorporateCustomer.objects.filter(merged_into__isnull=False).count() == 0
    assert combine(api, [{"id": beta}], {"id": acme}).status == 200
    again = combine(api, [{"id": beta}], {"id": acme})
    assert again.status == 404  # a merged customer is gone
