"""API v5: telephony (§2.8) — live call events, the uploaded call log, and who should take a call."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.urls import reverse

from lavka.accounts.models import User
from lavka.core.models import Site
from lavka.core.phones import InvalidPhone, normalize_phone
from lavka.customers.filtersets import phone_customer_ids
from lavka.customers.models import Customer
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.endpoints.tasks import entity_errors, invalid, plain_id, scalar
from lavka.integrations.api_v5.errors import ENTITY_ERROR, ApiError, MissingParameter
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api
from lavka.orders.models import Order
from lavka.telephony.actions import CallData, CallEvent, record_call_event, upload_calls
from lavka.telephony.models import Call

MAX_UPLOAD = 250
MAX_LIST = 100  # codes / userIds in one event
# Digits a number without a country must have before a "contains" search is worth trusting.
MIN_PARTIAL_DIGITS = 7


def _list(value: Any, field: str) -> list[str]:
    try:
        values = p.string_list(value, field)
    except p.ParameterError:
        raise invalid(field) from None
    if len(values) > MAX_LIST:
        raise invalid(field, f"At most {MAX_LIST} values.")
    return [scalar(v, field).strip() for v in values if v.strip()]


def _call_site(req: ApiRequest, value: Any, field: str) -> Site | None:
    """The call's site; a key limited to several sites must say which (it may not match across)."""
    if value not in (None, ""):
        return req.site_by_code(scalar(value, field), field)
    return req.site(required=req.key.site_codes is not None)


def _users_by_ids(raw: list[str]) -> tuple[list[User], list[Any]]:
    """Active users with these ids, and the ids that name none (as given when not a number)."""
    ids = [plain_id(v) for v in raw]
    found = {u.pk: u for u in User.objects.filter(pk__in=[i for i in ids if i], is_active=True)}
    missing = [v if i is None else i for i, v in zip(ids, raw, strict=True) if i not in found]
    return [found[i] for i in ids if i in found], missing


def _users_by_codes(codes: list[str]) -> tuple[list[User], list[str]]:
    users = list(User.objects.filter(phone_extension__in=codes, is_active=True).order_by("id"))
    by_code = {}
    for user in users:
        by_code.setdefault(user.phone_extension, user)
    return [by_code[c] for c in codes if c in by_code], [c for c in codes if c not in by_code]


@api("POST", "telephony/call/event", scope="telephony_write", entity="event")
def call_event(req: ApiRequest) -> dict[str, Any]:
    """A live call event: ringing (`in`), dialling (`out`) or `hangup`."""
    data = req.entity("event")
    with entity_errors("event"):
        phone = scalar(data.get("phone"), "phone")
        if not phone.strip():
            raise invalid("phone", "This value should not be blank.")
        site = _call_site(req, data.get("site"), "site")
        by_id, not_exist_users = _users_by_ids(_list(data.get("userIds"), "userIds"))
        by_code, not_exist_codes = _users_by_codes(_list(data.get("codes"), "codes"))
        event = CallEvent(
            type=scalar(data.get("type"), "type"),
            phone=phone,
            site=site,
            managers=list(dict.fromkeys(by_id + by_code)),
            hangup_status=scalar(data.get("hangupStatus"), "hangupStatus"),
            external_id=formats.external_id(data.get("callExternalId")),
            external_phone=scalar(data.get("externalPhone"), "externalPhone"),
        )
        record_call_event(event, actor=req.actor)
    return {"notExistCodes": not_exist_codes, "notExistUsers": not_exist_users}


def _seconds(value: Any, field: str) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, bool):
        raise invalid(field)
    try:
        return int(float(scalar(value, field)))
    except (ValueError, OverflowError):
        raise invalid(field) from None


def _call_data(req: ApiRequest, index: int, item: Any) -> CallData:
    prefix = f"calls[{index}]"
    if not isinstance(item, dict):
        raise invalid(prefix)
    started_at = formats.parse_datetime(scalar(item.get("date"), f"{prefix}.date") or None, f"{prefix}.date")
    if started_at is None:
        raise invalid(f"{prefix}.date", "This value should not be blank.")
    manager = None
    if item.get("userId") not in (None, ""):
        users, _missing = _users_by_ids([scalar(item["userId"], f"{prefix}.userId")])
        manager = users[0] if users else None
    elif item.get("code") not in (None, ""):
        users, _missing = _users_by_codes([scalar(item["code"], f"{prefix}.code")])
        manager = users[0] if users else None
    return CallData(
        direction=scalar(item.get("type"), f"{prefix}.type"),
        phone=scalar(item.get("phone"), f"{prefix}.phone"),
        started_at=started_at,
        site=_call_site(req, item.get("site"), f"{prefix}.site"),
        manager=manager,
        result=scalar(item.get("result"), f"{prefix}.result") or Call.Result.UNKNOWN,
        duration=_seconds(item.get("duration"), f"{prefix}.duration"),
        waiting=_seconds(item.get("durationWaiting"), f"{prefix}.durationWaiting"),
        external_id=formats.external_id(item.get("externalId")),
        record_url=scalar(item.get("recordUrl"), f"{prefix}.recordUrl").strip(),
        external_phone=scalar(item.get("externalPhone"), f"{prefix}.externalPhone"),
    )


