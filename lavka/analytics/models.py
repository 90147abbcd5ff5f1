from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.core.models import Site


class CostGroup(models.Model):
    """A heading for expense items ("Advertising", "Delivery" …)."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    active = models.BooleanField(_("active"), default=True)
    ordering = models.PositiveIntegerField(_("ordering"), default=100)
    color = models.CharField(_("colour"), max_length=7, blank=True)

    class Meta:
        ordering = ["ordering", "code"]

    def __str__(self) -> str:
        return self.name


class CostItem(models.Model):
    """A kind of expense ("Yandex Direct", "Courier fees" …) that costs are booked under."""

    class Type(models.TextChoices):
        CONST = "const", _("fixed")
        VAR = "var", _("variable")

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    group = models.ForeignKey(
        CostGroup, on_delete=models.PROTECT, related_name="items", verbose_name=_("group")
    )
    active = models.BooleanField(_("active"), default=True)
    ordering = models.PositiveIntegerField(_("ordering"), default=100)
    type = models.CharField(_("type"), max_length=8, choices=Type.choices, default=Type.CONST)
    applies_to_orders = models.BooleanField(_("applies to orders"), default=True)

    class Meta:
        ordering = ["ordering", "code"]

    def __str__(self) -> str:
        return self.name


class Cost(models.Model):
    """Money spent over a period (ad spend by source, an order's delivery …): the input of ROI and CAC."""

    date_from = models.DateField(_("from"))
    date_to = models.DateField(_("to"))
    summ = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    cost_item = models.ForeignKey(
        CostItem, on_delete=models.PROTECT, related_name="costs", verbose_name=_("item")
    )
    comment = models.CharField(_("comment"), max_length=1000, blank=True)
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="costs",
        verbose_name=_("order"),
    )
    # The staff member the cost is booked to (salary, bonus), if any.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="costs"
    )
    # No sites: the cost is shared by every site.
    sites = models.ManyToManyField(Site, blank=True, related_name="costs", verbose_name=_("sites"))
    # The acquisition source (UTM) the money was spent on.
    source = models.CharField(_("source"), max_length=255, blank=True)
    medium = models.CharField(_("medium"), max_length=255, blank=True)
    campaign = models.CharField(_("campaign"), max_length=255, blank=True)
    keyword = models.CharField(_("keyword"), max_length=255, blank=True)
    content = models.CharField(_("content"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-date_from", "-id"]
        indexes = [
            models.Index(fields=["date_from", "date_to"], name="cost_period_idx"),
            models.Index(fields=["source", "medium", "campaign"], name="cost_source_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.cost_item} {self.summ}"
