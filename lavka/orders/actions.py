"""The only writers of orders, their lines and payments (DESIGN.md §6)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.catalog.models import Offer
from lavka.core import events, history
from lavka.core.actor import Actor, Source
from lavka.core.history import Change
from lavka.core.models import CustomField, Site
from lavka.core.money import ZERO, to_money
from lavka.core.validation import clean_custom_fields, clean_decimal, clean_email, clean_phone, clean_text
from lavka.customers import actions as customer_actions
from lavka.customers.actions import CustomerData, check_manager
from lavka.customers.models import Customer
from lavka.orders import numbering, totals
from lavka.orders.choices import (
    ADDRESS_PARTS,
    ITEM_TRACKED_FIELDS,
    PAYMENT_TRACKED_FIELDS,
    TRACKED_FIELDS,
    ComplaintReason,
    Group,
)
from lavka.orders.events import (
    OrderCreated,
    OrderFullyPaid,
    OrderManagerChanged,
    OrderPaymentAdded,
    OrdersMerged,
    OrderStatusChanged,
    OrderUpdated,
)
from lavka.orders.models import (
    DeliveryType,
    Order,
    OrderItem,
    OrderMethod,
    OrderType,
    Payment,
    PaymentStatus,
    PaymentType,
    Status,
    StatusGroup,
    StatusTransition,
)

ENTITY = "order"
TEXT_LIMITS = {
    "first_name": 150,
    "last_name": 150,
    "patronymic": 150,
    "delivery_address": 1000,
    "customer_comment": 5000,
    "manager_comment": 5000,
    "source": 255,
    "medium": 255,
    "campaign": 255,
    "keyword": 255,
    "content": 255,
}
MAX_ITEMS = 200
MAX_LINE_IDS = 10  # externalIds per order line


class InvalidTransition(ValidationError):
    def __init__(self, message: str) -> None:
        super().__init__({"status": message})


class OrderExists(ValidationError):
    """Another order of the site has this externalId (or number): the unique constraint said so."""

    def __init__(self, field_name: str = "external_id") -> None:
        super().__init__({field_name: _("Order already exists.")})


@dataclass
class ItemData:
    offer_id: Any = None
    quantity: Any = 1
    initial_price: Any = None  # None: the offer's price
    discount_manual_amount: Any = ZERO
    discount_manual_percent: Any = ZERO
    comment: str = ""
    id: int | None = None  # an existing line, on edit
    product_name: str | None = None  # None: the offer's name
    external_ids: list[dict[str, Any]] | None = None  # the shop's ids of the line: [{code, value}]


@dataclass
class PaymentData:
    type: str = ""
    status: str = ""
    amount: Any = None
    paid_at: datetime.datetime | None = None
    comment: str = ""
    external_id: str | None = None


@dataclass
class OrderData:
    """What a form, the API or an import may set; None means "leave as it is" on edit."""

    customer: Customer | None = None
    new_customer: CustomerData | None = None
    order_type: str | None = None
    order_method: str | None = None
    status: str | None = None
    manager: Any = None
    manager_set: bool = False
    external_id: str | None = None
    number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    patronymic: str | None = None
    phone: str | None = None
    additional_phone: str | None = None
    email: str | None = None
    items: list[ItemData] | None = None
    payments: list[PaymentData] | None = None
    delivery_type: str | None = None
    delivery_cost: Any = None
    delivery_address: str | None = None
    delivery_date: Any = None
    delivery_time_from: Any = None
    delivery_time_to: Any = None
    delivery_address_parts: dict[str, Any] | None = None  # ADDRESS_PARTS → text
    delivery_external_id: str | None = None
    discount_manual_amount: Any = None
    discount_manual_percent: Any = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    keyword: str | None = None
    content: str | None = None
    customer_comment: str | None = None
    manager_comment: str | None = None
    custom_fields: dict[str, Any] | None = None
    created_at: datetime.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _ref(model: Any, code: str | None, field_name: str, *, default: str = "default_for_crm") -> Any:
    if code in (None, ""):
        if default is None:
            return None
        found = model.objects.filter(is_active=True, **{default: True}).first() if default else None
        found = found or model.objects.filter(is_active=True).first()
        if found is None:
            raise ValidationError({field_name: _("Not configured.")})
        return found
    try:
        return model.objects.get(code=code, is_active=True)
    except model.DoesNotExist as exc:
        raise ValidationError({field_name: _("Unknown value “%(code)s”.") % {"code": code}}) from exc


def _parse_date(raw: Any, field_name: str) -> datetime.date | None:
    if raw in (None, ""):
        return None
    try:
        return raw if isinstance(raw, datetime.date) else datetime.date.fromisoformat(str(raw))
    except ValueError as exc:
        raise ValidationError({field_name: _("Enter a valid date.")}) from exc


def _parse_time(raw: Any, field_name: str) -> datetime.time | None:
    if raw in (None, ""):
        return None
    try:
        return raw if isinstance(raw, datetime.time) else datetime.time.fromisoformat(str(raw))
    except ValueError as exc:
        raise ValidationError({field_name: _("Enter a valid time.")}) from exc


def _clean_fields(site: Site, data: OrderData, ref: Callable[..., Any] = _ref) -> dict[str, Any]:
    """`ref` looks reference codes up (bulk import passes a memoised `_ref`)."""
    values: dict[str, Any] = {}
    for name, limit in TEXT_LIMITS.items():
        raw = getattr(data, name)
        if raw is not None:
            values[name] = clean_text(raw, name, limit)
    for name in ("phone", "additional_phone"):
        raw = getattr(data, name)
        if raw is not None:
            values[name] = clean_phone(raw, site, name) if str(raw).strip() else ""
    if data.email is not None:
        values["email"] = clean_email(data.email)
    if data.external_id is not None:
        values["external_id"] = clean_text(data.external_id, "external_id", 100) or None
    if data.order_method is not None:
        values["order_method"] = ref(OrderMethod, data.order_method, "order_method")
    if data.delivery_type is not None:
        values["delivery_type"] = ref(DeliveryType, data.delivery_type, "delivery_type", default=None)
    if data.delivery_cost is not None:
        values["delivery_cost"] = clean_decimal(data.delivery_cost or 0, "delivery_cost")
    if data.delivery_date is not None:
        values["delivery_date"] = _parse_date(data.delivery_date, "delivery_date")
    if data.delivery_time_from is not None:
        values["delivery_time_from"] = _parse_time(data.delivery_time_from, "delivery_time_from")
    if data.delivery_time_to is not None:
        values["delivery_time_to"] = _parse_time(data.delivery_time_to, "delivery_time_to")
    if data.discount_manual_amount is not None:
        values["discount_manual_amount"] = clean_decimal(
            data.discount_manual_amount or 0, "discount_manual_amount"
        )
    if data.discount_manual_percent is not None:
        values["discount_manual_percent"] = clean_decimal(
            data.discount_manual_percent or 0, "discount_manual_percent", maximum=Decimal(100)
        )
    if data.custom_fields is not None:
        values["custom_fields"] = clean_custom_fields(site, CustomField.Entity.ORDER, data.custom_fields)
    if data.delivery_address_parts is not None:
        values["delivery_address_parts"] = _clean_address_parts(data.delivery_address_parts)
    if data.delivery_external_id is not None:
        values["delivery_external_id"] = clean_text(data.delivery_external_id, "delivery_external_id", 100)
    if data.manager_set:
        check_manager(data.manager, site)
        values["manager"] = data.manager
    if data.created_at is not None:
        values["created_at"] = data.created_at
    frm, to = values.get("delivery_time_from"), values.get("delivery_time_to")
    if frm and to and frm >= to:
        raise ValidationError({"delivery_time_to": _("Must be later than the start of the slot.")})
    return values


def _clean_address_parts(parts: dict[str, Any]) -> dict[str, str]:
    if not isinstance(parts, dict):
        raise ValidationError({"delivery_address": _("Expected a set of address parts.")})
    cleaned = {}
    for name in ADDRESS_PARTS:
        text = clean_text(parts.get(name), f"delivery_address.{name}", 255)
        if text:
            cleaned[name] = text
    return cleaned


def _clean_line_ids(raw: Any, field_name: str) -> list[dict[str, str]]:
    """A line's externalIds: a list of {code, value} pairs of short strings."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list) or len(raw) > MAX_LINE_IDS:
        raise ValidationError({field_name: _("Expected a list of {code, value} pairs.")})
    cleaned = []
    for entry in raw:
        if not isinstance(entry, dict) or isinstance(entry.get("value"), dict | list):
            raise ValidationError({field_name: _("Expected a list of {code, value} pairs.")})
        code = clean_text(entry.get("code"), field_name, 100)
        value = clean_text(entry.get("value"), field_name, 100)
        if value and {"code": code, "value": value} not in cleaned:
            cleaned.append({"code": code, "value": value})
    return cleaned


