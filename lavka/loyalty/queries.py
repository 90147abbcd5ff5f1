"""Reading loyalty data (no writes): which programme and account apply, balances as of today, and what
an order has taken from or earned for its customer's account."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from lavka.core.models import Site
from lavka.core.money import ZERO, percent_of
from lavka.customers.models import Customer
from lavka.loyalty import calculation, ledger
from lavka.loyalty.choices import OperationType
from lavka.loyalty.models import BonusOperation, LoyaltyAccount, LoyaltyLevel, LoyaltyProgram
from lavka.orders.choices import Group
from lavka.orders.models import Order


def program_for_site(site: Site | int) -> LoyaltyProgram | None:
    return LoyaltyProgram.objects.filter(sites=site).first()


def account_for_customer(customer: Customer, site: Site | None = None) -> LoyaltyAccount | None:
    """The customer's account in the programme of `site` (the customer's own site by default)."""
    program = program_for_site(site or customer.site_id)
    if program is None:
        return None
    return (
        LoyaltyAccount.objects.select_related("program", "level", "customer__site")
        .filter(program=program, customer=customer)
        .first()
    )


def state(account: LoyaltyAccount, today: datetime.date | None = None) -> ledger.LedgerState:
    return ledger.replay(BonusOperation.objects.filter(account=account), today or timezone.localdate())


def balance(account: LoyaltyAccount) -> tuple[Decimal, Decimal]:
    """(spendable, waiting activation) now: the cached figures unless a date has passed since."""
    changes_on = account.balance_changes_on
    if changes_on is not None and changes_on <= timezone.localdate():
        current = state(account)
        return current.balance, current.pending
    return account.amount, account.pending_amount


def level_for(program: LoyaltyProgram, orders_sum: Decimal) -> LoyaltyLevel | None:
    found = None
    for level in program.levels.all():  # ordered by threshold
        if level.threshold <= orders_sum:
            found = level
    return found


def next_level(program: LoyaltyProgram, level: LoyaltyLevel | None) -> LoyaltyLevel | None:
    threshold = level.threshold if level else Decimal(-1)
    return next((lv for lv in program.levels.all() if lv.threshold > threshold), None)


def orders_sum(account: LoyaltyAccount, exclude: Order | None = None) -> Decimal:
    """What the customer's completed orders on the programme's sites came to."""
    orders = Order.objects.filter(
        customer_id=account.customer_id,
        site__in=account.program.sites.all(),
        status__group__code=Group.COMPLETE,
    )
    if exclude is not None:
        orders = orders.exclude(pk=exclude.pk)
    return orders.aggregate(total=Sum("total_summ"))["total"] or ZERO


def order_payable(order: Order, charged: Decimal = ZERO) -> Decimal:
    """The order's lines after every discount except the bonuses it already took (`charged`)."""
    own_discount = max(order.discount_manual_amount - charged, ZERO)
    discount = own_discount + percent_of(order.summ, order.discount_manual_percent)
    return max(order.summ - min(discount, order.summ), ZERO)


@dataclass
class OrderBonuses:
    account: LoyaltyAccount | None
    charged: Decimal  # bonuses the order took (net of cancellations)
    credited: Decimal  # bonuses credited for it (net of cancellations)
    expected_credit: Decimal  # what completing it would credit, while nothing is credited yet
    level: LoyaltyLevel | None


def order_bonuses(order: Order) -> OrderBonuses:
    operations = list(BonusOperation.objects.filter(order=order).select_related("account"))
    account = operations[0].account if operations else account_for_customer(order.customer, order.site)
    charged = ledger.charged_for_order(operations)
    credit_kinds = (OperationType.CREDIT_FOR_ORDER, OperationType.CANCEL_OF_CREDIT)
    credited = sum((op.amount for op in operations if op.type in credit_kinds), ZERO)
    level = None
    expected = ZERO
    if account is not None:
        account = LoyaltyAccount.objects.select_related("program", "level").get(pk=account.pk)
        level = (
            account.level if account.level_locked else level_for(account.program, orders_sum(account, order))
        )
        credit_given = any(op.type == OperationType.CREDIT_FOR_ORDER for op in operations)
        if level is not None and account.active and account.program.active and not credit_given:
            expected = calculation.credit_for(order.total_summ - order.delivery_cost, level.percent)
    return OrderBonuses(account, charged, credited, expected, level)
