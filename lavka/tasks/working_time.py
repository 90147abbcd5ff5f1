"""Deadlines in a person's working time: "due in 15 working minutes" skips nights, days off and
weekends, in the time zone the working hours are written in."""

from __future__ import annotations

import datetime
import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from lavka.accounts.hours import DAYS
from lavka.core.models import Site

UTC = datetime.UTC
Spans = dict[int, tuple[datetime.time, datetime.time]]


def weekly_spans(hours: Any) -> Spans:
    """{weekday: (opens, closes)} from User.working_hours; a day missing or unreadable is a day off."""
    spans: Spans = {}
    if not isinstance(hours, dict):
        return spans
    for number, day in enumerate(DAYS):
        span = hours.get(day)
        if not isinstance(span, list | tuple) or len(span) != 2:
            continue
        try:
            opens, closes = (
                datetime.time.fromisoformat(str(span[0])),
                datetime.time.fromisoformat(str(span[1])),
            )
        except ValueError:
            continue
        if opens < closes:
            spans[number] = (opens, closes)
    return spans


def zone_named(name: str | None) -> datetime.tzinfo:
    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def performer_time_zone(performer: Any) -> datetime.tzinfo:
    """The zone a person's working hours are read in: their first site's, else the installation's."""
    name = (
        Site.objects.filter(users=performer, is_active=True)
        .order_by("ordering", "code")
        .values_list("time_zone", flat=True)
        .first()
    )
    return zone_named(name)


def due_in_working_minutes(
    performer: Any,
    minutes: int,
    start: datetime.datetime | None = None,
    *,
    tz: datetime.tzinfo | None = None,
) -> datetime.datetime:
    """The moment `minutes` of `performer`'s working time after `start` (default: now), in UTC.

    Working hours are `User.working_hours` ({"mon": ["09:00", "18:00"], …}) read in `tz` (default: the
    time zone of the performer's first site). A day not listed is a day off; no hours at all means the
    hours are not set, and then every minute counts. Started outside working hours, the count begins
    at the next opening, so 0 minutes means "the next working moment".
    """
    from django.utils import timezone

    if minutes < 0:
        raise ValueError("minutes must not be negative")
    start = start or timezone.now()
    spans = weekly_spans(getattr(performer, "working_hours", None))
    if not spans:
        return (start + datetime.timedelta(minutes=minutes)).astimezone(UTC)
    zone = tz or performer_time_zone(performer)
    remaining = datetime.timedelta(minutes=minutes)
    begin_at = start.astimezone(UTC)
    day = start.astimezone(zone).date()
    # Every week holds at least one working span, so this many days always suffice.
    weekly = sum(
        (datetime.datetime.combine(day, c) - datetime.datetime.combine(day, o) for o, c in spans.values()),
        datetime.timedelta(),
    )
    limit = 7 * (math.ceil(remaining / weekly) + 2)
    for _ in range(limit):
        span = spans.get(day.weekday())
        if span is not None:
            # Compared in UTC: two datetimes of one zone compare by wall clock, wrong around DST.
            opens = datetime.datetime.combine(day, span[0], tzinfo=zone).astimezone(UTC)
            closes = datetime.datetime.combine(day, span[1], tzinfo=zone).astimezone(UTC)
            begin = max(opens, begin_at)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        day += datetime.timedelta(days=1)
    raise AssertionError("unreachable: the working week has hours")
