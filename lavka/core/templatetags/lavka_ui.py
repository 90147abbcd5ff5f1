"""Template filters for the UI: phones and money shown the way people read them."""

from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat

from lavka.core.phones import format_phone

register = template.Library()

CURRENCY_SIGNS = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br", "UAH": "₴"}


@register.filter
def phone(value: str) -> str:
    return format_phone(value) if value else ""


@register.filter
def money(value: Decimal | None, currency: str = "") -> str:
    """1234.5 → "1 234,50 ₽" (grouping and decimal mark of the active language)."""
    if value is None or value == "":
        return ""
    amount = floatformat(value, "2g")
    sign = CURRENCY_SIGNS.get(currency, currency)
    return f"{amount}\xa0{sign}" if sign else amount


@register.filter
def plain(value: Decimal | None) -> str:
    """A quantity without trailing zeros or exponent: 2.000 → "2", 10 → "10", 1.50 → "1.5"."""
    if value is None or value == "":
        return ""
    if not isinstance(value, Decimal):
        return str(value)
    text = f"{value.normalize():f}"
    return text