@api("POST", "telephony/calls/upload", scope="telephony_write", entity="calls")
def calls_upload(req: ApiRequest) -> dict[str, Any]:
    """The telephony's call log; a call uploaded before is reported in `duplicateCalls`."""
    items = req.entity("calls", kind=list)
    if len(items) > MAX_UPLOAD:
        raise ApiError(ENTITY_ERROR, 400, {"calls": f"At most {MAX_UPLOAD} calls at once."})
    calls = [_call_data(req, i, item) for i, item in enumerate(items)]
    try:
        result = upload_calls(calls, actor=req.actor)
    except ValidationError as exc:
        # "3.waiting" → "calls[3].durationWaiting"
        names = {"waiting": "durationWaiting"}
        errors = {}
        for key, messages in exc.message_dict.items():
            index, _dot, name = key.partition(".")
            errors[f"calls[{index}].{names.get(name, name)}"] = " ".join(messages)
        raise ApiError(ENTITY_ERROR, 400, errors) from None
    return {"processedCallsCount": len(result.calls), "duplicateCalls": result.duplicates}


def _customer_by_phone(req: ApiRequest, raw: str) -> Customer | None:
    """The newest customer of the key's sites with this number, written in any format."""
    site = req.site()
    try:
        key = normalize_phone(raw, site.country if site else "RU")
    except InvalidPhone:
        digits = "".join(ch for ch in raw if ch in "0123456789")
        if len(digits) < MIN_PARTIAL_DIGITS:
            return None
        key = digits
    customers = Customer.objects.active().filter(req.site_q("site"), pk__in=phone_customer_ids(key))
    if site is not None:
        customers = customers.filter(site=site)
    return customers.select_related("site", "manager").order_by("-created_at", "-id").first()


def _link(req: ApiRequest, path: str) -> str:
    return req.http.build_absolute_uri(path) if req.http is not None else path


@api("GET", "telephony/manager", scope="telephony_read", query=("phone", "details", "ignoreStatus", "site"))
def responsible_manager(req: ApiRequest) -> dict[str, Any]:
    """Who should take a call from this number: the customer's responsible manager."""
    phone = req.text("phone").strip()[:40]
    if not phone:
        raise MissingParameter("phone")
    details = req.bool("details", True)
    ignore_status = req.bool("ignoreStatus", False)
    customer = _customer_by_phone(req, phone)
    out: dict[str, Any] = {}
    manager = customer.manager if customer else None
    if (
        manager is not None
        and manager.is_active
        and (ignore_status or manager.presence == User.Presence.WORKING)
    ):
        out["manager"] = formats.compact(
            {
                "id": manager.pk,
                "firstName": manager.first_name,
                "lastName": manager.last_name,
                "patronymic": manager.patronymic,
                "email": manager.email,
                "code": manager.phone_extension,
            }
        )
    if not details:
        return out
    site = customer.site if customer else req.site()
    new_order = reverse("orders:create") + (f"?site={site.code}" if site else "")
    links = {
        "newOrderLink": _link(req, new_order),
        "newCustomerLink": _link(req, reverse("customers:create")),
    }
    if customer is not None:
        out["customer"] = formats.compact(
            {
                "id": customer.pk,
                "externalId": customer.external_id,
                "firstName": customer.first_name,
                "lastName": customer.last_name,
                "patronymic": customer.patronymic,
                "email": customer.email,
                "phones": [{"number": ph.number} for ph in customer.phones.all()],
            }
        )
        links["customerLink"] = _link(req, reverse("customers:detail", args=[customer.pk]))
        last_order = Order.objects.filter(customer=customer).order_by("-created_at", "-id").first()
        if last_order is not None:
            links["lastOrderLink"] = _link(req, reverse("orders:detail", args=[last_order.pk]))
    out["links"] = links
    return out
