"""The only writers of price types, offer prices, purchase prices, and offers made from order lines."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from lavka.catalog.models import Offer, OfferPrice, PriceType, Product
from lavka.core.actions import apply_and_save
from lavka.core.actor import Actor
from lavka.core.models import Site


@transaction.atomic
def save_price_type(instance: PriceType | None, values: dict[str, Any], *, actor: Actor) -> PriceType:
    """Create or change a price type. Which type is the base one is fixed: the base price is `Offer.price`."""
    if "is_default" in values and bool(values["is_default"]) != bool(instance and instance.is_default):
        raise ValidationError({"is_default": _("The base price type cannot be changed.")})
    return apply_and_save(instance or PriceType(), values)


@transaction.atomic
def set_offer_prices(offer: Offer, prices: dict[PriceType, Decimal | None], *, actor: Actor) -> bool:
    """Set (or with None remove) an offer's prices by type; the base type sets `offer.price`.

    Returns whether anything changed.
    """
    Offer.objects.select_for_update().filter(pk=offer.pk).first()  # one writer of an offer's prices
    changed = False
    for price_type, price in prices.items():
        if price_type.is_default:
            if price is None:
                raise ValidationError({"price": _("The base price cannot be removed.")})
            if offer.price != price:
                offer.price = price
                _check(offer, "price")
                offer.save(update_fields=["price"])
                changed = True
        elif price is None:
            changed |= OfferPrice.objects.filter(offer=offer, price_type=price_type).delete()[0] > 0
        else:
            row = OfferPrice.objects.filter(offer=offer, price_type=price_type).first()
            if row is None:
                row = OfferPrice(offer=offer, price_type=price_type, price=price)
            elif row.price == price:
                continue
            row.price = price
            _check(row, "price")
            row.save()
            changed = True
    return changed


@transaction.atomic
def set_purchase_price(offer: Offer, price: Decimal, *, actor: Actor) -> None:
    """The offer's purchase price, which new order lines copy for margins."""
    if offer.purchase_price == price:
        return
    offer.purchase_price = price
    _check(offer, "purchase_price")
    offer.save(update_fields=["purchase_price"])


def _check(row: Any, field: str) -> None:
    """Validate one field (not the whole row: old rows may predate newer rules on other fields)."""
    row.clean_fields(exclude=[f.name for f in row._meta.fields if f.name != field])


@transaction.atomic
def offer_from_order_line(
    site: Site, *, name: str, price: Decimal, actor: Actor, external_id: str = "", xml_id: str = ""
) -> Offer:
    """The offer an integration's order line names by `external_id` (or `xml_id`) when the catalog has
    none yet: made from the line's product name and price, so later orders and stock uploads bind to
    it, and a catalog import fills in the rest by the same id."""
    if not (external_id or xml_id):
        raise ValidationError({"offer": _("An external ID or xmlId is needed.")})
    Site.objects.select_for_update().filter(pk=site.pk).first()  # one creator per site: no twin offers
    existing = Offer.objects.filter(product__site=site)
    existing = existing.filter(external_id=external_id) if external_id else existing.filter(xml_id=xml_id)
    offer = existing.order_by("id").first()
    if offer is not None:
        return offer
    name = name.strip()[:255]
    product = Product.objects.create(site=site, name=name, external_id=external_id)
    offer = Offer(
        product=product,
        external_id=external_id,
        xml_id=xml_id,
        sku=(external_id or xml_id)[:100],
        name=name,
        price=price,
    )
    _check(offer, "price")
    offer.save()
    return offer
