"""The catalog: products, offers, categories and price types (feeds come with the catalog issue)."""

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.core.models import Site


class Category(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="categories")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    external_id = models.CharField(max_length=100, blank=True)
    name = models.CharField(_("name"), max_length=255)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="products")
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    external_id = models.CharField(max_length=100, blank=True)
    name = models.CharField(_("name"), max_length=255)
    article = models.CharField(_("article"), max_length=100, blank=True)
    manufacturer = models.CharField(_("manufacturer"), max_length=255, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OfferQuerySet(models.QuerySet):
    def for_site(self, site_id: int) -> "OfferQuerySet":
        return self.filter(product__site_id=site_id, is_active=True)


class Offer(models.Model):
    """The sellable unit (SKU) that an order line points at."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="offers")
    external_id = models.CharField(max_length=100, blank=True)
    xml_id = models.CharField(_("xmlId"), max_length=100, blank=True, help_text=_("ID in the ERP / 1C"))
    sku = models.CharField(_("SKU"), max_length=100)
    name = models.CharField(_("name"), max_length=255)
    article = models.CharField(_("article"), max_length=100, blank=True)
    price = models.DecimalField(
        _("price"), max_digits=14, decimal_places=2, validators=[MinValueValidator(0)]
    )
    purchase_price = models.DecimalField(
        _("purchase price"), max_digits=14, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    weight = models.PositiveIntegerField(_("weight, g"), default=0)
    is_active = models.BooleanField(default=True)

    objects = OfferQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["sku"], name="offer_sku_idx"),
            models.Index(fields=["external_id"], name="offer_external_id_idx"),
            models.Index(fields=["xml_id"], name="offer_xml_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class PriceType(models.Model):
    """A named price (retail, wholesale …). The default type's price is the offer's own `price`."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    is_active = models.BooleanField(_("active"), default=True)
    is_default = models.BooleanField(_("base price"), default=False)
    description = models.TextField(_("description"), blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True, help_text=_("Empty: the site's"))
    ordering = models.PositiveIntegerField(_("ordering"), default=100)

    class Meta:
        ordering = ["ordering", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="price_type_one_default"
            )
        ]

    def __str__(self) -> str:
        return self.name


class OfferPrice(models.Model):
    """An offer's price of a non-default price type."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="prices")
    price_type = models.ForeignKey(PriceType, on_delete=models.CASCADE, related_name="+")
    price = models.DecimalField(
        _("price"), max_digits=14, decimal_places=2, validators=[MinValueValidator(0)]
    )

    class Meta:
        ordering = ["price_type__ordering", "price_type__code"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "price_type"], name="offer_price_unique_type")
        ]

    def __str__(self) -> str:
        return f"{self.offer_id} {self.price_type_id}: {self.price}"
