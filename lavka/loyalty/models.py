"""Loyalty programmes, their levels, participations (accounts) and the bonus ledger.

The ledger (`BonusOperation`) is append-only: a balance is never edited, it is derived from the rows
(see `loyalty.ledger`) and cached on the account by the action that writes a row, in its transaction.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.core.actor import Source
from lavka.core.models import Site
from lavka.customers.models import Customer
from lavka.loyalty.choices import OperationType
from lavka.orders.models import Order

MONEY = {"max_digits": 14, "decimal_places": 2}
PERCENT = {
    "max_digits": 5,
    "decimal_places": 2,
    "validators": [MinValueValidator(0), MaxValueValidator(100)],
}


class LoyaltyProgram(models.Model):
    """A bonus programme of one or several sites (a site takes part in at most one)."""

    name = models.CharField(_("name"), max_length=255)
    sites = models.ManyToManyField(Site, related_name="loyalty_programs", verbose_name=_("sites"))
    active = models.BooleanField(_("active"), default=False)
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    max_charge_percent = models.DecimalField(
        _("share of an order payable by bonuses, %"), default=Decimal("100.00"), **PERCENT
    )
    activation_delay_days = models.PositiveIntegerField(
        _("days before bonuses for an order can be spent"), default=0
    )
    expiry_days = models.PositiveIntegerField(
        _("days bonuses live"), default=0, help_text=_("0: bonuses never expire")
    )
    created_at = models.DateTimeField(_("created"))
    activated_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("loyalty programme")

    def __str__(self) -> str:
        return self.name


class LoyaltyLevel(models.Model):
    """A tier: from `threshold` (sum of completed orders) on, `percent` of a purchase comes back."""

    program = models.ForeignKey(LoyaltyProgram, on_delete=models.CASCADE, related_name="levels")
    name = models.CharField(_("name"), max_length=255)
    threshold = models.DecimalField(_("from orders sum"), default=Decimal("0.00"), **MONEY)
    percent = models.DecimalField(_("bonuses, % of a purchase"), **PERCENT)

    class Meta:
        ordering = ["threshold", "id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "threshold"], name="loyalty_level_threshold_unique")
        ]

    def __str__(self) -> str:
        return self.name


class LoyaltyAccount(models.Model):
    """A customer's participation in a programme. `amount`, `pending_amount`, `orders_sum` and `level`
    are caches the actions refresh; `balance_changes_on` is the first day they go stale by themselves
    (a credit becomes spendable or a lot expires)."""

    program = models.ForeignKey(LoyaltyProgram, on_delete=models.PROTECT, related_name="accounts")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="loyalty_accounts")
    phone_number = models.CharField(_("phone"), max_length=20, blank=True)
    card_number = models.CharField(_("card number"), max_length=64, blank=True)
    active = models.BooleanField(_("active"), default=False)
    created_at = models.DateTimeField(_("created"))
    activated_at = models.DateTimeField(null=True, blank=True)
    level = models.ForeignKey(
        LoyaltyLevel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("level"),
    )
    level_locked = models.BooleanField(default=False)  # set by hand: not moved by the orders sum
    amount = models.DecimalField(_("bonuses"), default=Decimal("0.00"), **MONEY)
    pending_amount = models.DecimalField(default=Decimal("0.00"), **MONEY)
    orders_sum = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0.00"))
    balance_changes_on = models.DateField(null=True, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "customer"], name="loyalty_account_one_per_customer"),
            models.UniqueConstraint(
                fields=["program", "card_number"],
                name="loyalty_account_card_unique",
                condition=~models.Q(card_number=""),
            ),
        ]
        indexes = [
            models.Index(fields=["phone_number"], name="loyalty_account_phone_idx"),
            models.Index(fields=["balance_changes_on"], name="loyalty_account_stale_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.program} · {self.customer}"


class LedgerQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("the bonus ledger is append-only")

    def delete(self):
        raise PermissionError("the bonus ledger is append-only")


class BonusOperation(models.Model):
    """One ledger row. `amount` is signed: credits and cancelled charges add, the rest subtract.

    A credit is a lot: spendable from `activation_date`, gone from `expire_date`. `related` points a
    cancellation at what it cancels, and a burn at the lot that expired.
    """

    account = models.ForeignKey(LoyaltyAccount, on_delete=models.PROTECT, related_name="operations")
    type = models.CharField(max_length=24, choices=OperationType.choices)
    amount = models.DecimalField(**MONEY)
    activation_date = models.DateField()
    expire_date = models.DateField(null=True, blank=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    related = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="followers"
    )
    comment = models.CharField(max_length=1000, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    objects = LedgerQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            # Accrual is idempotent: a re-delivered or repeated "order complete" credits once.
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(type=OperationType.CREDIT_FOR_ORDER),
                name="loyalty_one_credit_per_order",
            ),
            models.UniqueConstraint(
                fields=["related"],
                condition=models.Q(type__in=[OperationType.CANCEL_OF_CHARGE, OperationType.CANCEL_OF_CREDIT]),
                name="loyalty_one_cancel_per_operation",
            ),
            models.UniqueConstraint(
                fields=["related"],
                condition=models.Q(type=OperationType.BURN),
                name="loyalty_one_burn_per_lot",
            ),
        ]
        indexes = [models.Index(fields=["account", "-created_at"], name="loyalty_operation_account_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.amount}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("the bonus ledger is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the bonus ledger is append-only")
