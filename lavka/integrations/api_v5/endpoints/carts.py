"""API v5: abandoned carts (customer-interaction, retailcrm-api-v5.md §2.13).

The WooCommerce, PrestaShop and Bitrix modules report a customer's cart on every change (`cart/set`),
empty it when the customer buys or removes everything (`cart/clear`), and ask whether one exists
(`GET cart/{customerId}`). retailCRM documents no cart scope, so the customer scopes apply.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from lavka.catalog.models import Offer
from lavka.core.models import Site
from lavka.customers.models import Customer
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5.endpoints.tasks import plain_id
from lavka.integrations.api_v5.errors import ENTITY_ERROR, ApiError, NotFound, entity_error
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api
from lavka.orders.models import Order
from lavka.tracking.actions import MAX_ITEMS, CartData, CartLine, clear_cart, set_cart
from lavka.tracking.models import Cart

NOT_VALID = "This value is not valid."
OFFER_KEYS = (("id", "id"), ("externalId", "external_id"), ("xmlId", "xml_id"))
# Action field → the cart's field in the API, for error keys.
FIELD_NAMES = {"external_id": "externalId", "dropped_at": "droppedAt", "cleared_at": "clearedAt"}


# --- reading -----------------------------------------------------------------------------------------


def _stamp(value: datetime.datetime | None) -> str | None:
    """`Y-m-d H:i:sP` (PHP6 `Cart.droppedAt`), in the account's time zone."""
    return timezone.localtime(value).isoformat(sep=" ", timespec="seconds") if value else None


def cart_json(cart: Cart) -> dict[str, Any]:
    items = [
        {
            "id": item.pk,
            "offer": formats.compact(
                {
                    "id": item.offer.pk,
                    "externalId": item.offer.external_id,
                    "xmlId": item.offer.xml_id,
                    "name": item.offer.name,
                    "displayName": item.offer.name,
                    "article": item.offer.article,
                }
            ),
            "quantity": formats.money(item.quantity),
            "price": formats.money(item.price),
        }
        for item in cart.items.select_related("offer")
    ]
    order = None
    if cart.order is not None:
        order = formats.compact(
            {"id": cart.order.pk, "externalId": cart.order.external_id, "number": cart.order.number}
        )
    return formats.compact(
        {
            "externalId": cart.external_id,
            "currency": cart.currency,
            "link": cart.link,
            "droppedAt": _stamp(cart.dropped_at),
            "clearedAt": _stamp(cart.cleared_at),
            "createdAt": formats.dt(cart.created_at),
            "updatedAt": formats.dt(cart.updated_at),
            "customer": formats.compact({"id": cart.customer.pk, "externalId": cart.customer.external_id}),
            "order": order,
            "items": items,
        }
    )


# --- lookups ---------------------------------------------------------------------------------------


def _path_site(req: ApiRequest, value: str) -> Site:
    """The path's `{site}`: a code, or an id with `siteBy=id`; the key must have access to it."""
    site_by = req.text("siteBy") or "code"
    if site_by == "code":
        return req.site_by_code(value)
    if site_by != "id":
        raise ApiError(
            f"Value '{site_by}' for parameter 'siteBy' is not valid. Allowed values are code and id."
        )
    pk = plain_id(value)
    site = Site.objects.filter(pk=pk).first() if pk else None
    if site is None:
        raise ApiError(f"Site with id '{value[:64]}' not found", 400)
    return req.check_site(site)


def _survivor(customer: Customer | None) -> Customer | None:
    """A merged customer lives on in the one it was merged into."""
    for _hop in range(10):
        if customer is None or not customer.merged_into_id:
            return customer
        customer = Customer.objects.filter(pk=customer.merged_into_id).first()
    return customer


def _text_value(value: Any) -> str | None:
    """An identifier sent as a string or a number; None for objects, lists and booleans."""
    if isinstance(value, dict | list | bool):
        return None
    return formats.external_id(value)


