"""Values of segment conditions: checked and converted, each mistake a ValidationError keyed by the
value's path in the definition (`items.2.value`, `items.0.period.from`)."""

from __future__ import annotations

import datetime
import operator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

MAX_LIST = 500
MAX_TEXT = 255
MAX_DAYS = 36_500
MAX_NUMBER = Decimal("1e12")


@dataclass(frozen=True)
class Period:
    """When the orders of an order-history condition were placed: the last N days, or dates
    (inclusive, in the installation's time zone, either end open)."""

    last_days: int | None = None
    start: datetime.date | None = None
    end: datetime.date | None = None

    def q(self, path: str, now: datetime.datetime) -> Q:
        if self.last_days is not None:
            return Q(**{f"{path}__gte": now - datetime.timedelta(days=self.last_days)})
        q = Q()
        if self.start is not None:
            q &= Q(**{f"{path}__gte": day_start(self.start)})
        if self.end is not None:
            q &= Q(**{f"{path}__lt": day_start(self.end + datetime.timedelta(days=1))})
        return q

    def as_json(self) -> dict[str, Any]:
        if self.last_days is not None:
            return {"last_days": self.last_days}
        found: dict[str, Any] = {}
        if self.start is not None:
            found["from"] = self.start.isoformat()
        if self.end is not None:
            found["to"] = self.end.isoformat()
        return found


def error(path: str, message: str) -> ValidationError:
    return ValidationError({path: [message]})


def clean_number(raw: Any, path: str, kind: str = "decimal") -> Any:
    if isinstance(raw, bool) or raw is None or (isinstance(raw, str) and not raw.strip()):
        raise error(path, _("Enter a number."))
    try:
        number = Decimal(str(raw).strip().replace(",", ".")) if isinstance(raw, str) else Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise error(path, _("Enter a number.")) from None
    if not number.is_finite() or abs(number) >= MAX_NUMBER:
        raise error(path, _("Enter a number between −10¹² and 10¹²."))
    if kind == "int":
        if number != number.to_integral_value():
            raise error(path, _("Enter a whole number."))
        return int(number)
    if kind == "float":
        return float(number)
    return number


def clean_days(raw: Any, path: str) -> int:
    days = clean_number(raw, path, "int")
    if not 0 <= days <= MAX_DAYS:
        raise error(path, _("Enter a number of days from 0 to %(max)s.") % {"max": MAX_DAYS})
    return days


def clean_date(raw: Any, path: str) -> datetime.date:
    if isinstance(raw, datetime.date) and not isinstance(raw, datetime.datetime):
        return raw
    if isinstance(raw, str):
        try:
            return datetime.date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise error(path, _("Enter a date as YYYY-MM-DD."))


def clean_text(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise error(path, _("Enter a text."))
    if len(raw) > MAX_TEXT or "\x00" in raw:
        raise error(path, _("At most %(n)s characters.") % {"n": MAX_TEXT})
    return raw.strip()


def clean_list(raw: Any, path: str) -> list[str]:
    """A non-empty list of short strings (numbers are taken as their text)."""
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, (list, tuple)) or not raw:
        raise error(path, _("Choose at least one value."))
    if len(raw) > MAX_LIST:
        raise error(path, _("At most %(n)s values.") % {"n": MAX_LIST})
    values = []
    for i, item in enumerate(raw):
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        values.append(clean_text(item, f"{path}.{i}"))
    return list(dict.fromkeys(values))


def clean_period(raw: Any, path: str) -> Period | None:
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise error(path, _('A period is {"last_days": N} or {"from": date, "to": date}.'))
    unknown = set(raw) - {"last_days", "from", "to"}
    if unknown:
        raise error(f"{path}.{sorted(unknown)[0]}", _("Unknown key."))
    if "last_days" in raw:
        if "from" in raw or "to" in raw:
            raise error(path, _("Give either the last N days or dates, not both."))
        days = clean_days(raw["last_days"], f"{path}.last_days")
        if days < 1:
            raise error(f"{path}.last_days", _("At least one day."))
        return Period(last_days=days)
    start = clean_date(raw["from"], f"{path}.from") if raw.get("from") not in (None, "") else None
    end = clean_date(raw["to"], f"{path}.to") if raw.get("to") not in (None, "") else None
    if start is None and end is None:
        raise error(f"{path}.from", _("Enter a date, or choose another period."))
    if start and end and start > end:
        raise error(f"{path}.to", _("The period ends before it starts."))
    return Period(start=start, end=end)


def day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def holds(op: str, left: Any, value: Any) -> bool:
    """Whether `left <op> value` holds, for a number (the check of an aggregate against zero)."""
    if op == "between":
        return value[0] <= left <= value[1]
    return {
        "gte": operator.ge,
        "lte": operator.le,
        "gt": operator.gt,
        "lt": operator.lt,
        "eq": operator.eq,
        "ne": operator.ne,
    }[op](left, value)
