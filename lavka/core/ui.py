"""Building blocks the list and card pages share: capped pagination, sorting, CSV export, timelines."""

from __future__ import annotations

import csv
import datetime
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lavka.core.actor import Source
from lavka.core.models import HistoryRecord, Site
from lavka.core.permissions import Role, is_admin

PER_PAGE_CHOICES = (20, 50, 100)
DEFAULT_PER_PAGE = 50
# Counting every matching row of a big table is the slowest part of a list page; past this many
# rows the page says "10 000+" instead.
COUNT_CAP = 10000
MAX_PAGE = 10000


@dataclass
class Page:
    rows: list[Any]
    number: int
    per_page: int
    count: int
    capped: bool
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def previous_number(self) -> int:
        return self.number - 1

    @property
    def next_number(self) -> int:
        return self.number + 1

    @property
    def num_pages(self) -> int | None:
        """None when the count is capped and the last page is unknown."""
        if self.capped:
            return None
        return max((self.count + self.per_page - 1) // self.per_page, 1)

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.rows else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.rows)


def param(data: Mapping[str, str], name: str, max_length: int = 100) -> str:
    """A text parameter fit for a query: trimmed, bounded, without NUL (which PostgreSQL refuses)."""
    return str(data.get(name, "")).replace("\x00", "").strip()[:max_length]


def _int_param(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else default


def per_page(request: HttpRequest) -> int:
    value = _int_param(request, "per_page", DEFAULT_PER_PAGE)
    return value if value in PER_PAGE_CHOICES else DEFAULT_PER_PAGE


def paginate(request: HttpRequest, queryset: QuerySet) -> Page:
    """One page of `queryset` and a count that reads at most COUNT_CAP + 1 rows."""
    size = per_page(request)
    number = min(max(_int_param(request, "page", 1), 1), MAX_PAGE)
    count = queryset.order_by()[: COUNT_CAP + 1].count()
    capped = count > COUNT_CAP
    if not capped:
        last = max((count + size - 1) // size, 1)
        number = min(number, last)
    offset = (number - 1) * size
    rows = list(queryset[offset : offset + size + 1])
    return Page(
        rows=rows[:size],
        number=number,
        per_page=size,
        count=min(count, COUNT_CAP),
        capped=capped,
        has_next=len(rows) > size,
    )


def sort_queryset(
    queryset: QuerySet, sort: str, orderings: Mapping[str, tuple[str, ...]], default: str
) -> tuple[QuerySet, str]:
    """Order by one of the allowed sort keys (anything else falls back to `default`)."""
    key = sort if sort in orderings else default
    return queryset.order_by(*orderings[key]), key


def list_query(request: HttpRequest) -> str:
    """The list's filter as a query string, without the page number (what a saved filter keeps)."""
    params = request.GET.copy()
    for name in ("page", "partial"):
        params.pop(name, None)
    return params.urlencode()


UNASSIGNED = "none"
# A search term made only of these is a phone number (or a part of one).
PHONE_CHARS = re.compile(r"^[\d\s()+\-.]+$")


def manager_choices(user: Any) -> list[tuple[str, str]]:
    """The list filters' manager choices: "unassigned", then the managers of the user's sites."""
    managers = get_user_model().objects.filter(is_active=True, role__in=[Role.MANAGER, Role.SUPERVISOR])
    if not is_admin(user):
        managers = managers.filter(sites__in=user.site_ids).distinct()
    return [(UNASSIGNED, str(_("— unassigned —")))] + [(str(m.pk), str(m)) for m in managers]


def search_region(user: Any) -> str:
    """The phone region a search assumes: the country of the user's first site."""
    if is_admin(user):
        return Site.objects.filter(is_active=True).values_list("country", flat=True).first() or "RU"
    return Site.objects.filter(pk__in=user.site_ids).values_list("country", flat=True).first() or "RU"


def name_q(text: str, fields: tuple[str, ...] = ("last_name", "first_name", "patronymic")) -> Q:
    """Every word of `text` is part of one of the name fields, ignoring case.

    SQLite folds case for ASCII only, so there a word is also tried as typed, Capitalised and in lower case.
    """
    q = Q()
    for word in text.split()[:4]:
        variants = {word}
        if connection.vendor == "sqlite":
            variants |= {word.lower(), word.capitalize(), word.upper()}
        q &= reduce(operator.or_, (Q(**{f"{field}__icontains": v}) for field in fields for v in variants))
    return q


def day_start(day: datetime.date) -> datetime.datetime:
    """Midnight of `day` in the current time zone, so a date filter can use the created_at index."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


# CSV cells a spreadsheet would run as a formula. A phone number "+7…" is data, not a formula.
_FORMULA = re.compile(r"^[=@\t\r]|^[+-](?![\d ()-]*$)")


def csv_safe(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA.match(text) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    """Stream rows as CSV (UTF-8 with BOM, so spreadsheet programs read Cyrillic right)."""
    writer = csv.writer(_Echo())

    def lines() -> Iterable[str]:
        yield "\ufeff" + writer.writerow(header)
        for row in rows:
            yield writer.writerow([csv_safe(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


SOURCE_LABELS = {
    Source.USER: _("user"),
    Source.API: _("API"),
    Source.RULE: _("rule"),
    Source.SYSTEM: _("system"),
    Source.IMPORT: _("import"),
}


@dataclass
class TimelineEntry:
    record: HistoryRecord
    label: str
    old: str
    new: str
    actor: str

    @property
    def created(self) -> bool:
        return self.record.created

    @property
    def source(self) -> str:
        return str(SOURCE_LABELS.get(self.record.source, self.record.source))


Resolver = Callable[[Any], str]


def ref_id(value: Any) -> Any:
    """History keeps references either as an id or as {"id": …} / {"code": …}."""
    if isinstance(value, dict):
        return value.get("id", value.get("code"))
    return value


def show_value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, list):
        return ", ".join(show_value(v) for v in value) or "—"
    if isinstance(value, dict):
        if "name" in value:
            parts = [str(value["name"])]
            if "quantity" in value:
                parts.append(f"× {value['quantity']}")
            if "initial_price" in value:
                parts.append(f"@ {value['initial_price']}")
            if "amount" in value:
                parts.append(str(value["amount"]))
            return " ".join(parts)
        return ", ".join(f"{k}: {show_value(v)}" for k, v in value.items() if v not in (None, ""))
    return str(value)


def timeline(
    records: Iterable[HistoryRecord],
    *,
    labels: Mapping[str, str],
    resolvers: Mapping[str, Resolver] | None = None,
) -> list[TimelineEntry]:
    """Readable timeline rows: a field label, old → new with references resolved to names."""
    resolvers = resolvers or {}
    entries = []
    for record in records:
        label = labels.get(record.field) or labels.get(record.field.split(".")[0]) or record.field
        resolve = resolvers.get(record.field)

        def show(value: Any, resolve: Resolver | None = resolve) -> str:
            if value is None:
                return "—"
            return resolve(value) if resolve else show_value(value)

        actor = record.user.get_full_name() or record.user.get_username() if record.user else ""
        entries.append(
            TimelineEntry(
                record=record,
                label=str(label),
                old=show(record.old_value),
                new=show(record.new_value),
                actor=actor or record.actor_name,
            )
        )
    return entries


def lookup(names: Mapping[Any, str]) -> Resolver:
    """A resolver from a prepared id/code → name map; unknown references show as they are."""

    def resolve(value: Any) -> str:
        key = ref_id(value)
        if isinstance(key, (list, dict)):
            return show_value(value)
        return names.get(key) or names.get(str(key)) or show_value(value)

    return resolve
