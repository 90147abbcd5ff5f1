"""The only writers of calls (DESIGN.md §6): each action writes the change, its history and its events
in one transaction.

Calls reach Lavka two ways: live events from the telephony (ringing, answered, hung up) and its call
log uploaded afterwards. Both land on the same row when they carry the same external id.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import Site
from lavka.core.phones import InvalidPhone, normalize_phone
from lavka.core.validation import clean_text
from lavka.customers.models import Customer
from lavka.orders.models import Order
from lavka.telephony.events import CallFinished, CallMissed, CallStarted
from lavka.telephony.models import Call

ENTITY = "call"
TRACKED_FIELDS = {
    "direction": "direction",
    "phone": "phone",
    "external_id": "external_id",
    "manager_id": "manager",
    "customer_id": "customer",
    "order_id": "order",
    "started_at": "started_at",
    "ended_at": "ended_at",
    "duration": "duration",
    "waiting": "waiting",
    "result": "result",
    "record_url": "record_url",
    "external_phone": "external_phone",
}
# The telephony's hang-up statuses (§2.8) as call results.
HANGUP_RESULTS = {
    "answered": Call.Result.ANSWERED,
    "busy": Call.Result.BUSY,
    "cancel": Call.Result.NO_ANSWER,
    "failed": Call.Result.FAILED,
    "no answered": Call.Result.NO_ANSWER,
    "no answer": Call.Result.NO_ANSWER,
}
EVENT_TYPES = ("in", "out", "hangup")
# A hang-up without the call's id closes the latest open call to the same number within this time.
OPEN_CALL_WINDOW = datetime.timedelta(hours=12)
MAX_SECONDS = 7 * 24 * 3600


@dataclass
class CallEvent:
    """One live event from the telephony."""

    type: str  # in | out | hangup
    phone: str
    site: Site | None = None
    managers: list[Any] = field(default_factory=list)  # users the call rings for / who took it
    hangup_status: str = ""
    external_id: str | None = None
    external_phone: str = ""


@dataclass
class CallData:
    """One finished call from the telephony's log."""

    direction: str
    phone: str
    started_at: datetime.datetime
    site: Site | None = None
    manager: Any = None
    result: str = Call.Result.UNKNOWN
    duration: int = 0
    waiting: int = 0
    external_id: str | None = None
    record_url: str = ""
    external_phone: str = ""


@dataclass
class UploadResult:
    calls: list[Call]  # stored or completed by this upload
    duplicates: list[str]  # external ids already uploaded before


def clean_call_phone(raw: Any, site: Site | None, field_name: str = "phone") -> str:
    try:
        return normalize_phone(str(raw or ""), site.country if site else "RU")
    except InvalidPhone as exc:
        raise ValidationError({field_name: _("Enter a valid phone number.")}) from exc


def match_customer(phone: str, site: Site | None) -> tuple[Customer | None, Order | None]:
    """The customer with this number (the newest, if several) and their latest open order."""
    customers = Customer.objects.active().filter(phones__number=phone)
    if site is not None:
        customers = customers.filter(site=site)
    customer = customers.order_by("-created_at", "-id").first()
    if customer is None:
        return None, None
    order = Order.objects.filter(customer=customer).open().order_by("-created_at", "-id").first()
    return customer, order


def _created(call: Call, actor: Actor) -> None:
    changes = [
        Change(
            ENTITY, call.pk, "id", None, call.pk, created=True, context={"site": call.site and call.site.code}
        )
    ]
    changes += [
        Change(ENTITY, call.pk, name, None, value, created=True)
        for name, value in history.snapshot(call, TRACKED_FIELDS).items()
        if value not in (None, "", 0)
    ]
    history.write(changes, actor)


def _finished(call: Call, actor: Actor) -> None:
    site = call.site.code if call.site else None
    events.emit(
        CallFinished(
            call.pk,
            site,
            call.direction,
            call.phone,
            call.result,
            call.duration,
            call.manager_id,
            call.customer_id,
            call.order_id,
        ),
        actor=actor,
    )
    if call.missed:
        events.emit(
            CallMissed(call.pk, site, call.phone, call.manager_id, call.customer_id, call.order_id),
            actor=actor,
        )


def _insert(call: Call) -> bool:
    """Save a new call; False if its external id is already taken (a concurrent report of it)."""
    try:
        with transaction.atomic():
            call.save()
    except IntegrityError:
        return False
    return True


def _clean_event(event: CallEvent) -> tuple[str, str]:
    if event.type not in EVENT_TYPES:
        raise ValidationError({"type": _("Unknown event type.")})
    if event.hangup_status and event.hangup_status not in HANGUP_RESULTS:
        raise ValidationError({"hangupStatus": _("Unknown value.")})
    phone = clean_call_phone(event.phone, event.site)
    return phone, clean_text(event.external_phone, "externalPhone", 40)


@transaction.atomic
def record_call_event(event: CallEvent, *, actor: Actor) -> Call:
    """Start a call (`in`/`out`) or finish it (`hangup`). A repeated event changes nothing twice."""
    phone, external_phone = _clean_event(event)
    external_id = clean_text(event.external_id, "callExternalId", 255) or None
    now = timezone.now()
    call = _open_call(external_id, phone, event.site, now, hangup=event.type == "hangup")
    if call is None:
        customer, order = match_customer(phone, event.site)
        call = Call(
            site=event.site or (customer.site if customer else None),
            direction=Call.Direction.OUT if event.type == "out" else Call.Direction.IN,
            phone=phone,
            external_id=external_id,
            manager=event.managers[0] if event.managers else None,
            customer=customer,
            order=order,
            started_at=now,
            external_phone=external_phone,
        )
        if event.type == "hangup":  # the start was never reported: a call that has just ended
            call.ended_at, call.result = now, HANGUP_RESULTS.get(event.hangup_status, Call.Result.UNKNOWN)
        if _insert(call):
            _created(call, actor)
            site = call.site.code if call.site else None
            if call.ended_at is None:
                events.emit(
                    CallStarted(
                        call.pk, site, call.direction, phone, call.manager_id, call.customer_id, call.order_id
                    ),
                    actor=actor,
                )
            else:
                _finished(call, actor)
            return call
        call = Call.objects.select_for_update().get(external_id=external_id)
    return _update_from_event(call, event, now, actor)