def _clean_items(
    site: Site, items: list[ItemData], offers: dict[int, Offer] | None = None
) -> list[tuple[ItemData, Offer, dict[str, Any]]]:
    """`offers`: preloaded by id (bulk import checks many orders with one query)."""
    if len(items) > MAX_ITEMS:
        raise ValidationError({"items": _("At most %(n)s lines.") % {"n": MAX_ITEMS}})
    offer_ids = []
    for index, item in enumerate(items):
        try:
            offer_id = int(item.offer_id)
        except (TypeError, ValueError) as exc:
            raise ValidationError({f"items.{index}.offer": _("Choose a product.")}) from exc
        if not 0 < offer_id < 2**63:  # beyond a database integer: unknown, not a crash
            raise ValidationError({f"items.{index}.offer": _("Unknown product.")})
        offer_ids.append(offer_id)
    if offers is None:
        offers = Offer.objects.select_related("product").in_bulk(offer_ids)
    cleaned = []
    for index, (item, offer_id) in enumerate(zip(items, offer_ids, strict=True)):
        prefix = f"items.{index}"
        offer = offers.get(offer_id)
        if offer is None or offer.product.site_id != site.pk or not offer.is_active:
            raise ValidationError({f"{prefix}.offer": _("Unknown product.")})
        quantity = clean_decimal(
            item.quantity, f"{prefix}.quantity", minimum=Decimal("0.001"), maximum=Decimal(100000), places=3
        )
        price = clean_decimal(
            offer.price if item.initial_price in (None, "") else item.initial_price, f"{prefix}.initial_price"
        )
        discount = clean_decimal(item.discount_manual_amount or 0, f"{prefix}.discount_manual_amount")
        percent = clean_decimal(
            item.discount_manual_percent or 0, f"{prefix}.discount_manual_percent", maximum=Decimal(100)
        )
        if discount > price:
            raise ValidationError({f"{prefix}.discount_manual_amount": _("The discount exceeds the price.")})
        values = {
            "quantity": quantity,
            "initial_price": price,
            "discount_manual_amount": discount,
            "discount_manual_percent": percent,
            "comment": clean_text(item.comment, f"{prefix}.comment", 1000),
            "product_name": clean_text(item.product_name, f"{prefix}.product_name", 255) or offer.name,
        }
        if item.external_ids is not None:
            values["external_ids"] = _clean_line_ids(item.external_ids, f"{prefix}.external_ids")
        cleaned.append((item, offer, values))
    return cleaned


