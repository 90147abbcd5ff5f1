"""The only writers of carts: the shop reports a customer's cart (`set_cart`) or empties it (`clear_cart`).

Each change is written with its history (entity "cart") and its event in one transaction (DESIGN.md §6).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.catalog.models import Offer
from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import Site
from lavka.core.validation import clean_decimal, clean_text
from lavka.customers.models import Customer
from lavka.orders.models import Order
from lavka.tracking.events import CartCleared, CartUpdated
from lavka.tracking.models import Cart, CartItem

ENTITY = "cart"
MAX_ITEMS = 500
TRACKED_FIELDS = {
    "external_id": "external_id",
    "currency": "currency",
    "link": "link",
    "dropped_at": "dropped_at",
    "cleared_at": "cleared_at",
    "order_id": "order",
}


@dataclass
class CartLine:
    offer: Offer
    quantity: Any = 1
    price: Any = None  # None: the offer's catalog price


@dataclass
class CartData:
    """A cart as the shop reports it. The lines and dates replace what was there; the external id,
    currency and link are kept when None (the WooCommerce module sends its cart id only once)."""

    items: list[CartLine] = field(default_factory=list)
    external_id: str | None = None
    currency: str | None = None
    link: str | None = None
    dropped_at: datetime.datetime | None = None  # None: now
    cleared_at: datetime.datetime | None = None
    order: Order | None = None


def _rounded(value: Any, field_name: str, places: int) -> Decimal:
    # Shops send float prices with tax (24.9917): round them rather than refuse the cart.
    try:
        number = Decimal(str(value).strip().replace(",", "."))
        if number.is_finite():
            number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise ValidationError({field_name: _("Enter a number.")}) from None
    return number


def _clean_lines(site: Site, lines: list[CartLine]) -> list[CartItem]:
    if len(lines) > MAX_ITEMS:
        raise ValidationError({"items": _("At most %(n)s items.") % {"n": MAX_ITEMS}})
    items, errors = [], {}
    for position, line in enumerate(lines):
        label = f"items[{position}]"
        try:
            if line.offer.product.site_id != site.pk:
                raise ValidationError({f"{label}.offer": _("The offer belongs to another site.")})
            quantity = clean_decimal(
                _rounded(line.quantity, f"{label}.quantity", 3),
                f"{label}.quantity",
                minimum=Decimal("0.001"),
                maximum=Decimal("999999999"),
                places=3,
            )
            price = line.offer.price if line.price is None else line.price
            price = clean_decimal(_rounded(price, f"{label}.price", 2), f"{label}.price")
        except ValidationError as exc:
            errors.update(exc.message_dict)
            continue
        items.append(CartItem(offer=line.offer, quantity=quantity, price=price, position=position))
    if errors:
        raise ValidationError(errors)
    return items


def _check_links(site: Site, customer: Customer, order: Order | None) -> None:
    if customer.site_id != site.pk:
        raise ValidationError({"customer": _("The customer belongs to another site.")})
    if order is not None and order.site_id != site.pk:
        raise ValidationError({"order": _("The order belongs to another site.")})


def _lines_snapshot(items: list[CartItem]) -> list[dict[str, Any]]:
    return [{"offer": i.offer_id, "quantity": str(i.quantity), "price": str(i.price)} for i in items]


def _snapshot(cart: Cart, items: list[CartItem]) -> dict[str, Any]:
    return {**history.snapshot(cart, TRACKED_FIELDS), "items": _lines_snapshot(items)}


def _locked(site: Site, customer: Customer, *, create: bool) -> tuple[Cart | None, bool]:
    """The current cart, locked until the commit; created when asked for and missing."""
    cart = Cart.objects.select_for_update().filter(site=site, customer=customer).first()
    if cart is not None or not create:
        return cart, False
    try:
        with transaction.atomic():
            return Cart.objects.create(site=site, customer=customer, currency=site.currency), True
    except IntegrityError:  # a concurrent first report of the same cart won: replace its contents
        return Cart.objects.select_for_update().get(site=site, customer=customer), False


def _write(cart: Cart, before: dict[str, Any] | None, after: dict[str, Any], actor: Actor) -> list[str]:
    """History for the change; returns the names of the fields that changed."""
    context = {"site": cart.site.code, "customer_id": cart.customer_id}
    if before is None:
        changes = [Change(ENTITY, cart.pk, "id", None, cart.pk, created=True, context=context)]
        changes += [
            Change(ENTITY, cart.pk, name, None, value, created=True, context=context)
            for name, value in after.items()
            if value not in (None, "", [])
        ]
    else:
        changes = history.diff(ENTITY, cart.pk, before, after, context)
    history.write(changes, actor)
    return [c.field for c in changes if c.field != "id"]


def _replace_items(cart: Cart, items: list[CartItem]) -> None:
    CartItem.objects.filter(cart=cart).delete()
    for item in items:
        item.cart = cart
    CartItem.objects.bulk_create(items)


@transaction.atomic
def set_cart(site: Site, customer: Customer, data: CartData, *, actor: Actor) -> Cart:
    """Create or replace the customer's current cart on `site`."""
    _check_links(site, customer, data.order)
    items = _clean_lines(site, data.items)
    cart, created = _locked(site, customer, create=True)
    before = None if created else _snapshot(cart, list(cart.items.all()))
    if data.external_id is not None:
        cart.external_id = clean_text(data.external_id, "external_id", 100)
    if data.currency is not None:
        currency = clean_text(data.currency, "currency", 3).upper()
        if currency and not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
            raise ValidationError({"currency": _("Enter a three-letter currency code.")})
        cart.currency = currency
    if data.link is not None:
        cart.link = clean_text(data.link, "link", 2000)
    cart.dropped_at = data.dropped_at or timezone.now()
    cart.cleared_at = data.cleared_at
    cart.order = data.order
    cart.save()
    _replace_items(cart, items)
    fields = _write(cart, before, _snapshot(cart, items), actor)
    if fields:
        events.emit(CartUpdated(cart.pk, site.code, customer.pk, fields), actor=actor)
    return cart


@transaction.atomic
def clear_cart(
    site: Site,
    customer: Customer,
    *,
    actor: Actor,
    cleared_at: datetime.datetime | None = None,
    order: Order | None = None,
) -> Cart | None:
    """Empty the customer's cart (bought, or everything removed); None when there is no cart."""
    _check_links(site, customer, order)
    cart, _created = _locked(site, customer, create=False)
    if cart is None:
        return None
    before = _snapshot(cart, list(cart.items.all()))
    cart.cleared_at = cleared_at or timezone.now()
    if order is not None:
        cart.order = order
    cart.save()
    _replace_items(cart, [])
    fields = _write(cart, before, _snapshot(cart, []), actor)
    # A second clear only moves the date: the cart was already reported empty.
    if before["cleared_at"] is None or "order" in fields:
        events.emit(CartCleared(cart.pk, site.code, customer.pk, cart.order_id), actor=actor)
    return cart
