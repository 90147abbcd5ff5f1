from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent
from lavka.telephony.actions import CallEvent, record_call_event
from lavka.telephony.models import Call

SYSTEM = Actor.system("tests")


def test_hangup_of_an_unreported_call_records_a_finished_one(shop):
    call = record_call_event(
        CallEvent(type="hangup", phone="+79160001122", site=shop.site, hangup_status="busy"), actor=SYSTEM
    )
    assert call.ended_at is not None and call.result == Call.Result.BUSY and call.direction == "in"
    types = list(OutboxEvent.objects.values_list("type", flat=True))
    assert types == ["telephony.call_finished", "telephony.call_missed"]


def test_hangup_closes_only_the_latest_open_call_to_that_number(shop):
    first = record_call_event(CallEvent(type="in", phone="+79160001122", site=shop.site), actor=SYSTEM)
    other = record_call_event(CallEvent(type="in", phone="+79160002233", site=shop.site), actor=SYSTEM)
    record_call_event(
        CallEvent(type="hangup", phone="+79160001122", site=shop.site, hangup_status="answered"), actor=SYSTEM
    )
    first.refresh_from_db()
    other.refresh_from_db()
    assert first.result == Call.Result.ANSWERED and other.ended_at is None
