"""Values in the API's formats: `Y-m-d H:i:s` in the account's time zone, money as JSON numbers."""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from lavka.integrations.api_v5.errors import ENTITY_ERROR, ApiError

DATETIME = "%Y-%m-%d %H:%M:%S"
DATE = "%Y-%m-%d"


def dt(value: datetime.datetime | None) -> str | None:
    if value is None:
        return None
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.strftime(DATETIME)


def date(value: datetime.date | None) -> str | None:
    return value.strftime(DATE) if value else None


def money(value: Decimal | int | float | None) -> float | int | None:
    """A Decimal as a JSON number: whole amounts as int, others as float."""
    if value is None:
        return None
    value = Decimal(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def compact(data: dict[str, Any]) -> dict[str, Any]:
    """Drop keys whose value is None or "" (fields with no value are omitted, §1.12)."""
    return {k: v for k, v in data.items() if v is not None and v != ""}


def parse_datetime(value: Any, field: str, *, error: str = ENTITY_ERROR) -> datetime.datetime | None:
    """`Y-m-d H:i:s` (or `Y-m-d H:i`, `Y-m-d`, ISO 8601) in the account's zone, as an aware datetime."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    parsed = None
    for fmt in (DATETIME, "%Y-%m-%d %H:%M", DATE):
        try:
            parsed = datetime.datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ApiError(error, 400, {field: "This value is not a valid datetime."}) from None
    if parsed.year < 1900 or parsed.year > 2200:
        raise ApiError(error, 400, {field: "This value is not a valid datetime."})
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


def parse_date(value: Any, field: str, *, error: str = ENTITY_ERROR) -> datetime.date | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.datetime.strptime(str(value).strip()[:10], DATE).date()
    except ValueError:
        raise ApiError(error, 400, {field: "This value is not a valid date."}) from None
    if parsed.year < 1900 or parsed.year > 2200:
        raise ApiError(error, 400, {field: "This value is not a valid date."})
    return parsed


def parse_decimal(value: Any, field: str, *, error: str = ENTITY_ERROR) -> Decimal | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise ApiError(error, 400, {field: "This value should be a number."})
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise ApiError(error, 400, {field: "This value should be a number."}) from None
    if not number.is_finite() or abs(number) >= Decimal("1e12"):
        raise ApiError(error, 400, {field: "This value should be a number."})
    return number


def external_id(value: Any) -> str | None:
    """externalIds are strings, but clients send numbers too."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dict | list | bool):
        return None
    return str(value).strip()[:100] or None
