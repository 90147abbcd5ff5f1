"""Abandoned carts: what a customer left in a site's basket, as the shop last reported it (API §2.13)."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lavka.catalog.models import Offer
from lavka.core.models import Site
from lavka.customers.models import Customer
from lavka.orders.models import Order


class Cart(models.Model):
    """The one current cart of a customer on a site; the shop replaces it on every change."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="carts", verbose_name=_("site"))
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="carts", verbose_name=_("customer")
    )
    external_id = models.CharField(_("external ID"), max_length=100, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    link = models.CharField(_("link"), max_length=2000, blank=True, help_text=_("where the cart is restored"))
    dropped_at = models.DateTimeField(_("dropped at"), null=True, blank=True)
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("order")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("cart")
        constraints = [
            models.UniqueConstraint(fields=["site", "customer"], name="tracking_cart_site_customer_unique")
        ]

    def __str__(self) -> str:
        return f"cart #{self.pk} ({self.customer_id})"


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    # A line for an offer that leaves the catalog means nothing any more.
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="+", verbose_name=_("offer"))
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=3)
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=2)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("cart item")

    def __str__(self) -> str:
        return f"{self.offer_id} × {self.quantity}"
