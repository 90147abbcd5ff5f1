"""Order arithmetic, all in Decimal with half-up rounding to kopecks at each line."""

from collections.abc import Iterable
from decimal import Decimal

from lavka.core.money import ZERO, percent_of, to_money


def unit_price(initial_price: Decimal, discount_amount: Decimal, discount_percent: Decimal) -> Decimal:
    price = initial_price - discount_amount - percent_of(initial_price, discount_percent)
    return max(to_money(price), ZERO)


def line_total(
    initial_price: Decimal,
    quantity: Decimal,
    discount_amount: Decimal = ZERO,
    discount_percent: Decimal = ZERO,
) -> Decimal:
    return to_money(unit_price(initial_price, discount_amount, discount_percent) * quantity)


def order_totals(
    lines: Iterable[tuple[Decimal, Decimal]],
    *,
    delivery_cost: Decimal,
    discount_amount: Decimal,
    discount_percent: Decimal,
) -> tuple[Decimal, Decimal, Decimal]:
    """(items total, purchase total, order total) from (line total, line purchase total) pairs."""
    summ = ZERO
    purchase = ZERO
    for line, line_purchase in lines:
        summ += line
        purchase += line_purchase
    discount = min(to_money(discount_amount + percent_of(summ, discount_percent)), summ)
    return to_money(summ), to_money(purchase), to_money(summ - discount + delivery_cost)