def _clean_payment(
    data: PaymentData,
    field_prefix: str = "payment",
    ref: Callable[..., Any] = _ref,
    *,
    amount_optional: bool = False,
) -> dict[str, Any]:
    """`amount_optional`: a missing amount stays None, for the caller to fill in."""
    amount = (
        None
        if amount_optional and data.amount in (None, "")
        else clean_decimal(data.amount, f"{field_prefix}.amount", minimum=Decimal("0.01"))
    )
    return {
        "type": ref(PaymentType, data.type, f"{field_prefix}.type", default=""),
        "status": ref(PaymentStatus, data.status, f"{field_prefix}.status", default=""),
        "amount": amount,
        "paid_at": data.paid_at,
        "comment": clean_text(data.comment, f"{field_prefix}.comment", 1000),
        "external_id": clean_text(data.external_id, f"{field_prefix}.external_id", 100) or None
        if data.external_id
        else None,
    }


def _item_history(item: OrderItem) -> dict[str, Any]:
    return {
        "id": item.pk,
        "offer": {"id": item.offer_id},
        "name": item.product_name,
        "quantity": item.quantity,
        "initial_price": item.initial_price,
    }


def _apply_item(item: OrderItem, offer: Offer, values: dict[str, Any]) -> None:
    item.offer = offer
    item.product_name = offer.name
    item.sku = offer.sku
    item.purchase_price = offer.purchase_price
    for name, value in values.items():
        setattr(item, name, value)
    item.summ = totals.line_total(
        item.initial_price, item.quantity, item.discount_manual_amount, item.discount_manual_percent
    )


def recalculate(order: Order) -> None:
    """Derive the totals and the paid amount from lines and payments (no history: they are derived)."""
    derive_totals(order, list(order.items.all()), list(order.payments.select_related("status")))


def derive_totals(order: Order, items: list[OrderItem], payments: list[Payment]) -> None:
    """The order's totals and paid amount from the lines and payments in hand.

    Fully paid keeps its first moment; a new one is the latest payment date (or now).
    """
    order.summ, order.purchase_summ, order.total_summ = totals.order_totals(
        [(i.summ, to_money(i.purchase_price * i.quantity)) for i in items],
        delivery_cost=order.delivery_cost,
        discount_amount=order.discount_manual_amount,
        discount_percent=order.discount_manual_percent,
    )
    paid = [p for p in payments if p.status.payment_complete]
    order.prepay_sum = to_money(sum((p.amount for p in paid), ZERO))
    if order.total_summ > 0 and order.prepay_sum >= order.total_summ:
        latest = max((p.paid_at for p in paid if p.paid_at), default=None)
        order.full_paid_at = order.full_paid_at or latest or timezone.now()
    else:
        order.full_paid_at = None


