import pytest
from django.core.exceptions import ValidationError

from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers import actions
from lavka.customers.actions import CustomerData
from lavka.customers.models import Consent, Customer
from lavka.orders.actions import ItemData, OrderData, create_order


def make(shop, **fields) -> Customer:
    return actions.create_customer(shop.site, CustomerData(**fields), actor=shop.actor(shop.alice))


def test_phones_are_stored_in_e164(shop):
    customer = make(shop, first_name="Ольга", phones=["8 (916) 123-45-67", "+7-926-765-43-21"])
    assert [p.number for p in customer.phones.all()] == ["+79161234567", "+79267654321"]


@pytest.mark.parametrize(
    "other_format", ["+7 916 123 45 67", "89161234567", "(916) 123-45-67", "7-916-1234567"]
)
def test_duplicate_found_by_a_differently_formatted_phone(shop, other_format):
    existing = make(shop, first_name="Ольга", phones=["8 (916) 123-45-67"])
    assert actions.find_duplicates(shop.site, phones=[other_format]) == [existing]


def test_duplicate_found_by_email_in_any_case(shop):
    existing = make(shop, email="Olga@Example.RU")
    assert actions.find_duplicates(shop.site, email="olga@example.ru") == [existing]
    assert actions.find_duplicates(shop.other_site, email="olga@example.ru") == []


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"phones": ["12"]}, "phones"),
        ({"email": "olga@"}, "email"),
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"birthday": "вчера"}, "birthday"),
        ({"sex": "other"}, "sex"),
        ({"first_name": "x" * 151}, "first_name"),
        ({"custom_fields": {"nope": 1}}, "custom_nope"),
    ],
)
def test_invalid_customer_fields_name_the_field(shop, fields, error_field):
    with pytest.raises(ValidationError) as err:
        make(shop, **fields)
    assert error_field in err.value.message_dict
    assert not Customer.objects.exists() and not HistoryRecord.objects.exists()


def test_consent_keeps_time_and_source_and_history(shop):
    customer = make(
        shop,
        consents={("email", "marketing"): True, ("sms", "service"): True},
        consent_source="checkout form",
    )
    consent = Consent.objects.get(customer=customer, channel="email", purpose="marketing")
    assert consent.granted and consent.source == "checkout form" and consent.changed_at
    actions.update_customer(
        customer,
        CustomerData(consents={("email", "marketing"): False}, consent_source="call"),
        actor=shop.actor(shop.alice),
    )
    consent.refresh_from_db()
    assert not consent.granted and consent.source == "call"
    record = HistoryRecord.objects.filter(field="consent.email.marketing").last()
    assert (record.old_value, record.new_value) == (True, False)


def test_update_writes_field_level_history_and_event(shop):
    customer = make(shop, first_name="Ольга", phones=["+79161234567"])
    actions.update_customer(
        customer,
        CustomerData(last_name="Смирнова", phones=["+79161234567", "+79031112233"], tags=["VIP"]),
        actor=shop.actor(shop.bob),
    )
    fields = set(
        HistoryRecord.objects.filter(entity="customer", created=False).values_list("field", flat=True)
    )
    assert fields == {"last_name", "phones", "tags"}
    assert OutboxEvent.objects.filter(type="customers.updated").count() == 1


def test_manager_change_emits_event(shop):
    customer = make(shop)
    actions.update_customer(
        customer, CustomerData(manager=shop.bob, manager_set=True), actor=shop.actor(shop.alice)
    )
    assert (
        OutboxEvent.objects.filter(type="customers.manager_changed").get().payload["new_manager_id"]
        == shop.bob.pk
    )


def test_merge_moves_orders_notes_and_phones_and_records_it(shop):
    survivor = make(shop, first_name="Ольга", phones=["+79161234567"])
    duplicate = make(shop, email="olga@example.ru", phones=["8 903 111 22 33"])
    order = create_order(
        shop.site,
        OrderData(customer=duplicate, items=[ItemData(offer_id=shop.tea.pk)]),
        actor=shop.actor(shop.alice),
    )
    actions.add_note(duplicate, "Просила звонить после 18:00", actor=shop.actor(shop.alice))
    actions.merge_customers(survivor, [duplicate], actor=shop.actor(shop.supervisor))

    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    order.refresh_from_db()
    assert order.customer_id == survivor.pk
    assert duplicate.merged_into_id == survivor.pk
    assert survivor.email == "olga@example.ru"
    assert {p.number for p in survivor.phones.all()} == {"+79161234567", "+79031112233"}
    assert survivor.notes.count() == 1
    assert survivor.orders_count == 1
    assert HistoryRecord.objects.filter(entity="customer", entity_id=survivor.pk, field="merged").exists()
    assert set(actions.timeline_ids(survivor)) == {survivor.pk, duplicate.pk}
    assert OutboxEvent.objects.filter(type="customers.merged").count() == 1
    assert list(Customer.objects.active()) == [survivor]


def test_merge_refuses_another_site(shop):
    survivor = make(shop)
    stranger = actions.create_customer(
        shop.other_site, CustomerData(first_name="Чужой"), actor=shop.actor(shop.admin)
    )
    with pytest.raises(ValidationError):
        actions.merge_customers(survivor, [stranger], actor=shop.actor(shop.admin))