def _open_call(
    external_id: str | None, phone: str, site: Site | None, now: datetime.datetime, *, hangup: bool
) -> Call | None:
    calls = Call.objects.select_for_update()
    if external_id:
        return calls.filter(external_id=external_id).first()
    if not hangup:
        return None
    recent = calls.filter(phone=phone, ended_at__isnull=True, started_at__gte=now - OPEN_CALL_WINDOW)
    if site is not None:
        recent = recent.filter(site=site)
    return recent.order_by("-started_at", "-id").first()


def _update_from_event(call: Call, event: CallEvent, now: datetime.datetime, actor: Actor) -> Call:
    if call.ended_at is not None:
        return call  # the call is over: a late or repeated event
    before = history.snapshot(call, TRACKED_FIELDS)
    if call.manager_id is None and event.managers:
        call.manager = event.managers[0]
    if event.type == "hangup":
        call.ended_at = now
        call.result = HANGUP_RESULTS.get(event.hangup_status, Call.Result.UNKNOWN)
        # Live events do not say when the call was picked up: the whole time counts as talk if it
        # was answered and as waiting if not. The uploaded call log later brings the exact figures.
        elapsed = min(int((now - call.started_at).total_seconds()), MAX_SECONDS)
        if call.result == Call.Result.ANSWERED:
            call.duration = elapsed
        else:
            call.waiting = elapsed
    call.save()
    history.write(history.diff(ENTITY, call.pk, before, history.snapshot(call, TRACKED_FIELDS)), actor)
    if call.ended_at is not None:
        _finished(call, actor)
    return call


def _clean_upload(data: CallData) -> CallData:
    if data.direction not in Call.Direction.values:
        raise ValidationError({"type": _("Unknown value.")})
    if data.result not in Call.Result.values:
        raise ValidationError({"result": _("Unknown value.")})
    for name in ("duration", "waiting"):
        value = getattr(data, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SECONDS:
            raise ValidationError({name: _("Enter a whole number of seconds.")})
    if data.record_url:
        try:
            URLValidator(schemes=["http", "https"])(data.record_url)
        except ValidationError as exc:
            raise ValidationError({"recordUrl": _("Enter a valid URL.")}) from exc
        if len(data.record_url) > 1000:
            raise ValidationError({"recordUrl": _("At most %(n)s characters.") % {"n": 1000}})
    data.phone = clean_call_phone(data.phone, data.site)
    data.external_id = clean_text(data.external_id, "externalId", 255) or None
    data.external_phone = clean_text(data.external_phone, "externalPhone", 40)
    return data


@transaction.atomic
def upload_calls(calls: list[CallData], *, actor: Actor) -> UploadResult:
    """Store the telephony's call log. All calls are checked first (errors keyed `<index>.<field>`);
    an external id uploaded before is reported as a duplicate and stored no second time."""
    errors: dict[str, list[str]] = {}
    for index, data in enumerate(calls):
        try:
            _clean_upload(data)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                errors[f"{index}.{name}"] = messages
    if errors:
        raise ValidationError(errors)
    result = UploadResult([], [])
    now = timezone.now()
    for data in calls:
        existing = (
            Call.objects.select_for_update().filter(external_id=data.external_id).first()
            if data.external_id
            else None
        )
        if existing is not None and existing.uploaded_at is not None:
            result.duplicates.append(data.external_id or "")
        elif existing is not None:
            result.calls.append(_complete_from_log(existing, data, now, actor))
        else:
            call = _new_from_log(data, now)
            if _insert(call):
                _created(call, actor)
                _finished(call, actor)
                result.calls.append(call)
            else:
                result.duplicates.append(data.external_id or "")
    return result


def _new_from_log(data: CallData, now: datetime.datetime) -> Call:
    customer, order = match_customer(data.phone, data.site)
    return Call(
        site=data.site or (customer.site if customer else None),
        direction=data.direction,
        phone=data.phone,
        external_id=data.external_id,
        manager=data.manager,
        customer=customer,
        order=order,
        started_at=data.started_at,
        ended_at=data.started_at + datetime.timedelta(seconds=data.waiting + data.duration),
        duration=data.duration,
        waiting=data.waiting,
        result=data.result,
        record_url=data.record_url,
        external_phone=data.external_phone,
        uploaded_at=now,
    )


def _complete_from_log(call: Call, data: CallData, now: datetime.datetime, actor: Actor) -> Call:
    """A call known from live events gets the log's exact figures."""
    before = history.snapshot(call, TRACKED_FIELDS)
    was_open = call.ended_at is None
    call.started_at = data.started_at
    call.duration, call.waiting, call.result = data.duration, data.waiting, data.result
    call.ended_at = data.started_at + datetime.timedelta(seconds=data.waiting + data.duration)
    call.record_url = data.record_url or call.record_url
    call.external_phone = data.external_phone or call.external_phone
    if call.manager_id is None:
        call.manager = data.manager
    call.uploaded_at = now
    call.save()
    history.write(history.diff(ENTITY, call.pk, before, history.snapshot(call, TRACKED_FIELDS)), actor)
    if was_open:
        _finished(call, actor)
    return call
