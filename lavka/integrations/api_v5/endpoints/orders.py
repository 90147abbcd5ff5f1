"""API v5: orders (§2.2, §3.1–3.3): list, get, create, edit, upload, external ids, statuses, history,
combine, payments, and the delivery services' tracking updates (§2.12).

Input is read into `OrderData` and written by `lavka.orders.actions` (the key as the actor); action
errors come back under the API's field names (`delivery.cost`, `items[0].quantity` …).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, prefetch_related_objects
from django.utils import timezone, translation

from lavka.accounts.models import User
from lavka.catalog.actions import offer_from_order_line
from lavka.catalog.models import Offer
from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, Site
from lavka.customers.actions import CustomerData
from lavka.customers.models import Customer
from lavka.integrations.api_v5 import formats, history
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.endpoints.customers import customer_json, customer_prefetch, customers_json
from lavka.integrations.api_v5.errors import (
    ENTITY_ERROR,
    ApiError,
    Errors,
    InvalidParameters,
    MissingParameter,
    NotFound,
)
from lavka.integrations.api_v5.request import ApiRequest, pagination
from lavka.integrations.api_v5.router import api
from lavka.loyalty.queries import program_for_site
from lavka.orders import actions, totals
from lavka.orders.actions import ItemData, OrderData, OrderExists, PaymentData
from lavka.orders.choices import ADDRESS_PARTS
from lavka.orders.models import Order, OrderItem, Payment, PaymentStatus, PaymentType

NOT_LOADED = "Order is not loaded"
UPLOAD_LIMIT = 50
LIST_LIMIT = 500  # ids / externalIds in one `orders/statuses` or tracking call
MAX_ID = 2**62
TECHNIQUES = ("ours", "summ", "theirs", "merge")

# The address as the API spells it → Lavka's parts; `text` is the order's one-line address.
ADDRESS_KEYS = {
    "countryIso": "country_iso",
    **{part: part for part in ADDRESS_PARTS if part != "country_iso"},
}
SOURCE_KEYS = ("source", "medium", "campaign", "keyword", "content")

# Lavka's field names (in actions' errors and history) → the API's.
FIELD_NAMES = {
    "external_id": "externalId",
    "number": "number",
    "order_type": "orderType",
    "order_method": "orderMethod",
    "status": "status",
    "manager": "managerId",
    "customer": "customer",
    "first_name": "firstName",
    "last_name": "lastName",
    "patronymic": "patronymic",
    "phone": "phone",
    "phones": "phone",
    "additional_phone": "additionalPhone",
    "email": "email",
    "delivery_type": "delivery.code",
    "delivery_cost": "delivery.cost",
    "delivery_date": "delivery.date",
    "delivery_time_from": "delivery.time.from",
    "delivery_time_to": "delivery.time.to",
    "delivery_address": "delivery.address.text",
    "delivery_external_id": "delivery.data.externalId",
    "discount_manual_amount": "discountManualAmount",
    "discount_manual_percent": "discountManualPercent",
    "customer_comment": "customerComment",
    "manager_comment": "managerComment",
    "custom_fields": "customFields",
    "created_at": "createdAt",
    "comment": "comment",
    "offer": "offer.id",
    "initial_price": "initialPrice",
    "quantity": "quantity",
    "product_name": "productName",
    "external_ids": "externalIds",
    "type": "type",
    "amount": "amount",
    "paid_at": "paidAt",
    **{key: f"source.{key}" for key in SOURCE_KEYS},
}


def api_field(name: str) -> str:
    """`items.0.discount_manual_amount` → `items[0].discountManualAmount`, `custom_x` → `customFields.x`."""
    if name in FIELD_NAMES:
        return FIELD_NAMES[name]
    if name.startswith("custom_"):
        return "customFields." + name[len("custom_") :]
    if name.startswith("delivery_address."):
        part = name.split(".", 1)[1]
        return "delivery.address." + next((k for k, v in ADDRESS_KEYS.items() if v == part), part)
    parts = name.split(".")
    if len(parts) >= 3 and parts[0] in ("items", "payments") and parts[1].isascii() and parts[1].isdigit():
        return f"{parts[0]}[{parts[1]}]." + api_field(".".join(parts[2:]))
    if len(parts) == 2 and parts[0] in ("items", "payments") and parts[1].isascii() and parts[1].isdigit():
        return f"{parts[0]}[{parts[1]}]"
    return name


def _errors_of(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    if not hasattr(exc, "error_dict"):
        return {prefix.rstrip(".") or "order": " ".join(exc.messages)}
    return {prefix + api_field(name): " ".join(messages) for name, messages in exc.message_dict.items()}


@contextmanager
def writing(message: str = NOT_LOADED, prefix: str = "") -> Iterator[None]:
    """Run actions with English messages and answer their refusals in the API's envelope."""
    with translation.override("en"):
        try:
            yield
        except OrderExists:
            raise ApiError("Order already exists.") from None
        except ValidationError as exc:
            raise ApiError(message, 400, _errors_of(exc, prefix)) from None


# --- output --------------------------------------------------------------------------------------------


# Orders are shown from plain rows (`values()`): a history page or a list shows up to 100 full orders,
# and model instances with prefetched relations cost several times more to build than the JSON itself.
ORDER_FIELDS = (
    "id",
    "external_id",
    "number",
    "created_at",
    "status_updated_at",
    "status_comment",
    "manager_id",
    "customer_id",
    "first_name",
    "last_name",
    "patronymic",
    "phone",
    "additional_phone",
    "email",
    "delivery_cost",
    "delivery_date",
    "delivery_time_from",
    "delivery_time_to",
    "delivery_address",
    "delivery_address_parts",
    "delivery_external_id",
    "track_number",
    "delivery_status",
    "discount_manual_amount",
    "discount_manual_percent",
    "summ",
    "total_summ",
    "prepay_sum",
    "purchase_summ",
    "full_paid_at",
    "customer_comment",
    "manager_comment",
    *SOURCE_KEYS,
    "custom_fields",
    "from_api",
)
ORDER_CODES = (
    "site__code",
    "site__currency",
    "site__country",
    "status__code",
    "order_type__code",
    "order_method__code",
    "delivery_type__code",
)
OFFER_FIELDS = (
    "offer_id",
    "offer__external_id",
    "offer__xml_id",
    "offer__name",
    "offer__article",
    "offer__sku",
)
ITEM_FIELDS = (
    "id",
    "order_id",
    *OFFER_FIELDS,
    "product_name",
    "initial_price",
    "quantity",
    "discount_manual_amount",
    "discount_manual_percent",
    "purchase_price",
    "comment",
    "external_ids",
)
PAYMENT_FIELDS = (
    "id",
    "order_id",
    "external_id",
    "type__code",
    "status__code",
    "amount",
    "paid_at",
    "comment",
)


def _time(value: datetime.time | None) -> str | None:
    return value.strftime("%H:%M") if value else None


