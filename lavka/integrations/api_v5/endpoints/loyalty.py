"""API v5: loyalty programmes, participations and bonuses (§2.11), and the order methods
`orders/loyalty/apply` and `orders/loyalty/cancel-bonus-operations` (§2.2.8).

SMS verification: Lavka sends no SMS yet, so no programme asks for a code. Charges and applications
answer without `verification`, programmes show `confirmSmsCharge`/`confirmSmsRegistration` as false,
and `verification/sms/confirm` and `verification/sms/{checkId}/status` know no check: they answer
404 `Not found` in the retailCRM envelope.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from lavka.catalog.models import Offer
from lavka.core.money import ZERO, percent_of, to_money
from lavka.customers.filtersets import search_q
from lavka.customers.models import Customer
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5.endpoints.orders import orders_json
from lavka.integrations.api_v5.endpoints.tasks import (
    ENTITY_ERROR,
    LIST_QUERY,
    action_error,
    customer_ref,
    datetime_range,
    entity_errors,
    filter_bool,
    filter_ints,
    filter_strings,
    filter_text,
    int_value,
    invalid,
    order_ref,
    path_id,
    prefixed,
    scalar,
)
from lavka.integrations.api_v5.errors import (
    AccessDenied,
    ApiError,
    InvalidParameters,
    MissingParameter,
    NotFound,
)
from lavka.integrations.api_v5.request import ApiRequest, pagination
from lavka.integrations.api_v5.router import api
from lavka.loyalty import actions, calculation, queries
from lavka.loyalty.actions import AccountData
from lavka.loyalty.choices import (
    BURN_SOON,
    BURN_SOON_DAYS,
    CREDITS,
    LEVEL_TYPE,
    WAITING_ACTIVATION,
    AccountStatus,
    PrivilegeType,
)
from lavka.loyalty.models import BonusOperation, LoyaltyAccount, LoyaltyLevel, LoyaltyProgram
from lavka.orders.models import Order, OrderItem
from lavka.orders.totals import unit_price

RULES_ERROR = "Validation error"
ALREADY_ENROLLED = "The customer is in this loyalty program already"
INPUT_ERROR = "Errors in the input parameters"
MAX_LINES = 200
MAX_QUANTITY = Decimal(1_000_000_000)  # as an order line holds it (12 digits, 3 of them decimals)
CURSOR_LIMITS = (20, 50, 100, 250)
# Action field → the API's field, for error keys.
ACCOUNT_NAMES = {
    "phone_number": "phoneNumber",
    "card_number": "cardNumber",
    "custom_fields": "customFields",
    "level": "loyaltyLevelId",
    "site": "customer",
}


def _money(value: Decimal | None) -> int | float | None:
    return formats.money(value)


def _none_text(value: Any) -> Any:
    """An unset optional argument may arrive as the text "None" (the official Python client's URL
    encoder writes Python's None so)."""
    return None if value in (None, "", "None", "null") else value


# --- shapes ------------------------------------------------------------------------------------------


def level_json(level: LoyaltyLevel) -> dict[str, Any]:
    """A level as plugins read it (`type`, `privilegeSize`, `privilegeSizePromo`); `sum` is the orders
    sum the level starts at (a Lavka addition)."""
    return {
        "type": LEVEL_TYPE,
        "id": level.pk,
        "name": level.name,
        "privilegeSize": _money(level.percent),
        "privilegeSizePromo": _money(level.percent),
        "sum": _money(level.threshold),
    }


def program_json(program: LoyaltyProgram) -> dict[str, Any]:
    return formats.compact(
        {
            "id": program.pk,
            "name": program.name,
            "active": program.active,
            "blocked": False,
            "currency": program.currency,
            "confirmSmsCharge": False,
            "confirmSmsRegistration": False,
            "createdAt": formats.dt(program.created_at),
            "activatedAt": formats.dt(program.activated_at),
            "deactivatedAt": formats.dt(program.deactivated_at),
            "sites": [site.code for site in program.sites.all()],
            "levels": [level_json(level) for level in program.levels.all()],
            "maxChargePercent": _money(program.max_charge_percent),
        }
    )


def _status(account: LoyaltyAccount) -> str:
    if account.active:
        return AccountStatus.ACTIVATED
    return AccountStatus.DEACTIVATED if account.activated_at else AccountStatus.NOT_CONFIRMED


def account_json(account: LoyaltyAccount) -> dict[str, Any]:
    """A participation (§2.11). `nextLevelSum` is what the customer still has to buy for the next
    level; it is absent on the top level."""
    customer = account.customer
    program = account.program
    spendable, _waiting = queries.balance(account)
    following = queries.next_level(program, account.level)
    out = {
        "id": account.pk,
        "active": account.active,
        "status": _status(account),
        "phoneNumber": account.phone_number,
        "cardNumber": account.card_number,
        "amount": _money(spendable),
        "ordersSum": _money(account.orders_sum),
        "nextLevelSum": _money(max(following.threshold - account.orders_sum, ZERO)) if following else None,
        "level": level_json(account.level) if account.level else None,
        "createdAt": formats.dt(account.created_at),
        "activatedAt": formats.dt(account.activated_at),
        "customer": formats.compact(
            {
                "id": customer.pk,
                "externalId": customer.external_id,
                "site": customer.site.code,
                "firstName": customer.first_name,
                "lastName": customer.last_name,
                "patronymic": customer.patronymic,
            }
        ),
        "loyalty": {"id": program.pk, "name": program.name, "currency": program.currency},
        "customFields": account.custom_fields or [],
    }
    return formats.compact(out)


def operation_json(operation: BonusOperation, *, with_account: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": operation.pk,
        "type": operation.type,
        "createdAt": formats.dt(operation.created_at),
        "amount": _money(operation.amount),
    }
    if operation.order_id:
        order = operation.order
        out["order"] = formats.compact(
            {"id": order.pk, "externalId": order.external_id, "number": order.number}
        )
    if operation.type in CREDITS:
        out["bonus"] = formats.compact(
            {
                "activationDate": formats.date(operation.activation_date),
                "expireDate": formats.date(operation.expire_date),
            }
        )
    if operation.comment:
        out["comment"] = operation.comment
    if with_account:
        out["loyaltyAccount"] = {"id": operation.account_id}
        out["loyalty"] = {"id": operation.account.program_id}
    return out


# --- finding things ----------------------------------------------------------------------------------


def _programs(req: ApiRequest) -> QuerySet:
    programs = LoyaltyProgram.objects.prefetch_related("sites", "levels")
    codes = req.key.site_codes
    if codes is not None:
        programs = programs.filter(pk__in=LoyaltyProgram.objects.filter(sites__code__in=codes).values("pk"))
    return programs


def _accounts(req: ApiRequest) -> QuerySet:
    accounts = LoyaltyAccount.objects.select_related("customer__site", "program", "level").prefetch_related(
        "program__levels"
    )
    return accounts.filter(req.site_q("customer__site"))


def _account(req: ApiRequest, id: str) -> LoyaltyAccount:
    account = (
        LoyaltyAccount.objects.select_related("customer__site", "program", "level")
        .prefetch_related("program__levels")
        .filter(pk=path_id(id))
        .first()
    )
    if account is None:
        raise NotFound()
    req.check_site(account.customer.site)
    return account


def _rules(exc: ValidationError, names: dict[str, str]) -> ApiError:
    """An action's refusal (not enough bonuses, a closed order …) keyed by the API's field names."""
    if not hasattr(exc, "error_dict"):
        return ApiError(RULES_ERROR, 400, {"0": " ".join(exc.messages)})
    return ApiError(
        RULES_ERROR,
        400,
        {names.get(name, name): " ".join(messages) for name, messages in exc.message_dict.items()},
    )


def _decimal(req: ApiRequest, name: str, *, required: bool = False) -> Decimal | None:
    raw = _none_text(req.params.get(name))
    if raw is None:
        if required:
            raise MissingParameter(name)
        return None
    if isinstance(raw, dict | list):
        raise ApiError(RULES_ERROR, 400, {name: "This value should be a number."})
    return formats.parse_decimal(raw, name, error=RULES_ERROR)


def _date(req: ApiRequest, name: str) -> datetime.date | None:
    raw = _none_text(req.params.get(name))
    if isinstance(raw, dict | list):
        raise ApiError(RULES_ERROR, 400, {name: "This value is not a valid date."})
    return formats.parse_date(raw, name, error=RULES_ERROR)


def _comment(req: ApiRequest) -> str:
    raw = _none_text(req.params.get("comment"))
    if isinstance(raw, dict | list):
        raise ApiError(RULES_ERROR, 400, {"comment": "This value is not valid."})
    return "" if raw is None else str(raw)


# --- programmes --------------------------------------------------------------------------------------


@api("GET", "loyalty/loyalties", scope="loyalty_read", query=LIST_QUERY)
def loyalty_list(req: ApiRequest) -> dict[str, Any]:
    """Loyalty programmes."""
    flt = req.filter
    qs = _programs(req)
    if ids := filter_ints(flt, "ids"):
        qs = qs.filter(pk__in=ids)
    active = filter_bool(flt, "active")
    if active is not None:
        qs = qs.filter(active=active)
    if filter_bool(flt, "blocked"):
        qs = qs.none()  # a Lavka programme is never blocked
    if sites := filter_strings(flt, "sites"):
        qs = qs.filter(pk__in=LoyaltyProgram.objects.filter(sites__code__in=sites).values("pk"))
    rows, pages = req.paginate(qs.order_by("id"))
    return {"pagination": pages, "loyalties": [program_json(p) for p in rows]}


@api("GET", "loyalty/loyalties/{id}", scope="loyalty_read")
def loyalty_get(req: ApiRequest, id: str) -> dict[str, Any]:
    """A loyalty programme by id."""
    pk = path_id(id)
    if not LoyaltyProgram.objects.filter(pk=pk).exists():
        raise NotFound()
    program = _programs(req).filter(pk=pk).first()
    if program is None:
        raise AccessDenied()
    return {"loyalty": program_json(program), "requiredFields": []}


# --- accounts ----------------------------------------------------------------------------------------


def _amount_range(qs: QuerySet, flt: dict[str, Any], field: str, low: str, high: str) -> QuerySet:
    for name, lookup in ((low, "gte"), (high, "lte")):
        value = formats.parse_decimal(filter_text(flt, name), f"children[{name}]", error=INPUT_ERROR)
        if value is not None:
            qs = qs.filter(**{f"{field}__{lookup}": value})
    return qs


@api("GET", "loyalty/accounts", scope="loyalty_read", query=LIST_QUERY)
def account_list(req: ApiRequest) -> dict[str, Any]:
    """Participations in loyalty programmes, newest first."""
    flt = req.filter
    qs = _accounts(req)
    ids = filter_ints(flt, "ids")
    if flt.get("id") not in (None, ""):
        ids = [*ids, *filter_ints(flt, "id")]
    if ids:
        qs = qs.filter(pk__in=ids)
    status = filter_text(flt, "status")
    if status == AccountStatus.ACTIVATED:
        qs = qs.filter(active=True)
    elif status == AccountStatus.NOT_CONFIRMED:
        qs = qs.filter(active=False, activated_at__isnull=True)
    elif status == AccountStatus.DEACTIVATED:
        qs = qs.filter(active=False, activated_at__isnull=False)
    elif status:
        raise InvalidParameters("status")
    if customer_ids := filter_ints(flt, "customerId"):
        qs = qs.filter(customer_id__in=customer_ids)
    if external_id := filter_text(flt, "customerExternalId"):
        qs = qs.filter(customer__external_id=external_id[:100])
    if text := filter_text(flt, "customer"):
        qs = qs.filter(customer__in=Customer.objects.filter(search_q(text)))
    if phone := filter_text(flt, "phoneNumber"):
        digits = "".join(ch for ch in phone if ch.isdigit())[-10:]
        qs = qs.filter(phone_number__endswith=digits) if digits else qs.none()
    if card := filter_text(flt, "cardNumber"):
        qs = qs.filter(card_number=card[:64])
    if sites := filter_strings(flt, "sites"):
        qs = qs.filter(customer__site__code__in=sites)
    if loyalties := filter_ints(flt, "loyalties"):
        qs = qs.filter(program_id__in=loyalties)
    if levels := filter_ints(flt, "level"):
        qs = qs.filter(level_id__in=levels)
    qs = _amount_range(qs, flt, "amount", "minAmount", "maxAmount")
    qs = _amount_range(qs, flt, "orders_sum", "minOrdersSum", "maxOrdersSum")
    qs = datetime_range(qs, flt, "created_at", "createdAtFrom", "createdAtTo")
    rows, pages = req.paginate(qs.order_by("-created_at", "-id"))
    return {"pagination": pages, "loyaltyAccounts": [account_json(a) for a in rows]}


def _account_data(raw: dict[str, Any], account: LoyaltyAccount | None) -> AccountData:
    data = AccountData()
    if "phoneNumber" in raw:
        data.phone_number = scalar(raw["phoneNumber"], "phoneNumber")
    if "cardNumber" in raw:
        data.card_number = scalar(raw["cardNumber"], "cardNumber")
    if "customFields" in raw:
        fields = raw["customFields"]
        if fields in (None, "", []):
            fields = {}
        if not isinstance(fields, dict):
            raise invalid("customFields")
        data.custom_fields = fields
    if account is not None and "loyaltyLevelId" in raw:
        data.level_set = True
        if raw["loyaltyLevelId"] not in (None, ""):
            pk = int_value(raw["loyaltyLevelId"], "loyaltyLevelId")
            data.level = LoyaltyLevel.objects.filter(pk=pk, program=account.program_id).first()
            if data.level is None:
                raise invalid("loyaltyLevelId", f"Loyalty level with id={pk} not found.")
    return data


@api("POST", "loyalty/account/create", scope="loyalty_write", entity="loyaltyAccount", query=("site",))
def account_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Enrol a customer in the programme of their site; the participation starts inactive until
    `loyalty/account/{id}/activate`."""
    raw = req.entity("loyaltyAccount")
    with entity_errors("loyaltyAccount", ACCOUNT_NAMES):
        if raw.get("customer") in (None, "", [], {}):
            raise invalid("customer", "This value should not be blank.")
        customer = customer_ref(req, raw["customer"])
        data = _account_data(raw, None)
    try:
        account = actions.create_account(customer, data, actor=req.actor)
    except actions.AlreadyEnrolled:
        # retailCRM's words and key: the Bitrix module recognises a repeated registration by them.
        raise ApiError(ENTITY_ERROR, 400, {"loyalty": ALREADY_ENROLLED}) from None
    except ValidationError as exc:
        raise prefixed(action_error(exc, ACCOUNT_NAMES), "loyaltyAccount") from None
    account = _account(req, str(account.pk))
    return 201, {"site": customer.site.code, "loyaltyAccount": account_json(account), "warnings": []}


@api("GET", "loyalty/account/{id}", scope="loyalty_read")
def account_get(req: ApiRequest, id: str) -> dict[str, Any]:
    """A participation by id."""
    return {"loyaltyAccount": account_json(_account(req, id))}


@api("POST", "loyalty/account/{id}/edit", scope="loyalty_write", entity="loyaltyAccount")
def account_edit(req: ApiRequest, id: str) -> dict[str, Any]:
    """Change the phone, card number, custom fields or (`loyaltyLevelId`) the level of a participation."""
    account = _account(req, id)
    raw = req.entity("loyaltyAccount")
    with entity_errors("loyaltyAccount", ACCOUNT_NAMES):
        actions.update_account(account, _account_data(raw, account), actor=req.actor)
    return {"loyaltyAccount": account_json(_account(req, id)), "warnings": []}


@api("POST", "loyalty/account/{id}/activate", scope="loyalty_write")
def account_activate(req: ApiRequest, id: str) -> dict[str, Any]:
    """Start a participation (no SMS confirmation is asked: the answer has no `verification`)."""
    account = _account(req, id)
    try:
        actions.activate_account(account, actor=req.actor)
    except ValidationError as exc:
        raise _rules(exc, {"program": "loyalty"}) from None
    return {"loyaltyAccount": account_json(_account(req, id))}


# --- bonuses -----------------------------------------------------------------------------------------


@api("POST", "loyalty/account/{id}/bonus/charge", scope="loyalty_write", query=("amount", "comment"))
def bonus_charge(req: ApiRequest, id: str) -> dict[str, Any]:
    """Take bonuses from a participation; more than it holds is refused (400, `errors.amount`)."""
    account = _account(req, id)
    amount = _decimal(req, "amount", required=True)
    try:
        actions.charge(account, amount, actor=req.actor, comment=_comment(req))
    except ValidationError as exc:
        raise _rules(exc, {}) from None
    return {}


@api(
    "POST",
    "loyalty/account/{id}/bonus/credit",
    scope="loyalty_write",
    query=("amount", "activationDate", "expireDate", "comment"),
)
def bonus_credit(req: ApiRequest, id: str) -> dict[str, Any]:
    """Credit bonuses to a participation, spendable from `activationDate` until `expireDate`."""
    account = _account(req, id)
    amount = _decimal(req, "amount", required=True)
    try:
        operation = actions.credit(
            account,
            amount,
            actor=req.actor,
            activation_date=_date(req, "activationDate"),
            expire_date=_date(req, "expireDate"),
            comment=_comment(req),
        )
    except ValidationError as exc:
        raise _rules(exc, {"activation_date": "activationDate", "expire_date": "expireDate"}) from None
    bonus = {
        "amount": _money(operation.amount),
        "activationDate": formats.date(operation.activation_date),
        "expireDate": formats.date(operation.expire_date),
    }
    return {"loyaltyBonus": formats.compact(bonus)}


@api("GET", "loyalty/account/{id}/bonus/operations", scope="loyalty_read", query=LIST_QUERY)
def account_operations(req: ApiRequest, id: str) -> dict[str, Any]:
    """The bonus operations of a participation, newest first."""
    account = _account(req, id)
    qs = BonusOperation.objects.filter(account=account).select_related("order")
    qs = datetime_range(qs, req.filter, "created_at", "createdAtFrom", "createdAtTo")
    rows, pages = req.paginate(qs.order_by("-created_at", "-id"))
    return {"pagination": pages, "bonusOperations": [operation_json(op) for op in rows]}


@api("GET", "loyalty/account/{id}/bonus/{status}/details", scope="loyalty_read", query=LIST_QUERY)
def bonus_details(req: ApiRequest, id: str, status: str) -> dict[str, Any]:
    """Bonuses by date: `waiting_activation` (by the day they become spendable) or `burn_soon` (by
    the day they expire; `filter[date]` sets the horizon, 30 days by default)."""
    account = _account(req, id)
    state = queries.state(account)
    if status == WAITING_ACTIVATION:
        days = state.waiting_activation()
    elif status == BURN_SOON:
        horizon = formats.parse_datetime(
            filter_text(req.filter, "date") or None, "children[date]", error=INPUT_ERROR
        )
        until = (
            timezone.localdate(horizon) if horizon else state.today + datetime.timedelta(days=BURN_SOON_DAYS)
        )
        days = state.burning(until)
    else:
        raise InvalidParameters("status")
    limit, page = req.limit_page()
    rows = list(days.items())
    shown = rows[(page - 1) * limit : page * limit]
    return {
        "pagination": pagination(limit, page, len(rows)),
        "statistic": {"totalAmount": _money(sum(days.values(), ZERO))},
        "bonuses": [{"date": formats.date(day), "amount": _money(amount)} for day, amount in shown],
    }


def _cursor(value: Any) -> int:
    """The last id a page showed, from the opaque cursor the previous page gave."""
    if value in (None, ""):
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(str(value).encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidParameters("cursor") from None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 1
        or type(decoded[0]) is not int
        or not 0 <= decoded[0] < 2**63
    ):
        raise InvalidParameters("cursor")
    return decoded[0]


def _next_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([last_id]).encode()).decode("ascii")


@api("GET", "loyalty/bonus/operations", scope="loyalty_read", query=("filter", "limit", "cursor"))
def all_operations(req: ApiRequest) -> dict[str, Any]:
    """Every bonus operation, oldest first, read page by page with `cursor` (`pagination.nextCursor`
    is absent on the last page)."""
    limit, _page = req.limit_page(CURSOR_LIMITS)
    after = _cursor(req.params.get("cursor"))
    qs = BonusOperation.objects.filter(pk__gt=after, **_site_filter(req)).select_related("order", "account")
    if loyalties := filter_ints(req.filter, "loyalties"):
        qs = qs.filter(account__program_id__in=loyalties)
    rows = list(qs.order_by("id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    pages = {"nextCursor": _next_cursor(rows[-1].pk)} if more else {}
    return {"pagination": pages, "bonusOperations": [operation_json(op, with_account=True) for op in rows]}


def _site_filter(req: ApiRequest) -> dict[str, Any]:
    codes = req.key.site_codes
    return {} if codes is None else {"account__customer__site__code__in": codes}


# --- calculation for a cart or an order --------------------------------------------------------------


def _line(site_id: int, raw: Any, index: int) -> calculation.Line:
    label = f"items[{index}]"
    if not isinstance(raw, dict):
        raise invalid(label)
    quantity = formats.parse_decimal(raw.get("quantity", 1), f"{label}.quantity")
    if quantity is None or quantity <= 0:
        raise invalid(f"{label}.quantity", "This value should be greater than 0.")
    if quantity >= MAX_QUANTITY:
        raise invalid(f"{label}.quantity", "This value is too big.")
    price = formats.parse_decimal(raw.get("initialPrice"), f"{label}.initialPrice")
    if price is None:
        price = _offer_price(site_id, raw.get("offer"))
    amount = formats.parse_decimal(raw.get("discountManualAmount"), f"{label}.discountManualAmount") or ZERO
    percent = (
        formats.parse_decimal(raw.get("discountManualPercent"), f"{label}.discountManualPercent") or ZERO
    )
    if price < 0 or amount < 0 or not 0 <= percent <= 100:
        raise invalid(label, "Prices and discounts cannot be negative.")
    price, amount = to_money(price), to_money(amount)
    return calculation.Line(price, unit_price(price, amount, percent), quantity)


def _offer_price(site_id: int, ref: Any) -> Decimal:
    """A line without `initialPrice`: the price of the offer it names, if the catalog knows it."""
    if not isinstance(ref, dict):
        return ZERO
    offers = Offer.objects.for_site(site_id)
    offer = None
    text_id = str(ref.get("id", ""))
    if text_id.isascii() and text_id.isdigit() and len(text_id) < 19:
        offer = offers.filter(pk=int(text_id)).first()
    elif ref.get("externalId") not in (None, ""):
        offer = offers.filter(external_id=formats.external_id(ref["externalId"])).first()
    elif ref.get("xmlId") not in (None, ""):
        offer = offers.filter(xml_id=formats.external_id(ref["xmlId"])).first()
    return offer.price if offer else ZERO


def _calculation(req: ApiRequest, raw: dict[str, Any], bonuses: Decimal) -> dict[str, Any]:
    with entity_errors("order"):
        site = req.site(required=True, value=scalar(raw.get("site"), "site") or None)
        assert site is not None
        customer = customer_ref(req, raw["customer"]) if raw.get("customer") else None
        items = raw.get("items") or []
        if not isinstance(items, list) or len(items) > MAX_LINES:
            raise invalid("items")
        lines = [_line(site.pk, item, index) for index, item in enumerate(items)]
        order_amount = formats.parse_decimal(raw.get("discountManualAmount"), "discountManualAmount") or ZERO
        order_percent = (
            formats.parse_decimal(raw.get("discountManualPercent"), "discountManualPercent") or ZERO
        )
        delivery = raw.get("delivery") if isinstance(raw.get("delivery"), dict) else {}
        delivery_cost = formats.parse_decimal(delivery.get("cost"), "delivery.cost") or ZERO
        if order_amount < 0 or not 0 <= order_percent <= 100 or delivery_cost < 0:
            raise invalid("discountManualAmount", "Discounts and costs cannot be negative.")
    items_total = sum((line.total for line in lines), ZERO)
    order_discount = to_money(order_amount + percent_of(items_total, order_percent))
    payable = calculation.payable(lines, order_discount)
    account = queries.account_for_customer(customer, site) if customer else None
    level = account.level if account else None
    privileged = bool(account and account.active and account.program.active and level)
    balance = queries.balance(account)[0] if account else ZERO
    most = (
        calculation.max_charge(payable, balance, account.program.max_charge_percent) if privileged else ZERO
    )
    if bonuses > most:
        raise ApiError(RULES_ERROR, 400, {"bonuses": f"At most {most} bonuses can pay for this order."})
    credit = calculation.credit_for(payable - bonuses, level.percent) if privileged and level else ZERO
    totals = [line.total for line in lines]
    charges = calculation.spread(bonuses, totals)
    credits = calculation.spread(credit, [t - c for t, c in zip(totals, charges, strict=True)])
    manual = sum((to_money((line.initial_price - line.unit) * line.quantity) for line in lines), ZERO)
    out_items = []
    for raw_item, line, charged, credited in zip(items, lines, charges, credits, strict=True):
        per_unit = charged / line.quantity
        item = {
            "initialPrice": _money(line.initial_price),
            "quantity": _money(line.quantity),
            "discountTotal": _money(to_money(line.initial_price - line.unit + per_unit)),
            "prices": [{"price": _money(to_money(line.unit - per_unit)), "quantity": _money(line.quantity)}],
            "bonusesChargeTotal": _money(charged),
            "bonusesCreditTotal": _money(credited),
            "discounts": [{"type": "bonus_charge", "amount": _money(charged)}] if charged else [],
        }
        for key in ("offer", "externalIds"):
            if key in raw_item:
                item[key] = raw_item[key]
        out_items.append(item)
    order: dict[str, Any] = {
        "bonusesCreditTotal": _money(credit),
        "bonusesChargeTotal": _money(bonuses),
        "privilegeType": PrivilegeType.LOYALTY_LEVEL if privileged else PrivilegeType.NONE,
        "totalSumm": _money(payable - bonuses + delivery_cost),
        "personalDiscountPercent": 0,
        "customer": {"personalDiscount": 0},
        "delivery": {"cost": _money(delivery_cost)},
        "site": site.code,
        "items": out_items,
    }
    if account is not None:
        order["loyaltyAccount"] = {"id": account.pk, "amount": _money(balance)}
    if level is not None:
        order["loyaltyLevel"] = {"id": level.pk, "name": level.name}
    none = {
        "privilegeType": PrivilegeType.NONE,
        "discount": _money(manual + order_discount),
        "creditBonuses": 0,
        "maxChargeBonuses": 0,
        "maximum": not privileged,
    }
    calculations = [none]
    if privileged:
        calculations.insert(
            0,
            {
                "privilegeType": PrivilegeType.LOYALTY_LEVEL,
                "discount": _money(manual + order_discount),
                "creditBonuses": _money(calculation.credit_for(payable, level.percent)),
                "maxChargeBonuses": _money(most),
                "maximum": True,
            },
        )
    result: dict[str, Any] = {"order": order, "calculations": calculations}
    if account is not None:
        result["loyalty"] = {"name": account.program.name, "chargeRate": 1}
    return result


@api("POST", "loyalty/calculate", scope="loyalty_read", entity="order", query=("site", "bonuses"))
def calculate(req: ApiRequest) -> dict[str, Any]:
    """What a cart or an order would get: bonuses it may take (`maxChargeBonuses`), bonuses it would
    earn, and the charge of `bonuses` spread over the lines. Nothing is written."""
    raw = req.entity("order")
    bonuses = _decimal(req, "bonuses") or ZERO
    if bonuses < 0:
        raise ApiError(RULES_ERROR, 400, {"bonuses": "This value should be positive."})
    return _calculation(req, raw, bonuses)


# --- orders ------------------------------------------------------------------------------------------


def loyalty_order_json(order: Order) -> dict[str, Any]:
    """The order as `GET orders/{id}` shows it, with its loyalty figures: the bonuses it took as a
    `bonus_charge` discount on each line (in proportion to the line), and what it earns."""
    [out] = orders_json([order.pk])
    bonuses = queries.order_bonuses(order)
    earned = bonuses.credited or bonuses.expected_credit
    totals = [row["summ"] for row in OrderItem.objects.filter(order=order).order_by("id").values("summ")]
    charges = calculation.spread(bonuses.charged, totals)
    credits = calculation.spread(earned, [t - c for t, c in zip(totals, charges, strict=True)])
    for item, charged, credited in zip(out["items"], charges, credits, strict=True):
        item["discounts"] = [{"type": "bonus_charge", "amount": _money(charged)}] if charged else []
        item["bonusesChargeTotal"] = _money(charged)
        item["bonusesCreditTotal"] = _money(credited)
    account, level = bonuses.account, bonuses.level
    privileged = account is not None and account.active and level is not None
    out["privilegeType"] = PrivilegeType.LOYALTY_LEVEL if privileged else PrivilegeType.NONE
    out["bonusesChargeTotal"] = _money(bonuses.charged)
    out["bonusesCreditTotal"] = _money(earned)
    if account is not None:
        out["loyaltyAccount"] = {"id": account.pk}
    if level is not None:
        out["loyaltyLevel"] = {"id": level.pk, "name": level.name}
    return out


def _order(req: ApiRequest) -> Order:
    raw = req.entity("order")
    if req.params.get("site") not in (None, ""):
        req.site()  # an unknown or foreign site is refused before the order is looked up
    return order_ref(req, raw)


@api("POST", "orders/loyalty/apply", scope="loyalty_write", entity="order", query=("site", "bonuses"))
def order_apply(req: ApiRequest) -> dict[str, Any]:
    """Pay part of an order with the customer's bonuses. Applying again sets the amount rather than
    adding to it; the answer has no `verification` (no SMS is asked)."""
    order = _order(req)
    bonuses = _decimal(req, "bonuses")
    if bonuses is None:
        bonuses = _decimal(req, "bonus", required=False)  # some clients name it so
    if bonuses is None:
        raise MissingParameter("bonuses")
    try:
        order = actions.apply_to_order(order, bonuses, actor=req.actor)
    except ValidationError as exc:
        raise _rules(exc, {}) from None
    return {"order": loyalty_order_json(order)}


@api("POST", "orders/loyalty/cancel-bonus-operations", scope="loyalty_write", entity="order", query=("site",))
def order_cancel_bonuses(req: ApiRequest) -> dict[str, Any]:
    """Give back the bonuses an order took and take back those it earned."""
    order = _order(req)
    try:
        order = actions.cancel_order_operations(order, actor=req.actor)
    except ValidationError as exc:
        raise _rules(exc, {}) from None
    return {"order": loyalty_order_json(order)}


# --- SMS verification --------------------------------------------------------------------------------


@api("POST", "verification/sms/confirm", scope="verification_write", entity="verification")
def verification_confirm(req: ApiRequest) -> dict[str, Any]:
    """Confirm a code: Lavka starts no SMS checks, so every `checkId` is unknown (404)."""
    raw = req.entity("verification")
    if raw.get("checkId") in (None, ""):
        raise ApiError(ENTITY_ERROR, 400, {"verification.checkId": "This value should not be blank."})
    scalar(raw["checkId"], "verification.checkId")
    raise NotFound()


@api("GET", "verification/sms/{checkId}/status", scope="verification_read")
def verification_status(req: ApiRequest, checkId: str) -> dict[str, Any]:
    """The state of an SMS check: none exists in Lavka (404)."""
    raise NotFound()