def _customer(site: Site, ref: Any, errors: dict[str, str]) -> Customer | None:
    """`cart.customer`: `{id}`, `{externalId}` or `{browserId}`, a customer of the path's site."""
    if not isinstance(ref, dict):
        errors["cart.customer"] = "Give the customer's id, externalId or browserId."
        return None
    for key in ("id", "externalId", "browserId"):
        if ref.get(key) in (None, ""):
            continue
        shown = _text_value(ref[key])
        if shown is None:
            errors[f"cart.customer.{key}"] = NOT_VALID
            return None
        found = None
        if key == "id":
            pk = plain_id(shown)
            found = Customer.objects.filter(site=site, pk=pk).first() if pk else None
        elif key == "externalId":
            found = Customer.objects.filter(site=site, external_id=shown).first()
        # browserId: Lavka keeps no browser ids, so such a customer is never known.
        found = _survivor(found)
        if found is None:
            errors[f"cart.customer.{key}"] = f"Customer with {key}={shown} not found."
        return found
    errors["cart.customer"] = "Give the customer's id, externalId or browserId."
    return None


def _offers(site: Site, items: list[Any], errors: dict[str, str]) -> list[Offer | None]:
    """Each line's offer by `offer.id`, `offer.externalId` or `offer.xmlId`, in one query."""
    wanted: list[tuple[str, str, str] | None] = []
    for index, item in enumerate(items):
        label = f"cart.items[{index}]"
        if not isinstance(item, dict):
            errors[label] = NOT_VALID
            wanted.append(None)
            continue
        offer, ref = item.get("offer"), None
        for key, column in OFFER_KEYS if isinstance(offer, dict) else ():
            if offer.get(key) in (None, ""):
                continue
            value = _text_value(offer[key])
            if key == "id" and value is not None:
                value = str(plain_id(value) or "") or None
            if value is None:
                errors[f"{label}.offer.{key}"] = f"Offer with {key} {str(offer[key])[:100]} not found."
            else:
                ref = (key, column, value)
            break
        else:
            errors[f"{label}.offer"] = "Choose the offer: offer.id, offer.externalId or offer.xmlId."
        wanted.append(ref)
    values: dict[str, set[str]] = {column: set() for _key, column in OFFER_KEYS}
    for _key, column, value in filter(None, wanted):
        values[column].add(value)
    q = Q(pk__in=[int(v) for v in values["id"]])
    q |= Q(external_id__in=values["external_id"]) | Q(xml_id__in=values["xml_id"])
    index: dict[tuple[str, str], Offer] = {}
    for offer in Offer.objects.for_site(site.pk).select_related("product").filter(q).order_by("id"):
        for _key, column in OFFER_KEYS:  # the first (oldest) offer wins where an external id repeats
            index.setdefault((column, str(getattr(offer, column))), offer)
    found: list[Offer | None] = []
    for position, ref in enumerate(wanted):
        offer = index.get((ref[1], ref[2])) if ref else None
        if ref and offer is None:
            errors[f"cart.items[{position}].offer.{ref[0]}"] = f"Offer with {ref[0]} {ref[2]} not found."
        found.append(offer)
    return found


def _order(site: Site, ref: Any, errors: dict[str, str]) -> Order | None:
    """`cart.order`: `{id}`, `{externalId}` or `{number}` of an order on the same site."""
    if ref in (None, "", [], {}):
        return None
    if not isinstance(ref, dict):
        errors["cart.order"] = NOT_VALID
        return None
    for key, column in (("id", "pk"), ("externalId", "external_id"), ("number", "number")):
        if ref.get(key) in (None, ""):
            continue
        value = _text_value(ref[key])
        if value is not None and key == "id":
            value = plain_id(value)
        order = Order.objects.filter(site=site, **{column: value}).first() if value is not None else None
        if order is None:
            errors[f"cart.order.{key}"] = f"Order with {key}={str(ref[key])[:100]} not found."
        return order
    errors["cart.order"] = "Give the order's id, externalId or number."
    return None


def _datetime(cart: dict[str, Any], name: str, errors: dict[str, str]) -> datetime.datetime | None:
    value = cart.get(name)
    if isinstance(value, dict | list | bool):
        errors[f"cart.{name}"] = "This value is not a valid datetime."
        return None
    try:
        return formats.parse_datetime(value, f"cart.{name}")
    except ApiError as exc:
        errors.update(exc.errors or {})
        return None


def _string(cart: dict[str, Any], name: str, errors: dict[str, str]) -> str | None:
    value = cart.get(name)
    if value is None:
        return None
    if isinstance(value, dict | list | bool):
        errors[f"cart.{name}"] = NOT_VALID
        return None
    return str(value)


def _external_id(cart: dict[str, Any], errors: dict[str, str]) -> str | None:
    """externalId is a string, but shops send numbers too; absent means "keep the cart's"."""
    value = _string(cart, "externalId", errors)
    return None if value is None else formats.external_id(cart["externalId"]) or ""