def _initial_status(order_type: OrderType, code: str | None) -> Status:
    statuses = Status.objects.select_related("group").filter(is_active=True)
    if code:
        status = statuses.filter(code=code).first()
        if status is None:
            raise ValidationError({"status": _("Unknown value “%(code)s”.") % {"code": code}})
        return status
    status = statuses.filter(group__code=Group.NEW).order_by("ordering").first()
    if status is None:
        raise ValidationError({"status": _("Not configured.")})
    return status


def _new_order_refs(
    type_code: str | None, status_code: str | None, defaults: str, *, with_method: bool
) -> tuple[OrderType, OrderMethod | None, Status]:
    """A new order's type, method and status in one round trip (this runs for every order an
    integration sends). A code picks that active row; no code, the `defaults` one (else the first
    active); the status by default is the first of the group "new". The rows come back with their ids
    and codes only; anything else about them is read when asked for."""
    qn = connection.ops.quote_name
    branches, params = [], []

    def pick(tag: str, model: Any, code: str | None) -> None:
        where = "code = %s" if code else "1 = 1"
        order = "code" if code else f"{qn(defaults)} DESC, ordering, code"
        table = qn(model._meta.db_table)
        branches.append(
            f"SELECT '{tag}', id, code, CAST(NULL AS BIGINT), NULL FROM (SELECT id, code FROM {table}"
            f" WHERE is_active AND {where} ORDER BY {order} LIMIT 1) AS {tag}"
        )
        params.extend([code] if code else [])

    pick("t", OrderType, type_code)
    if with_method:
        pick("m", OrderMethod, None)
    status, group = qn(Status._meta.db_table), qn(StatusGroup._meta.db_table)
    branches.append(
        "SELECT 's', id, code, group_id, group_code FROM (SELECT s.id, s.code, s.group_id,"
        f" g.code AS group_code FROM {status} s JOIN {group} g ON g.id = s.group_id WHERE s.is_active AND "
        f"{'s.code = %s' if status_code else 'g.code = %s'} ORDER BY s.ordering, s.code LIMIT 1) AS st"
    )
    params.append(status_code or Group.NEW)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(branches), params)
        found = {row[0]: row[1:] for row in cursor.fetchall()}

    def made(tag: str, model: Any, field_name: str, code: str | None) -> Any:
        if tag not in found:
            if code:
                raise ValidationError({field_name: _("Unknown value “%(code)s”.") % {"code": code}})
            raise ValidationError({field_name: _("Not configured.")})
        pk, code, group_id, group_code = found[tag]
        if model is not Status:
            return model.from_db(connection.alias, ["id", "code"], [pk, code])
        row = model.from_db(connection.alias, ["id", "code", "group_id"], [pk, code, group_id])
        Status.group.field.set_cached_value(
            row, StatusGroup.from_db(connection.alias, ["id", "code"], [group_id, group_code])
        )
        return row

    return (
        made("t", OrderType, "order_type", type_code),
        made("m", OrderMethod, "order_method", None) if with_method else None,
        made("s", Status, "status", status_code),
    )


@transaction.atomic
def create_order(
    site: Site, data: OrderData, *, actor: Actor, offers: dict[int, Offer] | None = None
) -> Order:
    """`offers`: the lines' offers by id when the caller has loaded them already (the API has).

    The history of the order and of a new customer is appended at the end, in one go, so that the
    chain lock is held only from then to the commit; their events are inserted together just before.
    """
    with history.gathered(), events.gathered():
        return _create_order(site, data, actor=actor, offers=offers)


