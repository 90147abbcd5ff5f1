from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.catalog.models import Offer
from lavka.core.models import Site
from lavka.customers.models import Customer
from lavka.orders.choices import ComplaintReason, Group
from lavka.orders.querysets import OrderQuerySet

MONEY = {"max_digits": 14, "decimal_places": 2}


class ReferenceBook(models.Model):
    """Code + name + active + ordering, as every retailCRM reference book has."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    is_active = models.BooleanField(_("active"), default=True)
    ordering = models.PositiveIntegerField(_("ordering"), default=100)

    class Meta:
        abstract = True
        ordering = ["ordering", "code"]

    def __str__(self) -> str:
        return self.name


class StatusGroup(ReferenceBook):
    class Meta(ReferenceBook.Meta):
        pass

    @property
    def is_closed(self) -> bool:
        return self.code in Group.CLOSED


class Status(ReferenceBook):
    group = models.ForeignKey(StatusGroup, on_delete=models.PROTECT, related_name="statuses")

    class Meta(ReferenceBook.Meta):
        verbose_name_plural = "statuses"


class OrderType(ReferenceBook):
    default_for_crm = models.BooleanField(default=False)
    default_for_api = models.BooleanField(default=False)

    class Meta(ReferenceBook.Meta):
        pass


class StatusTransition(models.Model):
    """An allowed move between statuses for one order type."""

    order_type = models.ForeignKey(OrderType, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.ForeignKey(Status, on_delete=models.CASCADE, related_name="+")
    to_status = models.ForeignKey(Status, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order_type", "from_status", "to_status"], name="transition_unique"
            )
        ]


class OrderMethod(ReferenceBook):
    default_for_crm = models.BooleanField(default=False)
    default_for_api = models.BooleanField(default=False)

    class Meta(ReferenceBook.Meta):
        pass


class DeliveryType(ReferenceBook):
    default_cost = models.DecimalField(**MONEY, default=0)

    class Meta(ReferenceBook.Meta):
        pass


class PaymentType(ReferenceBook):
    class Meta(ReferenceBook.Meta):
        pass


class PaymentStatus(ReferenceBook):
    payment_complete = models.BooleanField(_("payment complete"), default=False)

    class Meta(ReferenceBook.Meta):
        verbose_name_plural = "payment statuses"


class OrderCounter(models.Model):
    """The last order number given out per site; locked while a number is taken."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, primary_key=True)
    last_number = models.PositiveBigIntegerField(default=0)