def _number(item: dict[str, Any], name: str, label: str, errors: dict[str, str]) -> Any:
    try:
        return formats.parse_decimal(item.get(name), f"{label}.{name}")
    except ApiError as exc:
        errors.update(exc.errors or {})
        return None


def _items(site: Site, raw: Any, errors: dict[str, str]) -> list[CartLine]:
    if raw in (None, ""):
        return []
    if isinstance(raw, dict):  # form arrays arrive as {"0": …, "1": …}
        raw = list(raw.values())
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        errors["cart.items"] = f"Expected a list of at most {MAX_ITEMS} items."
        return []
    offers = _offers(site, raw, errors)
    lines = []
    for index, (item, offer) in enumerate(zip(raw, offers, strict=True)):
        label = f"cart.items[{index}]"
        if not isinstance(item, dict) or offer is None:
            continue
        quantity = _number(item, "quantity", label, errors)
        price = _number(item, "price", label, errors)
        lines.append(CartLine(offer, 1 if quantity is None else quantity, price))
    return lines


def _save_errors(exc: ValidationError) -> ApiError:
    # Every key gets the prefix, also the dotted ones (`items[0].price` → `cart.items[0].price`).
    renamed = {f"cart.{FIELD_NAMES.get(k, k)}": v for k, v in exc.message_dict.items()}
    return entity_error(ValidationError(renamed), ENTITY_ERROR)


# --- endpoints ---------------------------------------------------------------------------------------


@api(
    "GET",
    "customer-interaction/{site}/cart/{customerId}",
    scope="customer_read",
    query=("by", "siteBy"),
)
def cart_get(req: ApiRequest, site: str, customerId: str) -> dict[str, Any]:  # noqa: N803 (the path name)
    """The customer's current cart on the site."""
    shop = _path_site(req, site)
    if req.by() == "id":
        pk = plain_id(customerId)
        customer = Customer.objects.filter(site=shop, pk=pk).first() if pk else None
    else:
        customer = Customer.objects.filter(site=shop, external_id=customerId[:100]).first()
    customer = _survivor(customer)
    cart = (
        Cart.objects.filter(site=shop, customer=customer).select_related("customer", "order").first()
        if customer
        else None
    )
    if cart is None:
        raise NotFound()
    return {"cart": cart_json(cart)}


@api(
    "POST",
    "customer-interaction/{site}/cart/set",
    scope="customer_write",
    entity="cart",
    query=("siteBy",),
)
def cart_set(req: ApiRequest, site: str) -> dict[str, Any]:
    """Create or replace the customer's cart: items, dates, external id, currency and link."""
    shop = _path_site(req, site)
    cart = req.entity("cart")
    errors: dict[str, str] = {}
    customer = _customer(shop, cart.get("customer"), errors)
    data = CartData(
        items=_items(shop, cart.get("items"), errors),
        external_id=_external_id(cart, errors),
        currency=_string(cart, "currency", errors),
        link=_string(cart, "link", errors),
        dropped_at=_datetime(cart, "droppedAt", errors),
        cleared_at=_datetime(cart, "clearedAt", errors),
        order=_order(shop, cart.get("order"), errors),
    )
    if errors or customer is None:
        raise ApiError(ENTITY_ERROR, 400, errors)
    try:
        set_cart(shop, customer, data, actor=req.actor)
    except ValidationError as exc:
        raise _save_errors(exc) from None
    return {}


@api(
    "POST",
    "customer-interaction/{site}/cart/clear",
    scope="customer_write",
    entity="cart",
    query=("siteBy",),
)
def cart_clear(req: ApiRequest, site: str) -> dict[str, Any]:
    """Empty the customer's cart (`clearedAt`, and the `order` it became when bought)."""
    shop = _path_site(req, site)
    cart = req.entity("cart")
    errors: dict[str, str] = {}
    customer = _customer(shop, cart.get("customer"), errors)
    cleared_at = _datetime(cart, "clearedAt", errors)
    order = _order(shop, cart.get("order"), errors)
    if errors or customer is None:
        raise ApiError(ENTITY_ERROR, 400, errors)
    try:
        clear_cart(shop, customer, cleared_at=cleared_at, order=order, actor=req.actor)
    except ValidationError as exc:
        raise _save_errors(exc) from None
    return {}
