"""Bonus arithmetic for an order or a cart: how much may be charged, what will be credited, and how a
charge spreads over the lines (retailCRM shows it per line as a `bonus_charge` discount). No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from lavka.core.money import ZERO, percent_of, to_money


@dataclass(frozen=True)
class Line:
    """One line after its own discounts: `unit` price and `quantity`."""

    initial_price: Decimal
    unit: Decimal
    quantity: Decimal

    @property
    def total(self) -> Decimal:
        return to_money(self.unit * self.quantity)


def payable(lines: Sequence[Line], order_discount: Decimal) -> Decimal:
    """What the lines cost after the order-level discount (delivery is never paid with bonuses)."""
    items = sum((line.total for line in lines), ZERO)
    return max(items - min(order_discount, items), ZERO)


def max_charge(payable_amount: Decimal, balance: Decimal, max_percent: Decimal) -> Decimal:
    """The most bonuses an order may take: the programme's share of it, and no more than the balance."""
    share = (payable_amount * max_percent / Decimal(100)).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return max(min(share, balance, payable_amount), ZERO)


def credit_for(base: Decimal, percent: Decimal) -> Decimal:
    return percent_of(max(base, ZERO), percent)


def spread(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`amount` split in proportion to `weights`, in kopecks, summing exactly to `amount`.

    Rounding leftovers go to the heaviest lines, never beyond a line's own weight.
    """
    total = sum(weights, ZERO)
    if amount <= 0 or total <= 0:
        return [ZERO for _ in weights]
    amount = min(amount, total)
    parts = [(amount * w / total).quantize(Decimal("0.01"), rounding=ROUND_DOWN) for w in weights]
    left = amount - sum(parts, ZERO)
    for index in sorted(range(len(weights)), key=lambda i: -weights[i]):
        if left <= 0:
            break
        step = min(left, weights[index] - parts[index])
        parts[index] += step
        left -= step
    return parts