def _create_order(site: Site, data: OrderData, *, actor: Actor, offers: dict[int, Offer] | None) -> Order:
    defaults = "default_for_api" if actor.source == Source.API else "default_for_crm"
    values = _clean_fields(site, data)
    order_type, method, status = _new_order_refs(
        data.order_type, data.status, defaults, with_method="order_method" not in values
    )
    values.setdefault("order_method", method)
    cleaned_items = _clean_items(site, data.items or [], offers)
    if (
        actor.source != Source.API
        and status.group.code not in (Group.NEW, *Group.CLOSED)
        and not values.get("manager")
    ):
        raise ValidationError({"manager": _("An order in this status needs a responsible manager.")})
    customer = data.customer
    if customer is not None and (customer.site_id != site.pk or customer.merged_into_id):
        raise ValidationError({"customer": _("Unknown customer.")})
    if customer is None and data.new_customer is None:
        raise ValidationError({"customer": _("Choose a customer or enter a new one.")})
    number = clean_text(data.number, "number", 64) if data.number else ""

    now = timezone.now()
    order = Order(
        site=site,
        number=number,
        order_type=order_type,
        status=status,
        created_by=actor.user,
        status_updated_at=now,
        from_api=actor.source == Source.API,
        **values,
    )
    order.created_at = order.created_at or now
    items = []
    for _data, offer, item_values in cleaned_items:
        item = OrderItem(order=order)
        _apply_item(item, offer, item_values)
        items.append(item)
    payments = _new_payments(order, data.payments or [], items)
    derive_totals(order, items, payments)

    # From here on rows are locked until the commit (on SQLite the site's order counter; everywhere the
    # history chain): keep this part short and free of anything that could wait.
    if not order.number:
        order.number = numbering.next_free(site)
    if customer is None:
        customer = customer_actions.create_customer_in_transaction(
            site, data.new_customer, actor=actor, created_at=values.get("created_at")
        )
    order.customer = customer
    for name in ("first_name", "last_name", "patronymic", "email"):
        if not getattr(order, name):
            setattr(order, name, getattr(customer, name))
    if not order.phone and data.customer is not None:
        order.phone = customer.main_phone
    try:
        order.save(force_insert=True)
    except IntegrityError as exc:
        # The unique constraints decide, also between concurrent requests; the transaction is
        # rolled back as this error leaves it, so nothing of the attempt stays.
        clash = next((f for f in ("external_id", "number") if f in str(exc)), None)
        if clash is None:
            raise
        raise OrderExists(clash) from exc
    for item in items:
        item.order = order
    for payment in payments:
        payment.order = order
    OrderItem.objects.bulk_create(items)
    Payment.objects.bulk_create(payments)
    _write_creation(order, items, payments, actor)
    _keep_related(order, items=items, payments=payments)
    return order


def _keep_related(order: Order, **related: list[Any]) -> None:
    """Leave the rows in hand in the order's prefetch cache, as `prefetch_related` would: a caller
    that shows the new order at once reads its lines and payments without querying them again."""
    cache = order.__dict__.setdefault("_prefetched_objects_cache", {})
    for name, rows in related.items():
        queryset = getattr(order, name).all()
        queryset._result_cache, queryset._prefetch_done = rows, True
        cache[name] = queryset


def _new_payments(order: Order, given: list[PaymentData], items: list[OrderItem]) -> list[Payment]:
    """Payments given with a new order; one without an amount pays what the others leave."""
    cleaned = [_clean_payment(p, f"payments.{i}", amount_optional=True) for i, p in enumerate(given)]
    total = totals.order_totals(
        [(i.summ, ZERO) for i in items],
        delivery_cost=order.delivery_cost,
        discount_amount=order.discount_manual_amount,
        discount_percent=order.discount_manual_percent,
    )[2]
    rest = max(total - sum((p["amount"] for p in cleaned if p["amount"] is not None), ZERO), ZERO)
    payments = []
    for values in cleaned:
        if values["amount"] is None:
            values["amount"], rest = rest, ZERO
        payments.append(Payment(**values))
    return payments


def _write_creation(order: Order, items: list[OrderItem], payments: list[Payment], actor: Actor) -> None:
    site, status = order.site, order.status
    changes = [
        Change(
            ENTITY,
            order.pk,
            "status",
            None,
            {"code": status.code},
            created=True,
            context={"site": site.code, "number": order.number},
        )
    ]
    changes += [
        Change(ENTITY, order.pk, name, None, value, created=True)
        for name, value in order_state(order).items()
        if value not in (None, "", {}, "0.00") and name != "created_at"
    ]
    if order.manager_id:
        changes.append(Change(ENTITY, order.pk, "manager", None, {"id": order.manager_id}, created=True))
    changes += [
        Change(
            ENTITY,
            order.pk,
            "order_product",
            None,
            _item_history(item),
            created=True,
            context={"item_id": item.pk},
        )
        for item in items
    ]
    changes += [
        Change(
            ENTITY,
            order.pk,
            "payments",
            None,
            _payment_history(p),
            created=True,
            context={"payment_id": p.pk},
        )
        for p in payments
    ]
    history.write(changes, actor)
    events.emit(
        OrderCreated(order.pk, site.code, order.customer_id, status.code, order.manager_id), actor=actor
    )
    for payment in payments:
        events.emit(
            OrderPaymentAdded(
                order.pk, site.code, order.customer_id, payment.pk, str(payment.amount), payment.status.code
            ),
            actor=actor,
        )
    _note_full_payment(order, None, actor)


def _payment_history(payment: Payment) -> dict[str, Any]:
    record = {
        "id": payment.pk,
        "type": payment.type.code,
        "status": payment.status.code,
        "amount": payment.amount,
    }
    if payment.external_id:
        record["external_id"] = payment.external_id
    return record


