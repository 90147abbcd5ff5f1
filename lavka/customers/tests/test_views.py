"""Customer pages: the permission matrix, create/edit with bad input and duplicates, notes, merge, search."""

import pytest
from django.test import Client
from django.urls import reverse

from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Consent, Customer, CustomerNote


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def new_customer(shop, creator, *, manager=None, phone="+79161234567", email="", name="Анна"):
    data = CustomerData(
        first_name=name,
        last_name="Петрова",
        phones=[phone],
        email=email,
        manager=manager,
        manager_set=manager is not None,
    )
    return create_customer(shop.site, data, actor=shop.actor(creator))


def form_data(shop, **overrides) -> dict:
    data = {
        "site": shop.site.code,
        "last_name": "Смирнова",
        "first_name": "Ольга",
        "patronymic": "Игоревна",
        "phones": "8 916 777-66-55\n+7 (495) 123-45-67",
        "email": "olga@example.com",
        "birthday": "1990-04-12",
        "sex": "female",
        "manager": str(shop.alice.pk),
        "tags": "опт, vip-клуб",
        "source": "",
        "medium": "",
        "campaign": "",
        "address_text": "Москва, ул. Ленина, 1",
        "address_city": "Москва",
        "consent_email_marketing": "on",
        "consent_sms_service": "on",
    }
    data.update(overrides)
    return data


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), HistoryRecord.objects.count(), OutboxEvent.objects.count()


@pytest.fixture
def alices(shop):
    return new_customer(shop, shop.alice, manager=shop.alice)


@pytest.mark.parametrize(
    "who, status",
    [("alice", 200), ("bob", 404), ("supervisor", 200), ("admin", 200), ("outsider", 404), ("operator", 404)],
)
def test_customer_card_scope(shop, alices, who, status):
    client = client_for(getattr(shop, who))
    assert client.get(reverse("customers:detail", args=[alices.pk])).status_code == status
    if status == 404:
        assert client.get(reverse("customers:edit", args=[alices.pk])).status_code == 404
        assert client.post(reverse("customers:note_add", args=[alices.pk]), {"text": "x"}).status_code == 404
        assert client.get(reverse("customers:merge", args=[alices.pk])).status_code == 404


@pytest.mark.parametrize(
    "who, found",
    [("alice", True), ("bob", False), ("supervisor", True), ("admin", True), ("outsider", False)],
)
def test_customer_list_search_and_export_scope(shop, alices, who, found):
    client = client_for(getattr(shop, who))
    for query in ({}, {"q": "8-916-123-45-67"}, {"q": "петрова"}):
        body = client.get(reverse("customers:list"), query).content.decode()
        assert (f'href="/customers/{alices.pk}/"' in body) is found, query
    picker = client.get(reverse("customers:search"), {"site": "shop", "customer_q": "+79161234567"})
    if who == "outsider":
        assert picker.status_code == 404
    else:
        assert (f"pick={alices.pk}" in picker.content.decode()) is found
    export = b"".join(client.get(reverse("customers:export")).streaming_content).decode()
    assert ("+79161234567" in export) is found


def test_create_customer(shop):
    response = client_for(shop.alice).post(reverse("customers:create"), form_data(shop))
    assert response.status_code == 302, response.context and response.context["form"].errors
    customer = Customer.objects.get()
    assert [p.number for p in customer.phones.all()] == ["+79167776655", "+74951234567"]
    assert customer.manager_id == shop.alice.pk and customer.birthday.isoformat() == "1990-04-12"
    assert sorted(customer.tags.values_list("name", flat=True)) == ["vip-клуб", "опт"]
    consents = {(c.channel, c.purpose): c.granted for c in Consent.objects.filter(customer=customer)}
    assert consents == {("email", "marketing"): True, ("sms", "service"): True}
    card = client_for(shop.alice).get(reverse("customers:detail", args=[customer.pk]))
    assert "Москва, ул. Ленина, 1" in card.content.decode()


def test_edit_records_only_what_changed(shop):
    client = client_for(shop.alice)
    client.post(reverse("customers:create"), form_data(shop))
    customer = Customer.objects.get()
    before = HistoryRecord.objects.count()
    data = form_data(shop, email="olga@new.example", consent_email_marketing="")
    assert client.post(reverse("customers:edit", args=[customer.pk]), data).status_code == 302
    fields = set(HistoryRecord.objects.filter(pk__gt=before).values_list("field", flat=True))
    assert fields == {"email", "consent.email.marketing"}


BAD = [
    ({"phones": "12345"}, "phones"),
    ({"phones": "+7 916 777 66 55\nnot a phone"}, "phones"),
    ({"email": "olga@"}, "email"),
    ({"email": "a" * 300 + "@example.com"}, "email"),
    ({"birthday": "1800-01-01"}, "birthday"),
    ({"birthday": "31.02.2000"}, "birthday"),
    ({"manager": str(10**30)}, "manager"),
    ({"sex": "robot"}, "sex"),
    ({"address_building": "x" * 60}, "address_building"),
    ({"first_name": "a\x00b"}, "first_name"),
]


@pytest.mark.parametrize("override, field", BAD)
def test_bad_customer_input_lands_on_the_field(shop, override, field):
    before = counts()
    response = client_for(shop.alice).post(reverse("customers:create"), form_data(shop, **override))
    assert response.status_code in (200, 400)
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert counts() == before


