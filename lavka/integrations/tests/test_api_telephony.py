"""API v5 telephony (§2.8): call events, the call log upload, the responsible manager lookup."""

import pytest

from lavka.accounts.actions import set_presence, update_user
from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.actions import CustomerData, create_customer
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.telephony.models import Call

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


@pytest.fixture
def order(shop):
    """An open order of a customer whose number is +7 916 000-11-22 and whose manager is Alice."""
    data = OrderData(
        new_customer=CustomerData(
            first_name="Анна", phones=["+79160001122"], manager=shop.alice, manager_set=True
        ),
        items=[ItemData(offer_id=shop.tea.pk, quantity=1)],
    )
    return create_order(shop.site, data, actor=SYSTEM)


def event_types():
    return list(OutboxEvent.objects.filter(type__startswith="telephony.").values_list("type", flat=True))


def test_call_event_links_customer_and_open_order(shop, api, order):
    update_user(shop.alice, actor=SYSTEM, phone_extension="101")
    result = api.post(
        "telephony/call/event",
        {
            "event": {
                "phone": "8 (916) 000-11-22",
                "type": "in",
                "codes": ["101", "555"],
                "userIds": [999999],
                "site": "shop",
                "callExternalId": "pbx-1",
                "externalPhone": "+74950000000",
            }
        },
    )
    assert result.status == 200, result.body
    assert result.body == {"success": True, "notExistCodes": ["555"], "notExistUsers": [999999]}
    call = Call.objects.get()
    assert call.phone == "+79160001122" and call.direction == "in" and call.ended_at is None
    assert call.customer_id == order.customer_id and call.order_id == order.pk
    assert call.manager == shop.alice and call.site == shop.site
    assert event_types() == ["telephony.call_started"]
    assert HistoryRecord.objects.filter(entity="call", entity_id=call.pk, created=True).exists()

    # Ringing reported again is the same call.
    api.post(
        "telephony/call/event", {"event": {"phone": "+79160001122", "type": "in", "callExternalId": "pbx-1"}}
    )
    assert Call.objects.count() == 1 and event_types() == ["telephony.call_started"]

    hangup = {
        "phone": "+79160001122",
        "type": "hangup",
        "hangupStatus": "no answered",
        "callExternalId": "pbx-1",
    }
    assert api.post("telephony/call/event", {"event": hangup}).status == 200
    call.refresh_from_db()
    assert call.result == "no answer" and call.ended_at is not None
    assert event_types() == ["telephony.call_started", "telephony.call_finished", "telephony.call_missed"]
    missed = OutboxEvent.objects.get(type="telephony.call_missed")
    assert missed.payload["customer_id"] == order.customer_id and missed.payload["order_id"] == order.pk
    # A repeated hang-up changes nothing.
    api.post("telephony/call/event", {"event": hangup})
    assert len(event_types()) == 3


def test_answered_outgoing_call_without_id_is_closed_by_its_hangup(shop, api, order):
    api.post(
        "telephony/call/event", {"event": {"phone": "+79160001122", "type": "out", "userIds": [shop.bob.pk]}}
    )
    api.post(
        "telephony/call/event",
        {"event": {"phone": "89160001122", "type": "hangup", "hangupStatus": "answered"}},
    )
    call = Call.objects.get()
    assert call.direction == "out" and call.result == "answered" and call.manager == shop.bob
    assert "telephony.call_missed" not in event_types()


def test_call_event_validation(shop, api):
    bad_phone = api.post("telephony/call/event", {"event": {"phone": "12", "type": "in", "site": "shop"}})
    assert bad_phone.status == 400 and "event.phone" in bad_phone.body["errors"]
    bad_type = api.post("telephony/call/event", {"event": {"phone": "+79160001122", "type": "ring"}})
    assert bad_type.status == 400 and "event.type" in bad_type.body["errors"]
    assert api.post("telephony/call/event", {}).body["errorMsg"] == "Parameter 'event' is missing"
    assert not Call.objects.exists()


def test_upload_twice_reports_duplicates_and_keeps_one_call(shop, api, order):
    calls = [
        {
            "date": "2030-01-02 10:00:00",
            "type": "in",
            "phone": "+7 916 000 11 22",
            "userId": shop.bob.pk,
            "result": "answered",
            "duration": 65,
            "durationWaiting": 5,
            "externalId": "log-1",
            "recordUrl": "https://pbx.example.com/rec/1.mp3",
            "site": "shop",
        }
    ]
    first = api.post("telephony/calls/upload", {"calls": calls})
    assert first.status == 200
    assert first.body == {"success": True, "processedCallsCount": 1, "duplicateCalls": []}
    again = api.post("telephony/calls/upload", {"calls": calls})
    assert again.body == {"success": True, "processedCallsCount": 0, "duplicateCalls": ["log-1"]}
    call = Call.objects.get()
    assert call.duration == 65 and call.waiting == 5 and call.manager == shop.bob
    assert call.customer_id == order.customer_id and call.record_url.endswith("1.mp3")
    assert event_types() == ["telephony.call_finished"]


