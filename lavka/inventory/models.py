"""Warehouses and stock. Quantities are a ledger: every change of a stock level is a movement row."""

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lavka.catalog.models import Offer
from lavka.core.actor import Source
from lavka.core.models import AppendOnlyQuerySet

QUANTITY = {"max_digits": 14, "decimal_places": 3}


class Warehouse(models.Model):
    """A place stock is kept (retailCRM's "store")."""

    class Type(models.TextChoices):
        WAREHOUSE = "store-type-warehouse", _("warehouse")
        RETAIL = "store-type-retail", _("retail shop")
        SUPPLIER = "store-type-supplier", _("supplier's warehouse")
        ONLINE = "store-type-online", _("online shop")

    class InventoryType(models.TextChoices):
        INTEGER = "integer", _("whole units")
        FRACTIONAL = "fractional", _("fractional")

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    external_id = models.CharField(_("external ID"), max_length=100, blank=True)
    xml_id = models.CharField(_("xmlId"), max_length=100, blank=True)
    description = models.TextField(_("description"), blank=True)
    type = models.CharField(_("type"), max_length=32, choices=Type.choices, default=Type.WAREHOUSE)
    inventory_type = models.CharField(
        _("stock kept in"), max_length=16, choices=InventoryType.choices, default=InventoryType.INTEGER
    )
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    address = models.CharField(_("address"), max_length=500, blank=True)
    contact = models.CharField(_("contact person"), max_length=255, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    ordering = models.PositiveIntegerField(_("ordering"), default=100)

    class Meta:
        ordering = ["ordering", "code"]

    def __str__(self) -> str:
        return self.name


class StockLevel(models.Model):
    """How much of one offer one warehouse holds now (the sum of its movements)."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="stock_levels")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stock_levels")
    quantity = models.DecimalField(_("quantity"), **QUANTITY, default=0, validators=[MinValueValidator(0)])
    purchase_price = models.DecimalField(
        _("purchase price"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["warehouse__ordering", "warehouse__code"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "warehouse"], name="stock_level_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.offer_id}@{self.warehouse_id}: {self.quantity}"


class StockMovement(models.Model):
    """One change of a stock level: who, why, by how much and what it became. Append-only."""

    class Reason(models.TextChoices):
        SET = "set", _("stock count set")  # an upload or stock-take states the new quantity

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="+")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+")
    delta = models.DecimalField(**QUANTITY)
    quantity_after = models.DecimalField(**QUANTITY)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    actor_ref = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["offer", "warehouse", "id"], name="stock_movement_offer_idx")]

    def __str__(self) -> str:
        return f"{self.offer_id}@{self.warehouse_id} {self.delta:+}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("stock movements are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("stock movements are append-only")
