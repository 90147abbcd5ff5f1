"""The only writers of orders, their lines and payments (DESIGN.md §6)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.catalog.models import Offer
from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import CustomField, Site
from lavka.core.money import ZERO, to_money
from lavka.core.validation import clean_custom_fields, clean_decimal, clean_email, clean_phone, clean_text
from lavka.customers import actions as customer_actions
from lavka.customers.actions import CustomerData, check_manager
from lavka.customers.models import Customer
from lavka.orders import totals
from lavka.orders.choices import (
    ITEM_TRACKED_FIELDS,
    PAYMENT_TRACKED_FIELDS,
    TRACKED_FIELDS,
    ComplaintReason,
    Group,
)
from lavka.orders.events import (
    OrderCreated,
    OrderManagerChanged,
    OrderPaymentAdded,
    OrdersMerged,
    OrderStatusChanged,
    OrderUpdated,
)
from lavka.orders.models import (
    DeliveryType,
    Order,
    OrderCounter,
    OrderItem,
    OrderMethod,
    OrderType,
    Payment,
    PaymentStatus,
    PaymentType,
    Status,
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


class InvalidTransition(ValidationError):
    def __init__(self, message: str) -> None:
        super().__init__({"status": message})


@dataclass
class ItemData:
    offer_id: Any = None
    quantity: Any = 1
    initial_price: Any = None  # None: the offer's price
    discount_manual_amount: Any = ZERO
    discount_manual_percent: Any = ZERO
    comment: str = ""
    id: int | None = None  # an existing line, on edit


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
    if data.manager_set:
        check_manager(data.manager, site)
        values["manager"] = data.manager
    if data.created_at is not None:
        values["created_at"] = data.created_at
    frm, to = values.get("delivery_time_from"), values.get("delivery_time_to")
    if frm and to and frm >= to:
        raise ValidationError({"delivery_time_to": _("Must be later than the start of the slot.")})
    return values


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
        }
        cleaned.append((item, offer, values))
    return cleaned


def _clean_payment(
    data: PaymentData, field_prefix: str = "payment", ref: Callable[..., Any] = _ref
) -> dict[str, Any]:
    return {
        "type": ref(PaymentType, data.type, f"{field_prefix}.type", default=""),
        "status": ref(PaymentStatus, data.status, f"{field_prefix}.status", default=""),
        "amount": clean_decimal(data.amount, f"{field_prefix}.amount", minimum=Decimal("0.01")),
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
    lines = [(i.summ, to_money(i.purchase_price * i.quantity)) for i in order.items.all()]
    order.summ, order.purchase_summ, order.total_summ = totals.order_totals(
        lines,
        delivery_cost=order.delivery_cost,
        discount_amount=order.discount_manual_amount,
        discount_percent=order.discount_manual_percent,
    )
    paid = sum((p.amount for p in order.payments.select_related("status") if p.status.payment_complete), ZERO)
    order.prepay_sum = to_money(paid)
    if order.total_summ > 0 and order.prepay_sum >= order.total_summ:
        order.full_paid_at = order.full_paid_at or timezone.now()
    else:
        order.full_paid_at = None


def _next_number(site: Site) -> str:
    OrderCounter.objects.get_or_create(site=site)
    counter = OrderCounter.objects.select_for_update().get(site=site)
    number = counter.last_number
    while True:
        number += 1
        candidate = f"{number}{site.order_suffix}"
        if not Order.objects.filter(site=site, number=candidate).exists():
            break
    OrderCounter.objects.filter(site=site).update(last_number=number)
    return candidate


def _initial_status(order_type: OrderType, code: str | None) -> Status:
    if code:
        return _ref(Status, code, "status")
    status = Status.objects.filter(group__code=Group.NEW, is_active=True).order_by("ordering").first()
    if status is None:
        raise ValidationError({"status": _("Not configured.")})
    return status


@transaction.atomic
def create_order(site: Site, data: OrderData, *, actor: Actor) -> Order:
    values = _clean_fields(site, data)
    order_type = _ref(
        OrderType,
        data.order_type,
        "order_type",
        default="default_for_api" if actor.source == "api" else "default_for_crm",
    )
    values.setdefault("order_method", _ref(OrderMethod, None, "order_method"))
    status = _initial_status(order_type, data.status)
    items = _clean_items(site, data.items or [])
    payments = [_clean_payment(p, f"payments.{i}") for i, p in enumerate(data.payments or [])]
    if (
        values.get("external_id")
        and Order.objects.filter(site=site, external_id=values["external_id"]).exists()
    ):
        raise ValidationError({"external_id": _("Order already exists.")})
    if status.group.code not in (Group.NEW, *Group.CLOSED) and not values.get("manager"):
        raise ValidationError({"manager": _("An order in this status needs a responsible manager.")})

    customer = data.customer
    if customer is not None and (customer.site_id != site.pk or customer.merged_into_id):
        raise ValidationError({"customer": _("Unknown customer.")})
    if customer is None:
        if data.new_customer is None:
            raise ValidationError({"customer": _("Choose a customer or enter a new one.")})
        customer = customer_actions.create_customer(
            site, data.new_customer, actor=actor, created_at=values.get("created_at")
        )
    for name in ("first_name", "last_name", "patronymic", "email"):
        if not values.get(name):
            values[name] = getattr(customer, name)
    if not values.get("phone"):
        values["phone"] = customer.main_phone

    number = clean_text(data.number, "number", 64) if data.number else _next_number(site)
    order = Order(
        site=site,
        number=number,
        order_type=order_type,
        status=status,
        created_by=actor.user,
        status_updated_at=timezone.now(),
        customer=customer,
        from_api=actor.source == "api",
        **values,
    )
    order.created_at = order.created_at or timezone.now()
    try:
        with transaction.atomic():
            order.save()
    except IntegrityError as exc:
        # The unique constraints decide under concurrency, not the check above.
        raise ValidationError(
            {"external_id" if order.external_id else "number": _("Order already exists.")}
        ) from exc
    for _data, offer, item_values in items:
        item = OrderItem(order=order)
        _apply_item(item, offer, item_values)
        item.save()
    for payment_values in payments:
        Payment.objects.create(order=order, **payment_values)
    recalculate(order)
    order.save()

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
        for item in order.items.all()
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
        for p in order.payments.all()
    ]
    history.write(changes, actor)
    events.emit(OrderCreated(order.pk, site.code, customer.pk, status.code, order.manager_id), actor=actor)
    for payment in order.payments.all():
        events.emit(
            OrderPaymentAdded(
                order.pk, site.code, customer.pk, payment.pk, str(payment.amount), payment.status.code
            ),
            actor=actor,
        )
    return order


def _payment_history(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.pk,
        "type": payment.type.code,
        "status": payment.status.code,
        "amount": payment.amount,
    }


def order_state(order: Order) -> dict[str, Any]:
    """The order's tracked values as history records them: reference books by code, the customer by id."""
    state = history.snapshot(order, TRACKED_FIELDS)
    for name in ("order_type", "order_method", "delivery_type"):
        ref = getattr(order, name)
        state[name] = {"code": ref.code} if ref else None
    state["customer"] = {"id": order.customer_id} if order.customer_id else None
    return state


