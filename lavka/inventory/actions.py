"""The only writers of warehouses, stock levels and stock movements."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from lavka.catalog import actions as catalog_actions
from lavka.catalog.models import Offer
from lavka.core.actions import apply_and_save
from lavka.core.actor import Actor
from lavka.core.events import emit
from lavka.inventory.events import StockChanged
from lavka.inventory.models import StockLevel, StockMovement, Warehouse

THOUSANDTHS = Decimal("0.001")


@transaction.atomic
def save_warehouse(instance: Warehouse | None, values: dict[str, Any], *, actor: Actor) -> Warehouse:
    """Create or change a warehouse; errors are ValidationError keyed by field name."""
    return apply_and_save(instance or Warehouse(), values)


@dataclass(frozen=True)
class StockCount:
    """What a warehouse says it holds of an offer (and, optionally, what it paid for it)."""

    warehouse: Warehouse
    quantity: Decimal
    purchase_price: Decimal | None = None


@transaction.atomic
def set_stock(offer: Offer, counts: list[StockCount], *, actor: Actor) -> list[StockMovement]:
    """Make the offer's stock in each warehouse equal to the count, recording each difference as a movement.

    A purchase price given with a count is kept on the stock level and becomes the offer's purchase
    price (the last one given wins), so order lines copy it.
    """
    movements = []
    changes = []
    for count in sorted(counts, key=lambda c: c.warehouse.pk):  # one lock order: no deadlocks
        _check_quantity(count)
        level, _created = StockLevel.objects.select_for_update().get_or_create(
            offer=offer, warehouse=count.warehouse
        )
        old = level.quantity
        fields = []
        if old != count.quantity:
            level.quantity = count.quantity.quantize(THOUSANDTHS)
            fields.append("quantity")
            movements.append(
                StockMovement(
                    offer=offer,
                    warehouse=count.warehouse,
                    delta=count.quantity - old,
                    quantity_after=count.quantity,
                    reason=StockMovement.Reason.SET,
                    source=actor.source,
                    actor_ref=actor.ref,
                    actor_name=actor.name[:150],
                )
            )
            changes.append({"warehouse": count.warehouse.code, "old": old, "new": level.quantity})
        if count.purchase_price is not None and level.purchase_price != count.purchase_price:
            level.purchase_price = count.purchase_price
            fields.append("purchase_price")
        if fields:
            level.save(update_fields=[*fields, "updated_at"])
    StockMovement.objects.bulk_create(movements)
    priced = [c.purchase_price for c in counts if c.purchase_price is not None]
    if priced:
        catalog_actions.set_purchase_price(offer, priced[-1], actor=actor)
    if changes:
        emit(StockChanged(offer_id=offer.pk, site=offer.product.site.code, changes=changes), actor=actor)
    return movements


def _check_quantity(count: StockCount) -> None:
    if count.quantity < 0:
        raise ValidationError({"quantity": _("The quantity cannot be negative.")})
    if count.quantity >= Decimal("1e11") or count.quantity != count.quantity.quantize(THOUSANDTHS):
        raise ValidationError({"quantity": _("Enter a quantity with at most 3 decimal places.")})
    if (
        count.warehouse.inventory_type == Warehouse.InventoryType.INTEGER
        and count.quantity != count.quantity.to_integral_value()
    ):
        raise ValidationError({"quantity": _("This warehouse keeps stock in whole units.")})
    if count.purchase_price is not None and (
        count.purchase_price < 0
        or count.purchase_price >= Decimal("1e12")
        or count.purchase_price != count.purchase_price.quantize(Decimal("0.01"))
    ):
        raise ValidationError({"purchase_price": _("Enter a price with at most 2 decimal places.")})