# formats.money and formats.dt, cut down for this loop: they run some 30 times per order shown.
def _money(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def _dt(value: datetime.datetime | None, tz: datetime.tzinfo) -> str | None:
    return value.astimezone(tz).strftime(formats.DATETIME) if value else None


def _offer_out(row: dict[str, Any]) -> dict[str, Any]:
    return formats.compact(
        {
            "id": row["offer_id"],
            "externalId": row["offer__external_id"],
            "xmlId": row["offer__xml_id"],
            "name": row["offer__name"],
            "article": row["offer__article"] or row["offer__sku"],
        }
    )


def _item_out(row: dict[str, Any]) -> dict[str, Any]:
    price, quantity = row["initial_price"], row["quantity"]
    unit = totals.unit_price(price, row["discount_manual_amount"], row["discount_manual_percent"])
    out = {
        "id": row["id"],
        "offer": _offer_out(row),
        "productName": row["product_name"],
        "initialPrice": _money(price),
        "quantity": _money(quantity),
        "discountManualAmount": _money(row["discount_manual_amount"]),
        "discountManualPercent": _money(row["discount_manual_percent"]),
        "discountTotal": _money(price - unit),
        "prices": [{"price": _money(unit), "quantity": _money(quantity)}],
        "purchasePrice": _money(row["purchase_price"]),
        "comment": row["comment"],
        "properties": [],
        "discounts": [],  # bonuses paid on the line show here (GET orders/{id}); plugins loop over it
    }
    if row["external_ids"]:
        out["externalIds"] = row["external_ids"]
    return formats.compact(out)


def _payment_out(row: dict[str, Any], tz: datetime.tzinfo) -> dict[str, Any]:
    return formats.compact(
        {
            "id": row["id"],
            "externalId": row["external_id"],
            "type": row["type__code"],
            "status": row["status__code"],
            "amount": _money(row["amount"]),
            "paidAt": _dt(row["paid_at"], tz),
            "comment": row["comment"],
        }
    )


def _delivery_out(row: dict[str, Any]) -> dict[str, Any]:
    parts = row["delivery_address_parts"] or {}
    address = {api_name: parts.get(part) for api_name, part in ADDRESS_KEYS.items()}
    address["text"] = row["delivery_address"]
    data = {
        "externalId": row["delivery_external_id"],
        "trackNumber": row["track_number"],
        "status": row["delivery_status"],
    }
    time = {"from": _time(row["delivery_time_from"]), "to": _time(row["delivery_time_to"])}
    out = {
        "code": row["delivery_type__code"],
        "cost": _money(row["delivery_cost"]),
        "date": formats.date(row["delivery_date"]),
        "time": formats.compact(time) or None,
        "address": formats.compact(address) or None,
        "data": formats.compact(data) or None,
    }
    return formats.compact(out)


def _order_out(
    row: dict[str, Any],
    items: list[dict[str, Any]],
    payments: list[dict[str, Any]],
    customer: dict[str, Any],
    tz: datetime.tzinfo,
) -> dict[str, Any]:
    """An order as retailCRM shows it (§3.1): payments keyed by id, empty collections never null."""
    out = {
        "slug": row["id"],
        "id": row["id"],
        "externalId": row["external_id"],
        "number": row["number"],
        "site": row["site__code"],
        "currency": row["site__currency"],
        "countryIso": row["site__country"],
        "createdAt": _dt(row["created_at"], tz),
        "statusUpdatedAt": _dt(row["status_updated_at"], tz),
        "status": row["status__code"],
        "statusComment": row["status_comment"],
        "orderType": row["order_type__code"],
        "orderMethod": row["order_method__code"],
        "managerId": row["manager_id"],
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "patronymic": row["patronymic"],
        "phone": row["phone"],
        "additionalPhone": row["additional_phone"],
        "email": row["email"],
        "customer": customer,
        "items": [_item_out(item) for item in items],
        "delivery": _delivery_out(row),
        "payments": {str(p["id"]): _payment_out(p, tz) for p in payments},
        "discountManualAmount": _money(row["discount_manual_amount"]),
        "discountManualPercent": _money(row["discount_manual_percent"]),
        "summ": _money(row["summ"]),
        "totalSumm": _money(row["total_summ"]),
        "prepaySum": _money(row["prepay_sum"]),
        "purchaseSumm": _money(row["purchase_summ"]),
        "fullPaidAt": _dt(row["full_paid_at"], tz),
        "customerComment": row["customer_comment"],
        "managerComment": row["manager_comment"],
        "source": formats.compact({key: row[key] for key in SOURCE_KEYS}) or None,
        "customFields": row["custom_fields"] or [],
        "fromApi": row["from_api"],
    }
    return formats.compact(out)


def _prefetch_lists(instances: list[Any], names: list[str]) -> None:
    """`prefetch_related_objects` for plain relations, leaving lists in the prefetch cache.

    Django builds a queryset per instance for its cache, which for a page of 100 customers costs more
    than everything else; `.all()` on a list serves the serializers (they only iterate).
    """
    nested = [name for name in names if "__" in name]
    if nested:
        prefetch_related_objects(instances, *nested)
    if not instances:
        return
    model = type(instances[0])
    every = instances
    for name in names:
        if "__" in name:
            continue
        # Rows an action has just written are in the cache already (a new customer's phones …).
        instances = [i for i in every if name not in i.__dict__.get("_prefetched_objects_cache", {})]
        if not instances:
            continue
        relation = model._meta.get_field(name)
        found: dict[Any, list[Any]] = {}
        if relation.one_to_many:  # a foreign key back to the instance: no join, no back-references set
            attname, cache_name = relation.field.attname, relation.cache_name
            for obj in relation.related_model.objects.filter(**{f"{attname}__in": [i.pk for i in instances]}):
                found.setdefault((getattr(obj, attname),), []).append(obj)
            keys = {instance: (instance.pk,) for instance in instances}
        else:
            queryset, rel_attr, instance_attr, _single, cache_name, _ = getattr(
                instances[0], name
            ).get_prefetch_querysets(instances)
            for obj in queryset:
                found.setdefault(rel_attr(obj), []).append(obj)
            keys = {instance: instance_attr(instance) for instance in instances}
        for instance, key in keys.items():
            instance.__dict__.setdefault("_prefetched_objects_cache", {})[cache_name] = found.get(key, [])


def orders_json(ids: list[int]) -> list[dict[str, Any]]:
    """Full orders by id, in that order, in a fixed number of queries."""
    rows = {row["id"]: row for row in Order.objects.filter(pk__in=ids).values(*ORDER_FIELDS, *ORDER_CODES)}
    items: dict[int, list[dict[str, Any]]] = {pk: [] for pk in rows}
    for item in OrderItem.objects.filter(order_id__in=rows).order_by("id").values(*ITEM_FIELDS):
        items[item["order_id"]].append(item)
    payments: dict[int, list[dict[str, Any]]] = {pk: [] for pk in rows}
    for payment in Payment.objects.filter(order_id__in=rows).order_by("id").values(*PAYMENT_FIELDS):
        payments[payment["order_id"]].append(payment)
    customers = customers_json({row["customer_id"] for row in rows.values()})
    tz = timezone.get_current_timezone()
    return [
        _order_out(rows[pk], items[pk], payments[pk], customers.get(rows[pk]["customer_id"], {}), tz)
        for pk in ids
        if pk in rows
    ]


def _row(instance: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """An instance's values as `values(*names)` gives them (related objects must be in hand)."""
    row = {}
    for name in names:
        value = instance
        for part in name.split("__"):
            value = getattr(value, part) if value is not None else None
        row[name] = value
    return row


def created_orders_json(orders: list[Order]) -> list[dict[str, Any]]:
    """Orders `create_order` has just returned, from the objects in hand (only customers are read)."""
    customers = [o.customer for o in orders]
    _prefetch_lists(customers, customer_prefetch())
    return [
        _order_out(
            _row(order, (*ORDER_FIELDS, *ORDER_CODES)),
            [_row(item, ITEM_FIELDS) for item in order.items.all()],
            [_row(payment, PAYMENT_FIELDS) for payment in order.payments.all()],
            customer_json(order.customer),
            timezone.get_current_timezone(),
        )
        for order in orders
    ]


# --- input ---------------------------------------------------------------------------------------------


def _text(raw: dict[str, Any], name: str, errors: Errors, label: str | None = None) -> str | None:
    """A string field; numbers are taken as text, objects are an error; absent → None, null → ""."""
    if name not in raw:
        return None
    value = raw[name]
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        errors.add(label or name)
        return None
    return str(value)


def _decimal(raw: dict[str, Any], name: str, errors: Errors, label: str | None = None) -> Decimal | None:
    try:
        return formats.parse_decimal(raw.get(name), label or name)
    except ApiError:
        errors.add(label or name, "This value should be a number.")
        return None


def _int_id(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        return None
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < MAX_ID else None


@dataclass
class Parsed:
    """An order entity read: the data for the actions, and what the actions take separately."""

    data: OrderData
    offers: dict[int, Offer] = field(default_factory=dict)
    status: str | None = None
    status_comment: str = ""
    manager_set: bool = False
    manager: User | None = None
    payments: list[tuple[dict[str, Any], PaymentData]] = field(default_factory=list)
    fields_given: bool = False  # anything for update_order


def _customer_link(req: ApiRequest, site: Site, raw: Any, errors: Errors) -> Customer | None:
    """`customer: {id}` | `{externalId, site?}` | `{browserId}`; unknown → the field named."""
    if raw in (None, "", [], {}):
        return None
    if not isinstance(raw, dict):
        errors.add("customer")
        return None
    if raw.get("type") == "customer_corporate":
        errors.add("customer.type", "Orders of corporate customers are not supported.")
        return None
    customers = Customer.objects.select_related("site")
    if raw.get("id") not in (None, ""):
        pk = _int_id(raw["id"])
        found = customers.filter(pk=pk, site=site).first() if pk else None
        key, shown = "id", raw["id"]
    elif raw.get("externalId") not in (None, ""):
        shown = formats.external_id(raw["externalId"])
        link_site = site
        if raw.get("site") not in (None, ""):
            link_site = req.site_by_code(raw["site"], "customer.site")
        found = customers.filter(external_id=shown, site=link_site).first() if shown else None
        key = "externalId"
    elif raw.get("browserId") not in (None, ""):
        key, shown, found = "browserId", raw["browserId"], None  # Lavka keeps no browser ids
    else:
        return None
    if found is not None and found.site_id != site.pk:
        found = None
    while found is not None and found.merged_into_id:  # a merged customer lives on in the survivor
        found = customers.get(pk=found.merged_into_id)
    if found is None:
        errors.add(f"customer.{key}", f"Customer with {key}={shown} not found.")
    return found


def _offers(
    site: Site, items: list[Any], errors: Errors, actor: Actor | None = None
) -> tuple[list[int | None], dict[int, Offer]]:
    """The offer of each line by `offer.id`, `offer.externalId` or `offer.xmlId`, in one query.

    A line naming an externalId or xmlId the catalog does not know yet, with a `productName`, gets its
    offer created from the line (`catalog.actions.offer_from_order_line`): a shop connects its plugin
    before Lavka has its catalog, and its orders must not be refused for it. An unknown `offer.id`
    is an error, as in retailCRM.
    """
    wanted: list[tuple[str, Any] | None] = []
    for index, item in enumerate(items):
        offer = item.get("offer") if isinstance(item, dict) else None
        if not isinstance(offer, dict):
            wanted.append(None)
            continue
        if offer.get("id") not in (None, ""):
            pk = _int_id(offer["id"])
            wanted.append(("id", pk))
            if pk is None:
                errors.add(f"items[{index}].offer.id", f"Offer with id {offer['id']} not found.")
        elif offer.get("externalId") not in (None, ""):
            wanted.append(("externalId", formats.external_id(offer["externalId"])))
        elif offer.get("xmlId") not in (None, ""):
            wanted.append(("xmlId", formats.external_id(offer["xmlId"])))
        else:
            wanted.append(None)
    by = {"id": set(), "externalId": set(), "xmlId": set()}
    for ref in wanted:
        if ref and ref[1] is not None:
            by[ref[0]].add(ref[1])
    q = Q(pk__in=by["id"]) | Q(external_id__in=by["externalId"]) | Q(xml_id__in=by["xmlId"])
    found = list(Offer.objects.for_site(site.pk).select_related("product").filter(q).order_by("id"))
    index = {
        "id": {o.pk: o for o in found},
        "externalId": {},
        "xmlId": {},
    }
    for offer in found:  # the first (oldest) offer wins where an external id repeats
        index["externalId"].setdefault(offer.external_id, offer)
        index["xmlId"].setdefault(offer.xml_id, offer)
    ids: list[int | None] = []
    for position, ref in enumerate(wanted):
        offer = index[ref[0]].get(ref[1]) if ref and ref[1] is not None else None
        if ref and offer is None and ref[1] is not None and ref[0] != "id" and actor is not None:
            offer = _offer_from_line(site, items[position], ref, actor)
            if offer is not None:
                index[ref[0]][ref[1]] = offer
                found.append(offer)
        if ref and offer is None and ref[1] is not None:
            errors.add(f"items[{position}].offer.{ref[0]}", f"Offer with {ref[0]} {ref[1]} not found.")
        ids.append(offer.pk if offer else None)
    return ids, {o.pk: o for o in found}


def _offer_from_line(site: Site, item: dict[str, Any], ref: tuple[str, Any], actor: Actor) -> Offer | None:
    name = item.get("productName")
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        price = formats.parse_decimal(item.get("initialPrice"), "initialPrice") or Decimal(0)
    except ApiError:
        return None  # the line's own validation names the bad price
    if price < 0:
        return None
    key = "external_id" if ref[0] == "externalId" else "xml_id"
    try:
        return offer_from_order_line(site, name=name, price=price, actor=actor, **{key: ref[1]})
    except ValidationError:
        return None


def _items(
    site: Site, raw: Any, errors: Errors, existing: list[OrderItem] | None, actor: Actor | None = None
) -> tuple[list[ItemData] | None, dict[int, Offer]]:
    """Order lines; on edit a line named by `id` or one of its `externalIds` keeps what is not sent."""
    if raw is None:
        return None, {}
    if isinstance(raw, dict):
        raw = list(raw.values())
    if not isinstance(raw, list) or len(raw) > actions.MAX_ITEMS:
        errors.add("items", f"Expected a list of at most {actions.MAX_ITEMS} items.")
        return None, {}
    offer_ids, offers = _offers(site, raw, errors, actor)
    lines = {line.pk: line for line in existing or ()}
    by_line_id = {(r.get("code"), r.get("value")): line for line in lines.values() for r in line.external_ids}
    out = []
    for index, item in enumerate(raw):
        label = f"items[{index}]"
        if not isinstance(item, dict):
            errors.add(label)
            continue
        line = None
        if item.get("id") not in (None, ""):
            line = lines.get(_int_id(item["id"]) or 0)
            if line is None:
                errors.add(f"{label}.id", f"Order product with id {item['id']} not found.")
                continue
        line_ids = item.get("externalIds")
        if line is None and isinstance(line_ids, list):
            line = next(
                (
                    by_line_id[(r.get("code"), str(r.get("value")))]
                    for r in line_ids
                    if isinstance(r, dict) and (r.get("code"), str(r.get("value"))) in by_line_id
                ),
                None,
            )
        offer_id = offer_ids[index] if index < len(offer_ids) else None
        if offer_id is None and line is not None and not isinstance(item.get("offer"), dict):
            offer_id = line.offer_id
            offers.setdefault(offer_id, line.offer)
        if offer_id is None:
            if not any(key.startswith(f"{errors.prefix}{label}.offer") for key in errors.map):
                errors.add(f"{label}.offer", "Choose the offer: offer.id, offer.externalId or offer.xmlId.")
            continue
        data = ItemData(
            offer_id=offer_id,
            id=line.pk if line else None,
            quantity=_decimal(item, "quantity", errors, f"{label}.quantity"),
            initial_price=_decimal(item, "initialPrice", errors, f"{label}.initialPrice"),
            discount_manual_amount=_decimal(
                item, "discountManualAmount", errors, f"{label}.discountManualAmount"
            ),
            discount_manual_percent=_decimal(
                item, "discountManualPercent", errors, f"{label}.discountManualPercent"
            ),
            comment=_text(item, "comment", errors, f"{label}.comment") or "",
            product_name=_text(item, "productName", errors, f"{label}.productName"),
            external_ids=line_ids if isinstance(line_ids, list) else None,
        )
        if line_ids is not None and not isinstance(line_ids, list):
            errors.add(f"{label}.externalIds")
        if data.discount_manual_amount is None and item.get("discount") not in (None, ""):  # the v4 name
            data.discount_manual_amount = _decimal(item, "discount", errors, f"{label}.discount")
        if data.discount_manual_percent is None and item.get("discountPercent") not in (None, ""):
            data.discount_manual_percent = _decimal(
                item, "discountPercent", errors, f"{label}.discountPercent"
            )
        if line is not None:  # keep what the edit does not send
            for name in ("quantity", "initial_price", "discount_manual_amount", "discount_manual_percent"):
                if getattr(data, name) is None:
                    setattr(data, name, getattr(line, name))
            if "comment" not in item:
                data.comment = line.comment
            if data.product_name is None and data.offer_id == line.offer_id:
                data.product_name = line.product_name
            if data.external_ids is None:
                data.external_ids = line.external_ids
        if data.quantity is None:
            data.quantity = Decimal(1)
        data.discount_manual_amount = data.discount_manual_amount or Decimal(0)
        data.discount_manual_percent = data.discount_manual_percent or Decimal(0)
        out.append(data)
    return out, offers


def _payment_data(raw: dict[str, Any], errors: Errors, label: str) -> PaymentData:
    paid_at = None
    try:
        paid_at = formats.parse_datetime(raw.get("paidAt"), f"{label}paidAt")
    except ApiError:
        errors.add(f"{label}paidAt", "This value is not a valid datetime.")
    amount = _decimal(raw, "amount", errors, f"{label}amount")
    return PaymentData(
        type=_text(raw, "type", errors, f"{label}type") or "",
        status=_text(raw, "status", errors, f"{label}status") or "",
        amount=amount,
        paid_at=paid_at,
        comment=_text(raw, "comment", errors, f"{label}comment") or "",
        external_id=formats.external_id(raw.get("externalId")),
    )


def _payments(raw: dict[str, Any], errors: Errors) -> list[tuple[dict[str, Any], PaymentData]] | None:
    given = p.decode_entity(raw.get("payments"))
    if isinstance(given, dict):
        given = list(given.values())
    if given in (None, "", []):
        # The v4 fields: one payment of this type (and status) for the whole order.
        if raw.get("paymentType") not in (None, ""):
            legacy = {"type": raw["paymentType"], "status": raw.get("paymentStatus")}
            return [(legacy, _payment_data(legacy, errors, "paymentType."))]
        return None if given is None else []
    if not isinstance(given, list) or len(given) > 50:
        errors.add("payments")
        return None
    out = []
    for index, payment in enumerate(given):
        if not isinstance(payment, dict):
            errors.add(f"payments[{index}]")
            continue
        out.append((payment, _payment_data(payment, errors, f"payments[{index}].")))
    return out


def _delivery(raw: Any, data: OrderData, errors: Errors) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        errors.add("delivery")
        return
    if "code" in raw:
        data.delivery_type = _text(raw, "code", errors, "delivery.code")
    if "cost" in raw:
        data.delivery_cost = _decimal(raw, "cost", errors, "delivery.cost") or Decimal(0)
    if "date" in raw:
        try:
            day = formats.parse_date(raw["date"], "delivery.date")
        except ApiError:
            errors.add("delivery.date", "This value is not a valid date.")
        else:
            data.delivery_date = day or ""
    time = raw.get("time")
    if isinstance(time, dict):
        for key, attr in (("from", "delivery_time_from"), ("to", "delivery_time_to")):
            if key in time:
                value = _text(time, key, errors, f"delivery.time.{key}")
                setattr(data, attr, (value or "").strip()[:8])
    elif time not in (None, ""):
        errors.add("delivery.time")
    address = raw.get("address")
    if isinstance(address, dict):
        parts = {}
        for api_name, part in ADDRESS_KEYS.items():
            value = _text(address, api_name, errors, f"delivery.address.{api_name}")
            if value:
                parts[part] = value
        data.delivery_address_parts = parts
        text = _text(address, "text", errors, "delivery.address.text")
        data.delivery_address = text or ", ".join(
            parts[k] for k in ("index", "region", "city", "street", "building", "house", "flat") if k in parts
        )
    elif address not in (None, ""):
        errors.add("delivery.address")
    extra = raw.get("data")
    if isinstance(extra, dict) and "externalId" in extra:
        data.delivery_external_id = formats.external_id(extra["externalId"]) or ""


def _manager(raw: dict[str, Any], errors: Errors) -> tuple[bool, User | None]:
    if "managerId" not in raw:
        return False, None
    if raw["managerId"] in (None, ""):
        return True, None
    pk = _int_id(raw["managerId"])
    user = User.objects.filter(pk=pk).first() if pk else None
    if user is None:
        errors.add("managerId", f"User with id={raw['managerId']} not found.")
    return True, user


def parse_order(
    req: ApiRequest, site: Site, raw: dict[str, Any], *, order: Order | None = None, prefix: str = ""
) -> Parsed:
    """An order entity (create, or a partial edit of `order`): only the keys sent are set."""
    errors = Errors(prefix)
    data = OrderData()
    texts = {
        "number": "number",
        "firstName": "first_name",
        "lastName": "last_name",
        "patronymic": "patronymic",
        "phone": "phone",
        "additionalPhone": "additional_phone",
        "email": "email",
        "customerComment": "customer_comment",
        "managerComment": "manager_comment",
        "orderType": "order_type",
        "orderMethod": "order_method",
    }
    for api_name, attr in texts.items():
        value = _text(raw, api_name, errors)
        if value is not None:
            setattr(data, attr, value.strip())
    if "externalId" in raw:
        data.external_id = formats.external_id(raw["externalId"]) or ""
        if not data.external_id and raw["externalId"] not in (None, ""):
            errors.add("externalId")
    if raw.get("createdAt") not in (None, ""):
        try:
            data.created_at = formats.parse_datetime(raw["createdAt"], "createdAt")
        except ApiError:
            errors.add("createdAt", "This value is not a valid datetime.")
    for api_name, attr in (
        ("discountManualAmount", "discount_manual_amount"),
        ("discountManualPercent", "discount_manual_percent"),
        ("discount", "discount_manual_amount"),  # the v4 names
        ("discountPercent", "discount_manual_percent"),
    ):
        if raw.get(api_name) not in (None, "") and getattr(data, attr) is None:
            setattr(data, attr, _decimal(raw, api_name, errors))
    source = raw.get("source")
    if isinstance(source, dict):
        for key in SOURCE_KEYS:
            value = _text(source, key, errors, f"source.{key}")
            if value is not None:
                setattr(data, key, value)
    elif source not in (None, "", []):
        errors.add("source")
    custom = p.decode_entity(raw.get("customFields"))
    if isinstance(custom, dict):
        merged = dict(order.custom_fields) if order else {}
        merged.update(custom)
        data.custom_fields = merged
    elif custom not in (None, "", []):
        errors.add("customFields")
    _delivery(raw.get("delivery"), data, errors)
    if "customer" in raw:
        data.customer = _customer_link(req, site, p.decode_entity(raw["customer"]), errors)
    existing = list(order.items.select_related("offer")) if order and "items" in raw else None
    data.items, offers = _items(site, p.decode_entity(raw.get("items")), errors, existing, req.actor)
    parsed = Parsed(data=data, offers=offers)
    parsed.manager_set, parsed.manager = _manager(raw, errors)
    status = _text(raw, "status", errors)
    parsed.status = status.strip() if status else None
    parsed.status_comment = (_text(raw, "statusComment", errors) or "").strip()
    parsed.payments = _payments(raw, errors) or []
    errors.raise_if_any(NOT_LOADED)
    parsed.fields_given = any(
        value is not None
        for name, value in vars(data).items()
        if name not in ("manager", "manager_set", "payments", "new_customer", "extra")
    )
    return parsed


# --- finding orders ------------------------------------------------------------------------------------


def _site_param(req: ApiRequest) -> Site | None:
    return req.site(required=False) if req.params.get("site") not in (None, "") else None


def find_order(req: ApiRequest, uid: str, by: str | None = None, site: Site | None = None) -> Order:
    """An order by `id` or by `externalId` (on `site`, or on any of the key's sites if that is unique).

    Unknown → 404; an order of a site the key may not touch → 403.
    """
    by = by or req.by()
    orders = Order.objects.select_related("site")
    if by == "id":
        pk = _int_id(uid)
        order = orders.filter(pk=pk).first() if pk else None
        if order is None:
            raise NotFound()
        req.check_site(order.site)
        return order
    site = site or _site_param(req)
    found = orders.filter(external_id=uid)
    found = list(found.filter(site=site)[:2] if site else found.filter(req.site_q())[:2])
    if not found:
        raise NotFound()
    if len(found) > 1:
        raise MissingParameter("site")
    return found[0]


def _order_ref(req: ApiRequest, raw: Any, name: str, site: Site | None = None) -> Order:
    """`{id}` | `{externalId}` | `{number}` inside an entity (payments, combine)."""
    if not isinstance(raw, dict):
        raise ApiError(ENTITY_ERROR, 400, {name: "This value is not valid."})
    if raw.get("id") not in (None, ""):
        return find_order(req, str(raw["id"]), "id")
    site = site or _site_param(req)
    if raw.get("externalId") not in (None, ""):
        return find_order(req, str(formats.external_id(raw["externalId"])), "externalId", site)
    if raw.get("number") not in (None, ""):
        found = Order.objects.select_related("site").filter(number=str(raw["number"]))
        found = list(found.filter(site=site)[:2] if site else found.filter(req.site_q())[:2])
        if len(found) != 1:
            raise NotFound() if not found else MissingParameter("site")
        return found[0]
    raise ApiError(ENTITY_ERROR, 400, {name: "Give the order's id, externalId or number."})


# --- list, get, statuses -------------------------------------------------------------------------------


def _strings(flt: dict[str, Any], name: str) -> list[str] | None:
    if flt.get(name) in (None, "", []):
        return None
    try:
        return p.string_list(flt[name], name)
    except p.ParameterError:
        raise InvalidParameters(name) from None


def _ints(flt: dict[str, Any], name: str) -> list[int] | None:
    if flt.get(name) in (None, "", []):
        return None
    try:
        return p.int_list(flt[name], name)
    except p.ParameterError:
        raise InvalidParameters(name) from None


def _text_filter(flt: dict[str, Any], name: str) -> str:
    value = flt.get(name)
    if value in (None, ""):
        return ""
    if isinstance(value, dict | list):
        raise InvalidParameters(name)
    return str(value).strip()[:255]


def _moment(value: Any, name: str, end: bool) -> datetime.datetime | None:
    """A filter bound: a day (the whole day for a `…To`) or a date-time."""
    if value in (None, ""):
        return None
    if isinstance(value, dict | list):
        raise InvalidParameters(name)
    text = str(value).strip()
    if len(text) == 10:
        day = formats.parse_date(text, f"children[{name}]", error="Errors in the input parameters")
        moment = formats.parse_datetime(day.isoformat(), name, error="Errors in the input parameters")
        return moment + datetime.timedelta(days=1) if end else moment
    return formats.parse_datetime(text, f"children[{name}]", error="Errors in the input parameters")


def _range(qs: QuerySet, flt: dict[str, Any], field_name: str, low: str, high: str) -> QuerySet:
    start, stop = _moment(flt.get(low), low, False), _moment(flt.get(high), high, True)
    if start:
        qs = qs.filter(**{f"{field_name}__gte": start})
    if stop:
        day_given = len(str(flt.get(high)).strip()) == 10
        qs = qs.filter(**{f"{field_name}__lt" if day_given else f"{field_name}__lte": stop})
    return qs


def filtered_orders(req: ApiRequest) -> QuerySet[Order]:
    """The main filters of §2.2.1 over the key's sites; unknown filters are ignored."""
    flt = req.filter
    qs = Order.objects.filter(req.site_q())
    simple = {
        "ids": ("pk__in", _ints),
        "externalIds": ("external_id__in", _strings),
        "numbers": ("number__in", _strings),
        "sites": ("site__code__in", _strings),
        "orderTypes": ("order_type__code__in", _strings),
        "orderMethods": ("order_method__code__in", _strings),
        "deliveryTypes": ("delivery_type__code__in", _strings),
        "managers": ("manager_id__in", _ints),
    }
    for name, (lookup, read) in simple.items():
        values = read(flt, name)
        if values is not None:
            qs = qs.filter(**{lookup: values})
    statuses = _strings(flt, "extendedStatus")
    if statuses is not None:
        qs = qs.filter(Q(status__code__in=statuses) | Q(status__group__code__in=statuses))
    for name, lookup in (("paymentStatuses", "status__code__in"), ("paymentTypes", "type__code__in")):
        values = _strings(flt, name)
        if values is not None:
            qs = qs.filter(Exists(Payment.objects.filter(order=OuterRef("pk"), **{lookup: values})))
    if flt.get("customerId") not in (None, ""):
        pk = _int_id(flt["customerId"])
        if pk is None:
            raise InvalidParameters("customerId")
        qs = qs.filter(customer_id=pk)
    if text := _text_filter(flt, "customerExternalId"):
        qs = qs.filter(customer__external_id=text)
    if text := _text_filter(flt, "email"):
        qs = qs.filter(email__iexact=text)
    if text := _text_filter(flt, "trackNumber"):
        qs = qs.filter(track_number=text)
    if text := _text_filter(flt, "customer"):
        digits = "".join(c for c in text if c.isascii() and c.isdigit())
        q = Q(last_name__icontains=text) | Q(first_name__icontains=text) | Q(email__icontains=text)
        for word in text.split()[:3]:
            q |= Q(last_name__iexact=word) | Q(first_name__iexact=word)
        if len(digits) >= 5:
            q |= Q(phone__contains=digits[-10:])
        qs = qs.filter(q)
    qs = _range(qs, flt, "created_at", "createdAtFrom", "createdAtTo")
    qs = _range(qs, flt, "status_updated_at", "statusUpdatedAtFrom", "statusUpdatedAtTo")
    for name, lookup in (("minPrice", "total_summ__gte"), ("maxPrice", "total_summ__lte")):
        if flt.get(name) not in (None, ""):
            qs = qs.filter(
                **{
                    lookup: formats.parse_decimal(
                        flt[name], f"children[{name}]", error=("Errors in the input parameters")
                    )
                }
            )
    return qs


@api("GET", "orders", scope="order_read", query=("limit", "page"))
def order_list(req: ApiRequest) -> dict[str, Any]:
    """Orders matching the filter, newest first."""
    qs = filtered_orders(req).order_by("-created_at", "-id")
    limit, page = req.limit_page()
    total = qs.count()
    ids = list(qs.values_list("id", flat=True)[(page - 1) * limit : page * limit])
    return {"pagination": pagination(limit, page, total), "orders": orders_json(ids)}


@api("GET", "orders/statuses", scope="order_read", query=("ids", "externalIds"))
def order_statuses(req: ApiRequest) -> dict[str, Any]:
    """The status and status group of orders by ids and externalIds (top-level parameters)."""
    ids = _ints(req.params, "ids") or []
    external_ids = _strings(req.params, "externalIds") or []
    if not ids and not external_ids:
        raise ApiError("Errors in the input parameters", 400, {"ids": "Give ids or externalIds."})
    if len(ids) + len(external_ids) > LIST_LIMIT:
        raise ApiError("Errors in the input parameters", 400, {"ids": f"At most {LIST_LIMIT} orders."})
    rows = (
        Order.objects.filter(req.site_q())
        .filter(Q(pk__in=ids) | Q(external_id__in=external_ids))
        .order_by("id")
        .values("id", "external_id", "status__code", "status__group__code")
    )
    return {
        "orders": [
            formats.compact(
                {
                    "id": row["id"],
                    "externalId": row["external_id"],
                    "status": row["status__code"],
                    "group": row["status__group__code"],
                }
            )
            for row in rows
        ]
    }


@api("GET", "orders/{id}", scope="order_read", query=("by", "site"))
def order_get(req: ApiRequest, id: str) -> dict[str, Any]:
    """One order by externalId (default) or id."""
    order = find_order(req, id)
    if program_for_site(order.site_id) is not None:  # the bonuses the order took and earns, per line
        # Imported here: the loyalty endpoints build on this module's order shapes.
        from lavka.integrations.api_v5.endpoints.loyalty import loyalty_order_json

        return {"order": loyalty_order_json(order)}
    return {"order": orders_json([order.pk])[0]}


# --- create, edit, upload ------------------------------------------------------------------------------


def _order_site(req: ApiRequest, raw: dict[str, Any]) -> Site:
    site = req.site(required=False, value=req.params.get("site") or raw.get("site"))
    if site is None:
        raise MissingParameter("site")
    return site


def create_one(req: ApiRequest, raw: Any, prefix: str = "") -> Order:
    """One order of `orders/create` or `orders/upload`, all or nothing."""
    if not isinstance(raw, dict):
        raise ApiError(ENTITY_ERROR, 400, {prefix.rstrip(".") or "order": "This value is not valid."})
    site = _order_site(req, raw)
    parsed = parse_order(req, site, raw, prefix=prefix)
    data = parsed.data
    data.status = parsed.status
    data.manager, data.manager_set = parsed.manager, parsed.manager_set
    data.payments = [payment for _raw, payment in parsed.payments]
    if data.customer is None:
        data.new_customer = CustomerData(
            first_name=data.first_name,
            last_name=data.last_name,
            patronymic=data.patronymic,
            email=data.email,
            phones=[n for n in (data.phone, data.additional_phone) if n],
        )
    with writing(prefix=prefix):
        return actions.create_order(site, data, actor=req.actor, offers=parsed.offers)


@api("POST", "orders/create", scope="order_write", entity="order", query=("site",))
def order_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Create an order; an externalId the site has already → 400 `Order already exists.`"""
    order = create_one(req, req.entity("order"))
    return 201, {"id": order.pk, "order": created_orders_json([order])[0]}


def _edit_payments(order: Order, given: list[tuple[dict[str, Any], PaymentData]], req: ApiRequest) -> None:
    """Payments sent with an edit: one named by id or externalId is updated, any other is added."""
    current = list(order.payments.select_related("type", "status"))
    for raw, data in given:
        pk = _int_id(raw.get("id"))
        match = next(
            (
                pay
                for pay in current
                if (pk and pay.pk == pk) or (data.external_id and pay.external_id == data.external_id)
            ),
            None,
        )
        if match is None:
            if data.amount is None:
                data.amount = max(order.total_summ - sum(pay.amount for pay in current), Decimal(0))
            current.append(actions.add_payment(order, data, actor=req.actor))
        else:
            actions.update_payment(match, _merged_payment(match, raw, data), actor=req.actor)


def _merged_payment(payment: Payment, raw: dict[str, Any], data: PaymentData) -> PaymentData:
    """A partial payment edit: what is not sent stays as it is."""
    return PaymentData(
        type=data.type if "type" in raw else payment.type.code,
        status=data.status if "status" in raw else payment.status.code,
        amount=data.amount if "amount" in raw else payment.amount,
        paid_at=data.paid_at if "paidAt" in raw else payment.paid_at,
        comment=data.comment if "comment" in raw else payment.comment,
        external_id=data.external_id if "externalId" in raw else payment.external_id,
    )


@api("POST", "orders/{id}/edit", scope="order_write", entity="order", query=("by", "site"))
def order_edit(req: ApiRequest, id: str) -> dict[str, Any]:
    """Change the keys sent; `items` is the whole new list of lines."""
    order = find_order(req, id)
    raw = req.entity("order")
    parsed = parse_order(req, order.site, raw, order=order)
    with writing(), transaction.atomic():
        if parsed.fields_given:
            order = actions.update_order(order, parsed.data, actor=req.actor, offers=parsed.offers)
        if parsed.manager_set:
            order = actions.assign_manager(order, parsed.manager, actor=req.actor)
        if parsed.status:
            order = actions.change_status(
                order, parsed.status, actor=req.actor, comment=parsed.status_comment
            )
        if parsed.payments:
            _edit_payments(order, parsed.payments, req)
    return {"id": order.pk, "order": orders_json([order.pk])[0]}


def _entity_list(req: ApiRequest, name: str, limit: int) -> list[Any]:
    value = req.entity(name, kind=(list, dict))
    if isinstance(value, dict):
        value = list(value.values())
    if len(value) > limit:
        raise ApiError(ENTITY_ERROR, 400, {name: f"At most {limit} entries in one call."})
    return value


@api("POST", "orders/upload", scope="order_write", entity="orders", query=("site",))
def order_upload(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Create up to 50 orders, each all or nothing: 201, or 460 with the failed ones and why."""
    uploaded: list[Order] = []
    failed: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for index, raw in enumerate(_entity_list(req, "orders", UPLOAD_LIMIT)):
        prefix = f"orders[{index}]."
        try:
            uploaded.append(create_one(req, raw, prefix))
        except ApiError as exc:
            external_id = formats.external_id(raw.get("externalId")) if isinstance(raw, dict) else None
            failed.append(formats.compact({"externalId": external_id}))
            if isinstance(exc.errors, dict) and exc.errors:
                for key, message in exc.errors.items():
                    errors[key if key.startswith(prefix) else prefix + key] = message
            else:
                errors[prefix.rstrip(".")] = exc.message
    body = {
        "uploadedOrders": [formats.compact({"id": o.pk, "externalId": o.external_id}) for o in uploaded],
        "orders": created_orders_json(uploaded),
        "failedOrders": failed,
    }
    if failed:
        return 460, {"errorMsg": "Orders are loaded with errors", "errors": errors, **body}
    return 201, body


@api("POST", "orders/fix-external-ids", scope="order_write", entity="orders")
def order_fix_external_ids(req: ApiRequest) -> dict[str, Any]:
    """Give orders made in Lavka the shop's ids: `[{id, externalId}]`, all or none."""
    given = _entity_list(req, "orders", LIST_LIMIT)
    errors = Errors()
    pairs = []
    for index, raw in enumerate(given):
        pk = _int_id(raw.get("id")) if isinstance(raw, dict) else None
        external_id = formats.external_id(raw.get("externalId")) if isinstance(raw, dict) else None
        if pk is None:
            errors.add(f"orders[{index}].id")
        elif external_id is None:
            errors.add(f"orders[{index}].externalId")
        else:
            pairs.append((index, pk, external_id))
    errors.raise_if_any()
    orders = Order.objects.select_related("site").in_bulk([pk for _i, pk, _e in pairs])
    for index, pk, _external_id in pairs:
        if pk not in orders:
            errors.add(f"orders[{index}].id", f"Order with id={pk} not found.")
        else:
            req.check_site(orders[pk].site)
    errors.raise_if_any()
    with writing(ENTITY_ERROR), transaction.atomic():
        for index, pk, external_id in pairs:
            try:
                actions.update_order(orders[pk], OrderData(external_id=external_id), actor=req.actor)
            except OrderExists:
                raise ApiError(
                    ENTITY_ERROR, 400, {f"orders[{index}].externalId": "Order already exists."}
                ) from None
    return {}


@api("POST", "orders/combine", scope="order_write", entity="order", query=("technique",))
def order_combine(req: ApiRequest) -> dict[str, Any]:
    """Merge `order` into `resultOrder`: its lines and payments move, it is cancelled."""
    technique = req.text("technique") or "ours"
    if technique not in TECHNIQUES:
        raise ApiError("Errors in the input parameters", 400, {"technique": "Use ours, summ or theirs."})
    source = _order_ref(req, req.entity("order"), "order")
    target = _order_ref(req, req.entity("resultOrder"), "resultOrder")
    with writing(ENTITY_ERROR):
        actions.merge_orders(target, source, actor=req.actor)
    return {}


# --- payments ------------------------------------------------------------------------------------------


@api("POST", "orders/payments/create", scope="order_write", entity="payment", query=("site",))
def payment_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Add a payment to an order named by `payment.order` {id | externalId | number}."""
    raw = req.entity("payment")
    if "order" not in raw:
        raise MissingParameter("payment[order]")
    order = _order_ref(req, raw["order"], "payment.order")
    errors = Errors("payment.")
    data = _payment_data(raw, errors, "")
    errors.raise_if_any()
    if data.amount is None:  # the rest of the order's total
        paid = sum(pay.amount for pay in order.payments.all())
        data.amount = max(order.total_summ - paid, Decimal(0))
    with writing(ENTITY_ERROR, "payment."):
        payment = actions.add_payment(order, data, actor=req.actor)
    return 201, {"id": payment.pk}


def find_payment(req: ApiRequest, uid: str, by: str) -> Payment:
    payments = Payment.objects.select_related("order__site", "type", "status")
    if by == "id":
        pk = _int_id(uid)
        payment = payments.filter(pk=pk).first() if pk else None
    else:
        site = _site_param(req)
        found = payments.filter(external_id=uid)
        found = found.filter(order__site=site) if site else found.filter(req.site_q("order__site"))
        hits = list(found.order_by("id")[:20])
        # The same externalId on two sites: which one is meant needs `site` (§1.5).
        if len({pay.order.site_id for pay in hits}) > 1:
            raise MissingParameter("site")
        payment = hits[0] if hits else None
    if payment is None:
        raise NotFound("Payment not found")
    req.check_site(payment.order.site)
    return payment


@api("POST", "orders/payments/{id}/edit", scope="order_write", entity="payment", query=("by", "site"))
def payment_edit(req: ApiRequest, id: str) -> dict[str, Any]:
    """Change a payment by externalId (default) or id; the keys not sent stay."""
    payment = find_payment(req, id, req.by())
    raw = req.entity("payment")
    errors = Errors("payment.")
    data = _payment_data(raw, errors, "")
    errors.raise_if_any()
    with writing(ENTITY_ERROR, "payment."):
        actions.update_payment(payment, _merged_payment(payment, raw, data), actor=req.actor)
    return {"id": payment.pk}


@api("POST", "orders/payments/{id}/delete", scope="order_write")
def payment_delete(req: ApiRequest, id: str) -> dict[str, Any]:
    """Remove a payment (by its internal id)."""
    payment = find_payment(req, id, "id")
    with writing(ENTITY_ERROR, "payment."):
        actions.delete_payment(payment, actor=req.actor)
    return {}


# --- history -------------------------------------------------------------------------------------------


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return _money(Decimal(value))
        except ArithmeticError:
            return value
    return value


def _moment_text(value: Any) -> Any:
    """A date-time kept in history as ISO 8601 → `Y-m-d H:i:s`."""
    if isinstance(value, str) and "T" in value:
        try:
            return formats.dt(datetime.datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


NUMBERS = {
    "delivery_cost",
    "discount_manual_amount",
    "discount_manual_percent",
    "order_product.quantity",
    "order_product.initial_price",
    "order_product.discount_manual_amount",
    "order_product.discount_manual_percent",
    "payments.amount",
}
MOMENTS = {"created_at", "payments.paid_at"}
RENAMED = {
    "delivery_address": "delivery_address.text",
    "delivery_address.country_iso": "delivery_address.country",
}


def _kept(record: HistoryRecord) -> dict[str, Any]:
    """What a line's or payment's own record kept of it (for one since removed): its value dict."""
    value = record.old_value if record.old_value is not None else record.new_value
    return value if isinstance(value, dict) else {}


class _HistoryContext:
    """What one page of order history refers to, each kind loaded in one query."""

    def __init__(self, records: list[HistoryRecord]) -> None:
        order_ids = {r.entity_id for r in records}
        created = {r.entity_id for r in records if r.created}
        self.full = {o["id"]: o for o in orders_json(sorted(created))}
        self.stubs = {
            row["id"]: formats.compact(
                {
                    "id": row["id"],
                    "externalId": row["external_id"],
                    "managerId": row["manager_id"],
                    "site": row["site__code"],
                    "status": row["status__code"],
                }
            )
            for row in Order.objects.filter(pk__in=order_ids).values(
                "id", "external_id", "manager_id", "site__code", "status__code"
            )
        }
        item_ids = {r.context.get("item_id") for r in records if r.field.startswith("order_product")}
        self.items = {
            row["id"]: _item_out(row)
            for row in OrderItem.objects.filter(pk__in=item_ids - {None}).values(*ITEM_FIELDS)
        }
        gone_offers = {
            r.context.get("offer_id") or (_kept(r).get("offer") or {}).get("id")
            for r in records
            if r.field.startswith("order_product") and r.context.get("item_id") not in self.items
        }
        self.offers = {
            row["id"]: _offer_out({"offer_id": row["id"], **{f"offer__{k}": v for k, v in row.items()}})
            for row in Offer.objects.filter(pk__in=gone_offers - {None}).values(
                "id", "external_id", "xml_id", "name", "article", "sku"
            )
        }
        payment_ids = {r.context.get("payment_id") for r in records if r.field.startswith("payments")}
        self.payments = {
            pay.pk: pay
            for pay in Payment.objects.select_related("type", "status").filter(pk__in=payment_ids - {None})
        }
        # `customer` values name the customer as `{id, externalId?, site}` (§2.2.7), not just by id.
        customer_ids = {
            value.get("id")
            for r in records
            if r.field == "customer"
            for value in (r.old_value, r.new_value)
            if isinstance(value, dict)
        }
        self.customers = {
            row["id"]: formats.compact(
                {"id": row["id"], "externalId": row["external_id"], "site": row["site__code"]}
            )
            for row in Customer.objects.filter(pk__in=customer_ids - {None}).values(
                "id", "external_id", "site__code"
            )
        }
        self.codes: dict[str, dict[int, str]] = {}
        if any(r.field in ("payments.type", "payments.status") for r in records):
            self.codes["payments.type"] = dict(PaymentType.objects.values_list("id", "code"))
            self.codes["payments.status"] = dict(PaymentStatus.objects.values_list("id", "code"))

    def order(self, record: HistoryRecord) -> dict[str, Any]:
        if record.created and record.entity_id in self.full:
            return self.full[record.entity_id]
        return self.stubs.get(record.entity_id) or {"id": record.entity_id}

    def item(self, record: HistoryRecord) -> dict[str, Any]:
        pk = record.context.get("item_id")
        if pk in self.items:
            return self.items[pk]
        kept = _kept(record)
        offer = self.offers.get(record.context.get("offer_id") or (kept.get("offer") or {}).get("id"))
        return formats.compact(
            {
                "id": pk,
                "offer": offer or kept.get("offer"),
                "productName": kept.get("name"),
                "quantity": _number(kept.get("quantity")),
                "initialPrice": _number(kept.get("initial_price")),
            }
        )

    def payment(self, record: HistoryRecord) -> dict[str, Any]:
        pk = record.context.get("payment_id")
        if pk in self.payments:
            payment = self.payments[pk]
            return formats.compact(
                {
                    "id": pk,
                    "type": payment.type.code,
                    "externalId": payment.external_id,
                    "status": payment.status.code,
                    "amount": _money(payment.amount),
                }
            )
        kept = _kept(record)
        return formats.compact(
            {
                "id": pk,
                "type": kept.get("type"),
                "externalId": kept.get("external_id"),
                "status": kept.get("status"),
                "amount": _number(kept.get("amount")),
            }
        )

    def value(self, record: HistoryRecord, value: Any) -> Any:
        name = record.field
        if value is None or value == "":  # "no value" is null in the feed, never an empty string
            return None
        if name == "customer" and isinstance(value, dict):
            return self.customers.get(value.get("id")) or value
        if name in NUMBERS:
            return _number(value)
        if name in MOMENTS:
            return _moment_text(value)
        if name in self.codes:
            return {"code": self.codes[name].get(value, value)}
        if name == "order_product" and isinstance(value, dict):
            item = self.item(record)
            return {"id": item.get("id"), "offer": item.get("offer")}
        if name == "payments" and isinstance(value, dict):
            return {"id": value.get("id"), "type": value.get("type")}
        return value


def order_history(records: list[HistoryRecord], req: ApiRequest) -> list[dict[str, Any]]:
    """Lavka's order history records in the feed's shape (§2.2.7)."""
    context = _HistoryContext(records)
    out = []
    for record in records:
        row = history.record_base(record, req)
        row["field"] = RENAMED.get(record.field, record.field)
        row["oldValue"] = context.value(record, record.old_value)
        row["newValue"] = context.value(record, record.new_value)
        row["order"] = context.order(record)
        if record.field.startswith("order_product"):
            row["item"] = context.item(record)
        elif record.field.startswith("payments"):
            row["payment"] = context.payment(record)
        elif record.field == "combined_to" and isinstance(record.new_value, dict):
            target = context.stubs.get(record.new_value.get("id")) or {"id": record.new_value.get("id")}
            row["combinedTo"] = {k: v for k, v in target.items() if k in ("id", "externalId", "site")}
        out.append(row)
    return out


@api("GET", "orders/history", scope="order_read", query=("limit", "page"))
def order_history_feed(req: ApiRequest) -> dict[str, Any]:
    """Order changes in id order: move `filter[sinceId]` forward to read them all exactly once."""
    flt = req.filter
    scope = Order.objects.filter(req.site_q())
    narrowed = req.key.site_codes is not None
    if flt.get("orderId") not in (None, ""):
        pk = _int_id(flt["orderId"])
        if pk is None:
            raise InvalidParameters("orderId")
        scope, narrowed = scope.filter(pk=pk), True
    if flt.get("orderExternalId") not in (None, ""):
        scope, narrowed = scope.filter(external_id=_text_filter(flt, "orderExternalId")), True
    entity_ids = scope.values("id") if narrowed else None
    return history.feed(req, "order", order_history, entity_ids=entity_ids)


# --- delivery tracking ---------------------------------------------------------------------------------


def _latest_status(updates: Any) -> str | None:
    """The code of the newest entry of a tracking `history` list (by `updatedAt`, else the last)."""
    if not isinstance(updates, list):
        return None
    entries = [u for u in updates if isinstance(u, dict) and u.get("code") not in (None, "")]
    if not entries:
        return None

    def moment(entry: dict[str, Any]) -> datetime.datetime:
        try:
            return formats.parse_datetime(
                entry.get("updatedAt"), "updatedAt"
            ) or datetime.datetime.min.replace(tzinfo=datetime.UTC)
        except ApiError:
            return datetime.datetime.min.replace(tzinfo=datetime.UTC)

    return str(max(enumerate(entries), key=lambda pair: (moment(pair[1]), pair[0]))[1]["code"])


@api("POST", "delivery/generic/{subcode}/tracking", scope="delivery_write", entity="statusUpdate")
def delivery_tracking(req: ApiRequest, subcode: str) -> dict[str, Any]:
    """A delivery service reports track numbers and statuses of shipments (by `deliveryId`)."""
    updates = _entity_list(req, "statusUpdate", LIST_LIMIT)
    not_found = []
    for index, update in enumerate(updates):
        if not isinstance(update, dict) or formats.external_id(update.get("deliveryId")) is None:
            raise ApiError(
                ENTITY_ERROR, 400, {f"statusUpdate[{index}].deliveryId": "This value is required."}
            )
    for update in updates:
        delivery_id = formats.external_id(update["deliveryId"])
        orders = Order.objects.filter(req.site_q(), delivery_external_id=delivery_id).order_by("id")
        order = orders.first()
        if order is None:  # not ours: the service may report shipments of other systems too
            not_found.append(delivery_id)
            continue
        track = update.get("trackNumber")
        with writing(ENTITY_ERROR, "statusUpdate."):
            actions.record_delivery_tracking(
                order,
                actor=req.actor,
                track_number=None if track in (None, "") or isinstance(track, dict | list) else str(track),
                status=_latest_status(update.get("history")),
            )
    return {"notFoundDeliveryIds": not_found} if not_found else {}