class Order(models.Model):
    # Foreign keys carry no index of their own where a composite index below starts with them, or
    # where the only use would be deleting a reference item: every index costs each order insert.
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="orders", verbose_name=_("site"), db_index=False
    )
    number = models.CharField(_("number"), max_length=64)
    external_id = models.CharField(_("external ID"), max_length=100, null=True, blank=True)
    order_type = models.ForeignKey(
        OrderType, on_delete=models.PROTECT, verbose_name=_("order type"), db_index=False
    )
    order_method = models.ForeignKey(
        OrderMethod, on_delete=models.PROTECT, verbose_name=_("order method"), db_index=False
    )
    status = models.ForeignKey(Status, on_delete=models.PROTECT, verbose_name=_("status"), db_index=False)
    status_updated_at = models.DateTimeField(null=True, blank=True)
    status_comment = models.CharField(max_length=1000, blank=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("responsible manager"),
        db_index=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer"), db_index=False
    )
    # Contact data as given with the order (a snapshot; the customer card may change later).
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    patronymic = models.CharField(_("patronymic"), max_length=150, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    additional_phone = models.CharField(_("additional phone"), max_length=20, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    # Delivery
    delivery_type = models.ForeignKey(
        DeliveryType,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        verbose_name=_("delivery type"),
        db_index=False,
    )
    delivery_cost = models.DecimalField(_("delivery cost"), **MONEY, default=Decimal("0.00"))
    delivery_address = models.CharField(_("delivery address"), max_length=1000, blank=True)
    delivery_date = models.DateField(_("delivery date"), null=True, blank=True)
    delivery_time_from = models.TimeField(_("from"), null=True, blank=True)
    delivery_time_to = models.TimeField(_("to"), null=True, blank=True)
    # The address as parts (city, street …) when an integration sends them; `delivery_address` is the line.
    delivery_address_parts = models.JSONField(default=dict, blank=True)
    # A delivery service's shipment: its id (what tracking updates name), track number and status.
    delivery_external_id = models.CharField(_("shipment ID"), max_length=100, blank=True)
    track_number = models.CharField(_("track number"), max_length=100, blank=True)
    delivery_status = models.CharField(_("delivery status"), max_length=100, blank=True)
    # Discounts and derived totals (see orders.totals)
    discount_manual_amount = models.DecimalField(_("discount"), **MONEY, default=Decimal("0.00"))
    discount_manual_percent = models.DecimalField(
        _("discount, %"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    summ = models.DecimalField(_("items total"), **MONEY, default=Decimal("0.00"))
    total_summ = models.DecimalField(_("total"), **MONEY, default=Decimal("0.00"))
    purchase_summ = models.DecimalField(**MONEY, default=Decimal("0.00"))
    prepay_sum = models.DecimalField(_("paid"), **MONEY, default=Decimal("0.00"))
    full_paid_at = models.DateTimeField(null=True, blank=True)
    # Source (UTM)
    source = models.CharField(_("source"), max_length=255, blank=True)
    medium = models.CharField(_("medium"), max_length=255, blank=True)
    campaign = models.CharField(_("campaign"), max_length=255, blank=True)
    keyword = models.CharField(_("keyword"), max_length=255, blank=True)
    content = models.CharField(_("content"), max_length=255, blank=True)
    customer_comment = models.TextField(_("customer comment"), blank=True)
    manager_comment = models.TextField(_("manager comment"), blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    complaint_reason = models.CharField(
        _("complaint reason"), max_length=16, choices=ComplaintReason.choices, blank=True
    )
    complaint_comment = models.TextField(_("complaint comment"), blank=True)
    from_api = models.BooleanField(default=False)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["site", "number"], name="order_number_unique"),
            models.UniqueConstraint(
                fields=["site", "external_id"],
                name="order_external_id_unique",
                condition=models.Q(external_id__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="order_created_idx"),
            models.Index(fields=["manager", "-created_at"], name="order_manager_idx"),
            models.Index(fields=["site", "manager", "-created_at"], name="order_site_manager_idx"),
            models.Index(fields=["status", "-created_at"], name="order_status_idx"),
            models.Index(fields=["customer", "-created_at"], name="order_customer_idx"),
            models.Index(fields=["number"], name="order_number_idx"),
            models.Index(fields=["email"], name="order_email_idx"),
            models.Index(
                fields=["delivery_external_id"],
                name="order_shipment_idx",
                condition=~models.Q(delivery_external_id=""),
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def contact_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.patronymic) if p)

    @property
    def is_closed(self) -> bool:
        return self.status.group.code in Group.CLOSED

    @property
    def to_pay(self) -> Decimal:
        return max(self.total_summ - self.prepay_sum, Decimal("0.00"))


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="+", verbose_name=_("offer"))
    product_name = models.CharField(_("product"), max_length=255)
    sku = models.CharField(_("SKU"), max_length=100, blank=True)
    initial_price = models.DecimalField(_("price"), **MONEY)
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=3)
    discount_manual_amount = models.DecimalField(_("discount per unit"), **MONEY, default=Decimal("0.00"))
    discount_manual_percent = models.DecimalField(
        _("discount, %"), max_digits=5, decimal_places=2, default=Decimal("0.00")
    )
    purchase_price = models.DecimalField(**MONEY, default=Decimal("0.00"))
    summ = models.DecimalField(_("line total"), **MONEY, default=Decimal("0.00"))
    comment = models.CharField(_("comment"), max_length=1000, blank=True)
    external_id = models.CharField(max_length=100, blank=True)
    # The shop's own ids of the line, `[{"code": "woocomerce", "value": "160_12"}]` (retailCRM externalIds).
    external_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.product_name} × {self.quantity}"


class Payment(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payments")
    type = models.ForeignKey(PaymentType, on_delete=models.PROTECT, verbose_name=_("payment type"))
    status = models.ForeignKey(PaymentStatus, on_delete=models.PROTECT, verbose_name=_("payment status"))
    amount = models.DecimalField(_("amount"), **MONEY)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    external_id = models.CharField(max_length=100, null=True, blank=True)
    comment = models.CharField(_("comment"), max_length=1000, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "order"], name="payment_status_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.amount}"