def _locked(order: Order) -> Order:
    return (
        Order.objects.select_for_update()
        .select_related("site", "status__group", "order_type")
        .get(pk=order.pk)
    )


@transaction.atomic
def update_order(order: Order, data: OrderData, *, actor: Actor) -> Order:
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
        raise ValidationError({"external_id": _("Order already exists.")})
    before = order_state(order)
    for name, value in values.items():
        setattr(order, name, value)
    changes = []
    if data.items is not None:
        changes += _replace_items(order, _clean_items(site, data.items))
    recalculate(order)
    order.save()
    changes = history.diff(ENTITY, order.pk, before, order_state(order)) + changes
    history.write(changes, actor)
    if changes:
        events.emit(
            OrderUpdated(order.pk, site.code, order.customer_id, sorted({c.field for c in changes})),
            actor=actor,
        )
    return order


def _replace_items(order: Order, cleaned: list[tuple[ItemData, Offer, dict[str, Any]]]) -> list[Change]:
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
        kept.add(item.pk)
        before = history.snapshot(item, ITEM_TRACKED_FIELDS)
        _apply_item(item, offer, values)
        item.save()
        changes += history.diff(
            ENTITY,
            order.pk,
            before,
            history.snapshot(item, ITEM_TRACKED_FIELDS),
            context={"item_id": item.pk},
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
    if not StatusTransition.objects.filter(
        order_type=order.order_type_id, from_status=old, to_status=new
    ).exists():
        raise InvalidTransition(
            _("An order of type “%(type)s” cannot move from “%(old)s” to “%(new)s”.")
            % {"type": order.order_type.name, "old": old.name, "new": new.name}
        )
    if new.group.code not in (Group.NEW, *Group.CLOSED) and order.manager_id is None:
        raise ValidationError({"status": _("Assign a responsible manager before moving the order on.")})
    changes = [Change(ENTITY, order.pk, "status", {"code": old.code}, {"code": new.code})]
    if new.group.code == Group.COMPLAINT:
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
    return payment


@transaction.atomic
def update_payment(payment: Payment, data: PaymentData, *, actor: Actor) -> Payment:
    order = _locked(payment.order)
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    before = history.snapshot(payment, PAYMENT_TRACKED_FIELDS)
    for name, value in _clean_payment(data).items():
        setattr(payment, name, value)
    payment.save()
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
    return payment


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