def order_state(order: Order) -> dict[str, Any]:
    """The order's tracked values as history records them: reference books by code, the customer by
    id, the delivery slot as one {from, to}, address parts and custom fields one by one."""
    state = history.snapshot(order, TRACKED_FIELDS)
    for name in ("order_type", "order_method", "delivery_type"):
        ref = getattr(order, name)
        state[name] = {"code": ref.code} if ref else None
    state["customer"] = {"id": order.customer_id} if order.customer_id else None
    frm, to = order.delivery_time_from, order.delivery_time_to
    state["delivery_time"] = (
        {"from": frm.strftime("%H:%M") if frm else None, "to": to.strftime("%H:%M") if to else None}
        if frm or to
        else None
    )
    for part, value in (order.delivery_address_parts or {}).items():
        state[f"delivery_address.{part}"] = value
    for code, value in (order.custom_fields or {}).items():
        state[f"custom_{code}"] = value
    return state


def _state_diff(order: Order, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Changes between two order_state()s; a part or custom field that went away becomes None."""
    after = {**dict.fromkeys(before), **after}
    return history.diff(ENTITY, order.pk, before, after)


def _locked(order: Order) -> Order:
    return (
        # Only the order's row, and FOR NO KEY UPDATE: a new order's foreign-key checks take KEY SHARE on
        # its site and status rows, and an item's on its order, so a wider lock serialised every writer.
        Order.objects.select_for_update(of=("self",), no_key=True)
        .select_related("site", "status__group", "order_type")
        .get(pk=order.pk)
    )


@transaction.atomic
def update_order(
    order: Order, data: OrderData, *, actor: Actor, offers: dict[int, Offer] | None = None
) -> Order:
    order = _locked(order)
    site = order.site
    values = _clean_fields(site, data)
    values.pop("manager", None)  # reassignment is its own action
    if data.order_type is not None:
        values["order_type"] = _ref(OrderType, data.order_type, "order_type")
    if data.customer is not None and data.customer.pk != order.customer_id:
        if data.customer.site_id != site.pk or data.customer.merged_into_id:
            raise ValidationError({"customer": _("Unknown customer.")})
        values["customer"] = data.customer
    if (
        values.get("external_id")
        and Order.objects.filter(site=site, external_id=values["external_id"]).exclude(pk=order.pk).exists()
    ):
        raise OrderExists()
    frm = values.get("delivery_time_from", order.delivery_time_from)
    to = values.get("delivery_time_to", order.delivery_time_to)
    if frm and to and frm >= to:
        raise ValidationError({"delivery_time_to": _("Must be later than the start of the slot.")})
    before = order_state(order)
    paid_before = order.full_paid_at
    for name, value in values.items():
        setattr(order, name, value)
    changes = []
    if data.items is not None:
        changes += _replace_items(order, _clean_items(site, data.items, offers))
    recalculate(order)
    try:
        with transaction.atomic():
            order.save()
    except IntegrityError as exc:  # another request took the externalId meanwhile
        raise OrderExists() from exc
    changes = _state_diff(order, before, order_state(order)) + changes
    history.write(changes, actor)
    if changes:
        events.emit(
            OrderUpdated(
                order.pk,
                site.code,
                order.customer_id,
                sorted({c.field for c in changes}),
                _field_changes(changes),
            ),
            actor=actor,
        )
    _note_full_payment(order, paid_before, actor)
    return order


def _field_changes(changes: list[Change]) -> dict[str, list[Any]]:
    """{field: [old, new]} of the order's own fields (lines and payments have their own records)."""
    return {
        c.field: [history.plain(c.old), history.plain(c.new)]
        for c in changes
        if not c.field.startswith(("order_product", "payments"))
    }


def _replace_items(order: Order, cleaned: list[tuple[ItemData, Offer, dict[str, Any]]]) -> list[Change]:
    """The new list of lines: lines named by id are kept and updated, the others are added, and the
    order's lines not named are removed."""
    existing = {item.pk: item for item in order.items.all()}
    kept: set[int] = set()
    changes = []
    for index, (data, offer, values) in enumerate(cleaned):
        item = existing.get(data.id) if data.id else None
        if data.id and item is None:
            raise ValidationError({f"items.{index}.id": _("Unknown order line.")})
        if item is None:
            item = OrderItem(order=order)
            _apply_item(item, offer, values)
            item.save()
            changes.append(
                Change(
                    ENTITY, order.pk, "order_product", None, _item_history(item), context={"item_id": item.pk}
                )
            )
            continue
        if item.pk in kept:
            raise ValidationError({f"items.{index}.id": _("This line is given twice.")})
        kept.add(item.pk)
        before = history.snapshot(item, ITEM_TRACKED_FIELDS)
        _apply_item(item, offer, values)
        item.save()
        changes += history.diff(
            ENTITY,
            order.pk,
            before,
            history.snapshot(item, ITEM_TRACKED_FIELDS),
            context={"item_id": item.pk, "offer_id": item.offer_id},  # the line may be gone when read
        )
    for pk, item in existing.items():
        if pk not in kept:
            changes.append(
                Change(
                    ENTITY,
                    order.pk,
                    "order_product",
                    _item_history(item),
                    None,
                    context={"item_id": pk, "removed": True},
                )
            )
            item.delete()
    return changes


def allowed_statuses(order: Order) -> list[Status]:
    ids = StatusTransition.objects.filter(
        order_type=order.order_type_id, from_status=order.status_id
    ).values_list("to_status", flat=True)
    return list(Status.objects.filter(pk__in=ids, is_active=True).select_related("group"))


@transaction.atomic
def change_status(
    order: Order,
    status: str,
    *,
    actor: Actor,
    comment: str = "",
    complaint_reason: str = "",
    complaint_comment: str = "",
) -> Order:
    order = _locked(order)
    new = _ref(Status, status, "status")
    if new.pk == order.status_id:
        return order
    old = order.status
    # The transition matrix and the "needs a manager" rule guide people. A shop's integration reports
    # what already happened on its side (paid, shipped, delivered): refusing it would only leave the
    # two systems disagreeing, so the API moves the order anyway; history records who did it.
    by_integration = actor.source == Source.API
    if (
        not by_integration
        and not StatusTransition.objects.filter(
            order_type=order.order_type_id, from_status=old, to_status=new
        ).exists()
    ):
        raise InvalidTransition(
            _("An order of type “%(type)s” cannot move from “%(old)s” to “%(new)s”.")
            % {"type": order.order_type.name, "old": old.name, "new": new.name}
        )
    if not by_integration and new.group.code not in (Group.NEW, *Group.CLOSED) and order.manager_id is None:
        raise ValidationError({"status": _("Assign a responsible manager before moving the order on.")})
    changes = [Change(ENTITY, order.pk, "status", {"code": old.code}, {"code": new.code})]
    if new.group.code == Group.COMPLAINT:
        if by_integration and not complaint_reason:
            complaint_reason = ComplaintReason.OTHER
        if complaint_reason not in ComplaintReason.values:
            raise ValidationError({"complaint_reason": _("Choose the reason of the complaint.")})
        complaint_comment = clean_text(complaint_comment, "complaint_comment", 5000)
        changes.append(
            Change(ENTITY, order.pk, "complaint_reason", order.complaint_reason or None, complaint_reason)
        )
        if complaint_comment:
            changes.append(
                Change(
                    ENTITY, order.pk, "complaint_comment", order.complaint_comment or None, complaint_comment
                )
            )
        order.complaint_reason, order.complaint_comment = complaint_reason, complaint_comment
    comment = clean_text(comment, "comment", 1000)
    if comment:
        changes.append(Change(ENTITY, order.pk, "status_comment", order.status_comment or None, comment))
    order.status, order.status_comment, order.status_updated_at = new, comment, timezone.now()
    order.save()
    history.write(changes, actor)
    events.emit(
        OrderStatusChanged(order.pk, order.site.code, order.customer_id, old.code, new.code, new.group.code),
        actor=actor,
    )
    return order


@transaction.atomic
def assign_manager(order: Order, manager: Any, *, actor: Actor) -> Order:
    order = _locked(order)
    if manager is not None and manager.pk == order.manager_id:
        return order
    check_manager(manager, order.site)
    if manager is None and order.status.group.code not in (Group.NEW, *Group.CLOSED):
        raise ValidationError({"manager": _("An order in this status needs a responsible manager.")})
    old = order.manager_id
    order.manager = manager
    order.save()
    history.write(
        [
            Change(
                ENTITY,
                order.pk,
                "manager",
                {"id": old} if old else None,
                {"id": manager.pk} if manager else None,
            )
        ],
        actor,
    )
    events.emit(
        OrderManagerChanged(
            order.pk, order.site.code, order.customer_id, old, manager.pk if manager else None
        ),
        actor=actor,
    )
    return order


@transaction.atomic
def add_payment(order: Order, data: PaymentData, *, actor: Actor) -> Payment:
    order = _locked(order)
    payment = Payment.objects.create(order=order, **_clean_payment(data))
    paid_before = order.full_paid_at
    recalculate(order)
    order.save()
    history.write(
        [
            Change(
                ENTITY,
                order.pk,
                "payments",
                None,
                _payment_history(payment),
                context={"payment_id": payment.pk},
            )
        ],
        actor,
    )
    events.emit(
        OrderPaymentAdded(
            order.pk, order.site.code, order.customer_id, payment.pk, str(payment.amount), payment.status.code
        ),
        actor=actor,
    )
    _note_full_payment(order, paid_before, actor)
    return payment


@transaction.atomic
def update_payment(payment: Payment, data: PaymentData, *, actor: Actor) -> Payment:
    order = _locked(payment.order)
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    before = history.snapshot(payment, PAYMENT_TRACKED_FIELDS)
    for name, value in _clean_payment(data).items():
        setattr(payment, name, value)
    payment.save()
    paid_before = order.full_paid_at
    recalculate(order)
    order.save()
    changes = history.diff(
        ENTITY,
        order.pk,
        before,
        history.snapshot(payment, PAYMENT_TRACKED_FIELDS),
        context={"payment_id": payment.pk},
    )
    history.write(changes, actor)
    if changes:
        events.emit(
            OrderUpdated(order.pk, order.site.code, order.customer_id, sorted({c.field for c in changes})),
            actor=actor,
        )
    _note_full_payment(order, paid_before, actor)
    return payment


def _note_full_payment(order: Order, paid_before: Any, actor: Actor) -> None:
    """`orders.fully_paid` when the paid payments have just reached the total (rules react to it)."""
    if paid_before is None and order.full_paid_at is not None:
        events.emit(
            OrderFullyPaid(
                order.pk, order.site.code, order.customer_id, str(order.total_summ), str(order.prepay_sum)
            ),
            actor=actor,
        )


@transaction.atomic
def delete_payment(payment: Payment, *, actor: Actor) -> None:
    order = _locked(payment.order)
    payment = (
        Payment.objects.select_related("type", "status").select_for_update(of=("self",)).get(pk=payment.pk)
    )
    removed = _payment_history(payment)
    payment.delete()
    recalculate(order)
    order.save()
    history.write(
        [
            Change(
                ENTITY,
                order.pk,
                "payments",
                removed,
                None,
                context={"payment_id": removed["id"], "removed": True},
            )
        ],
        actor,
    )
    events.emit(OrderUpdated(order.pk, order.site.code, order.customer_id, ["payments"]), actor=actor)


@transaction.atomic
def record_delivery_tracking(
    order: Order, *, actor: Actor, track_number: str | None = None, status: str | None = None
) -> Order:
    """What a delivery service reports about the order's shipment: its track number and status."""
    order = _locked(order)
    values = {}
    if track_number is not None:
        values["track_number"] = clean_text(track_number, "track_number", 100)
    if status is not None:
        values["delivery_status"] = clean_text(status, "delivery_status", 100)
    before = order_state(order)
    for name, value in values.items():
        setattr(order, name, value)
    changes = _state_diff(order, before, order_state(order))
    if not changes:
        return order
    order.save(update_fields=[*values, "updated_at"])
    history.write(changes, actor)
    events.emit(
        OrderUpdated(
            order.pk,
            order.site.code,
            order.customer_id,
            sorted(c.field for c in changes),
            _field_changes(changes),
        ),
        actor=actor,
    )
    return order


@transaction.atomic
def merge_orders(target: Order, source: Order, *, actor: Actor) -> Order:
    """Move `source`'s lines and payments into `target` and cancel `source` (retailCRM "combine")."""
    target, source = _locked(target), _locked(source)
    if target.pk == source.pk or target.site_id != source.site_id:
        raise ValidationError({"order": _("Choose another order of the same site.")})
    cancel = Status.objects.filter(group__code=Group.CANCEL, is_active=True).order_by("ordering").first()
    if cancel is None:
        raise ValidationError({"status": _("Not configured.")})
    moved = list(source.items.all())
    OrderItem.objects.filter(order=source).update(order=target)
    Payment.objects.filter(order=source).update(order=target)
    for order in (target, source):
        recalculate(order)
    old_status = source.status
    source.status, source.status_updated_at = cancel, timezone.now()
    target.save()
    source.save()
    changes = [
        Change(
            ENTITY,
            target.pk,
            "order_product",
            None,
            _item_history(i),
            context={"item_id": i.pk, "from_order": source.pk},
        )
        for i in moved
    ]
    changes += [
        Change(ENTITY, source.pk, "status", {"code": old_status.code}, {"code": cancel.code}),
        Change(ENTITY, source.pk, "combined_to", None, {"id": target.pk, "number": target.number}),
    ]
    history.write(changes, actor)
    events.emit(OrdersMerged(target.pk, target.site.code, target.customer_id, source.pk), actor=actor)
    return target