def test_manager_of_another_site_is_refused(shop, alices):
    before = counts()
    client = client_for(shop.admin)
    response = client.post(reverse("customers:create"), form_data(shop, manager=shop.outsider.pk))
    assert response.context["form"].errors["manager"]
    response = client.post(
        reverse("customers:edit", args=[alices.pk]), form_data(shop, manager=shop.outsider.pk)
    )
    assert response.context["form"].errors["manager"]
    assert counts() == before


def test_duplicate_warning_links_to_the_existing_customer(shop, alices):
    client = client_for(shop.alice)
    data = form_data(shop, phones="8 (916) 123-45-67")
    response = client.post(reverse("customers:create"), data)
    assert response.status_code == 200 and Customer.objects.count() == 1
    assert reverse("customers:detail", args=[alices.pk]) in response.content.decode()
    assert client.post(reverse("customers:create"), {**data, "confirm_duplicate": "on"}).status_code == 302
    assert Customer.objects.count() == 2


def test_duplicate_outside_the_scope_is_counted_not_linked(shop, alices):
    response = client_for(shop.bob).post(
        reverse("customers:create"), form_data(shop, phones="+79161234567", manager="")
    )
    assert response.context["hidden_duplicates"] == 1 and response.context["duplicates"] == []
    assert reverse("customers:detail", args=[alices.pk]) not in response.content.decode()


def test_notes(shop, alices):
    client = client_for(shop.alice)
    assert (
        client.post(reverse("customers:note_add", args=[alices.pk]), {"text": "Любит пуэр"}).status_code
        == 302
    )
    assert CustomerNote.objects.get().text == "Любит пуэр"
    empty = client.post(reverse("customers:note_add", args=[alices.pk]), {"text": "   "})
    assert empty.status_code == 400 and empty.context["note_form"].errors["text"]
    body = client.get(reverse("customers:detail", args=[alices.pk])).content.decode()
    assert "Любит пуэр" in body


def test_merge_duplicates(shop, alices):
    twin = new_customer(shop, shop.alice, manager=shop.alice, phone="8 916 123 45 67", name="Аня")
    stranger = new_customer(shop, shop.alice, manager=shop.alice, phone="+79160000000")
    client = client_for(shop.alice)
    page = client.get(reverse("customers:merge", args=[alices.pk]))
    assert [c.pk for c in page.context["candidates"]] == [twin.pk]
    refused = client.post(reverse("customers:merge", args=[alices.pk]), {"others": [stranger.pk]})
    assert refused.status_code == 400 and refused.context["form"].errors["others"]
    assert client.post(reverse("customers:merge", args=[alices.pk]), {"others": [twin.pk]}).status_code == 302
    twin.refresh_from_db()
    assert twin.merged_into_id == alices.pk
    card = client.get(reverse("customers:detail", args=[alices.pk]))
    assert any(entry.record.field == "merged" for entry in card.context["history"])
    # The merged stub's own records show on the survivor's timeline.
    assert any(entry.record.entity_id == twin.pk for entry in card.context["history"])


def test_search_pick_and_clear(shop, alices):
    client = client_for(shop.alice)
    picked = client.get(reverse("customers:search"), {"site": "shop", "pick": alices.pk})
    assert f'value="{alices.pk}"' in picked.content.decode()
    assert client.get(reverse("customers:search"), {"site": "shop", "pick": "x"}).status_code == 404
    cleared = client.get(reverse("customers:search"), {"site": "shop", "clear": "1"})
    assert 'name="customer_q"' in cleared.content.decode()
    bobs = new_customer(shop, shop.bob, manager=shop.bob, phone="+79160000001")
    assert client.get(reverse("customers:search"), {"site": "shop", "pick": bobs.pk}).status_code == 404


def test_list_filters(shop, alices):
    unassigned = new_customer(shop, shop.bob, phone="+79160000001", name="Борис")
    client = client_for(shop.supervisor)
    rows = client.get(reverse("customers:list"), {"manager": "none"}).context["page"].rows
    assert [c.pk for c in rows] == [unassigned.pk]
    rows = client.get(reverse("customers:list"), {"has_orders": "yes"}).context["page"].rows
    assert rows == []
    rows = client.get(reverse("customers:list"), {"sort": "created_at"}).context["page"].rows
    assert [c.pk for c in rows] == [alices.pk, unassigned.pk]


def test_csrf_is_enforced(shop, alices):
    client = Client(enforce_csrf_checks=True)
    client.force_login(shop.alice)
    assert client.post(reverse("customers:create"), form_data(shop)).status_code == 403
    assert client.post(reverse("customers:note_add", args=[alices.pk]), {"text": "x"}).status_code == 403
    assert Customer.objects.count() == 1 and not CustomerNote.objects.exists()


def test_operator_sees_unassigned_customers_and_those_they_created(shop, alices):
    unassigned = new_customer(shop, shop.bob, phone="+79160000001")
    created = new_customer(shop, shop.operator, manager=shop.bob, phone="+79160000002")
    bobs = new_customer(shop, shop.bob, manager=shop.bob, phone="+79160000003")
    rows = {c.pk for c in client_for(shop.operator).get(reverse("customers:list")).context["page"].rows}
    assert rows == {unassigned.pk, created.pk}
    assert client_for(shop.operator).get(reverse("customers:detail", args=[bobs.pk])).status_code == 404
