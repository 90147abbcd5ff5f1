"""Loyalty vocabulary, in retailCRM's codes so the API maps one to one."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OperationType(models.TextChoices):
    """A bonus ledger row. Credits add bonuses (a "lot"), the others take them away or give them back."""

    CREDIT_MANUAL = "credit_manual", _("credited by hand")
    CREDIT_FOR_ORDER = "credit_for_order", _("credited for an order")
    CHARGE_MANUAL = "charge_manual", _("charged by hand")
    CHARGE_FOR_ORDER = "charge_for_order", _("charged for an order")
    CANCEL_OF_CHARGE = "cancel_of_charge", _("charge cancelled")
    CANCEL_OF_CREDIT = "cancel_of_credit", _("credit cancelled")
    BURN = "burn", _("expired")


CREDITS = (OperationType.CREDIT_MANUAL, OperationType.CREDIT_FOR_ORDER)
CHARGES = (OperationType.CHARGE_MANUAL, OperationType.CHARGE_FOR_ORDER)


class AccountStatus:
    """retailCRM's `status` of a participation (PHP client `Enum/Loyalty/AccountStatus`)."""

    ACTIVATED = "activated"
    NOT_CONFIRMED = "not_confirmed"
    DEACTIVATED = "deactivated"


class PrivilegeType:
    NONE = "none"
    LOYALTY_LEVEL = "loyalty_level"


# The only kind of level Lavka has for now: a share of the purchase comes back as bonuses.
LEVEL_TYPE = "bonus_percent"

# Details statuses of `loyalty/account/{id}/bonus/{status}/details`.
WAITING_ACTIVATION = "waiting_activation"
BURN_SOON = "burn_soon"
BURN_SOON_DAYS = 30