def test_upload_completes_a_call_known_from_events(shop, api):
    api.post(
        "telephony/call/event", {"event": {"phone": "+79160001122", "type": "in", "callExternalId": "c-7"}}
    )
    log = [
        {
            "date": "2030-01-02 10:00:00",
            "type": "in",
            "phone": "+79160001122",
            "result": "busy",
            "externalId": "c-7",
        }
    ]
    result = api.post("telephony/calls/upload", {"calls": log})
    assert result.body["processedCallsCount"] == 1 and result.body["duplicateCalls"] == []
    call = Call.objects.get()
    assert call.result == "busy" and call.ended_at is not None
    assert event_types() == ["telephony.call_started", "telephony.call_finished", "telephony.call_missed"]
    assert api.post("telephony/calls/upload", {"calls": log}).body["duplicateCalls"] == ["c-7"]


def test_upload_validation_stores_nothing(shop, api):
    calls = [
        {"date": "2030-01-02 10:00:00", "type": "in", "phone": "+79160001122", "externalId": "a"},
        {"date": "2030-01-02 10:00:00", "type": "sideways", "phone": "+79160001122", "externalId": "b"},
    ]
    result = api.post("telephony/calls/upload", {"calls": calls})
    assert result.status == 400 and list(result.body["errors"]) == ["calls[1].type"]
    no_date = api.post("telephony/calls/upload", {"calls": [{"type": "in", "phone": "+79160001122"}]})
    assert no_date.status == 400 and "calls[0].date" in no_date.body["errors"]
    assert not Call.objects.exists()


def test_manager_lookup_by_phone_in_any_format(shop, api, order):
    result = api.get("telephony/manager", {"phone": "8 916 000-11-22"})
    assert result.status == 200
    assert result["manager"]["id"] == shop.alice.pk
    assert result["customer"]["id"] == order.customer_id
    assert result["customer"]["phones"] == [{"number": "+79160001122"}]
    links = result["links"]
    assert links["customerLink"].endswith(f"/customers/{order.customer_id}/")
    assert links["lastOrderLink"].endswith(f"/orders/{order.pk}/")
    assert "newOrderLink" in links and "newCustomerLink" in links

    set_presence(shop.alice, "absent", actor=SYSTEM)
    busy = api.get("telephony/manager", {"phone": "+79160001122", "ignoreStatus": "False"})
    assert "manager" not in busy.body and busy["customer"]["id"] == order.customer_id
    anyway = api.get("telephony/manager", {"phone": "+79160001122", "ignoreStatus": "True", "details": "0"})
    assert (
        anyway.body == {"success": True, "manager": anyway["manager"]}
        and anyway["manager"]["id"] == shop.alice.pk
    )

    nobody = api.get("telephony/manager", {"phone": "+79990001122"})
    assert "customer" not in nobody.body and "manager" not in nobody.body and nobody["links"]["newOrderLink"]
    assert api.get("telephony/manager").body["errorMsg"] == "Parameter 'phone' is missing"


def test_scopes_and_sites(shop, make_api, order):
    reader = make_api(name="reader", scopes=["telephony_read"])
    assert (
        reader.post("telephony/call/event", {"event": {"phone": "+79160001122", "type": "in"}}).status == 403
    )
    assert make_api(name="none", scopes=["order_read"]).get("telephony/manager", {"phone": "1"}).status == 403

    other = make_api(name="other only", sites=["other"])
    denied = other.post(
        "telephony/call/event", {"event": {"phone": "+79160001122", "type": "in", "site": "shop"}}
    )
    assert denied.status == 403
    # The other site's key neither finds nor links the shop's customer.
    assert "customer" not in other.get("telephony/manager", {"phone": "+79160001122"}).body
    other.post("telephony/call/event", {"event": {"phone": "+79160001122", "type": "in"}})
    call = Call.objects.get()
    assert call.site == shop.other_site and call.customer_id is None


def test_customer_on_the_other_site_is_matched_on_its_own_site(shop, api):
    create_customer(shop.other_site, CustomerData(first_name="Отто", phones=["+79160001122"]), actor=SYSTEM)
    api.post("telephony/call/event", {"event": {"phone": "+79160001122", "type": "in", "site": "shop"}})
    assert Call.objects.get().customer_id is None
